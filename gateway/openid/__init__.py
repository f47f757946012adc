"""The OpenID 2.0 relying party: the exchange, its extensions, its fetcher and provider rules."""

from __future__ import annotations

import warnings

# python3-openid 3.2.0 (pinned; the last release) imports defusedxml.cElementTree,
# deprecated since defusedxml 0.7. Silence exactly that warning, from that module.
warnings.filterwarnings(
    "ignore",
    message=r"defusedxml\.cElementTree is deprecated",
    category=DeprecationWarning,
    module=r"openid\.oidutil",
)
