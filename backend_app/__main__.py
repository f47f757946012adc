"""``python -m backend_app`` / ``microblog``: serve the microblog with uvicorn.

Every flag but ``--host``, ``--port`` and ``--log-level`` overrides the
``MICROBLOG_*`` environment variable of the same name.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence

import uvicorn

from backend_app.app import create_app
from backend_app.settings import ENV_VARS, AppSettings, ConfigError, load_app_settings


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="microblog", description="The sample microblog behind the OpenID gateway.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: %(default)s)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    for setting, env_var in ENV_VARS.items():
        parser.add_argument(
            "--" + setting.replace("_", "-"), dest=setting, metavar=setting.rpartition("_")[2].upper(),
            help=f"overrides {env_var}",
        )
    return parser.parse_args(argv)


def build_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> AppSettings:
    """The settings from ``environ`` with the flags given on the command line applied on top."""
    merged = dict(environ)
    for setting, env_var in ENV_VARS.items():
        value = getattr(args, setting)
        if value is not None:
            merged[env_var] = value
    return load_app_settings(merged)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = build_settings(args, os.environ)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
