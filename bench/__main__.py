"""``python -m bench`` (``make bench``) and ``python -m bench --smoke`` (``make test``)."""

from __future__ import annotations

import sys

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
