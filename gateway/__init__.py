"""OpenID Gateway: sign people in (OpenID Connect, GitHub, OpenID 2.0) in front of any web app.

The public surface: build settings, build the ASGI app, and (for protected
Python apps) verify the identity headers the gateway sends.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from gateway.errors import ConfigError, GatewayError
from gateway.proof import HeaderNames, InvalidProof, ProofSigner, ProofVerifier
from gateway.types import Identity

if TYPE_CHECKING:
    from gateway.app import GatewayApp, create_app
    from gateway.settings import Settings, load_settings

__version__ = "0.2.0"

# python3-openid 3.2.0 (pinned; the last release) imports defusedxml.cElementTree, deprecated since
# defusedxml 0.7. Silence exactly that warning, from that module, before any of ours imports it
# (gateway.fetch and gateway.signin.openid2 both do).
warnings.filterwarnings(
    "ignore",
    message=r"defusedxml\.cElementTree is deprecated",
    category=DeprecationWarning,
    module=r"openid\.oidutil",
)


def __getattr__(name: str) -> Any:
    # The app pulls in Starlette and python3-openid (the settings Starlette too);
    # apps that only verify identity headers (gateway.proof, standard library
    # only) should not pay for that import.
    if name in ("GatewayApp", "create_app"):
        from gateway import app

        return getattr(app, name)
    if name in ("Settings", "load_settings"):
        from gateway import settings

        return getattr(settings, name)
    raise AttributeError(f"module 'gateway' has no attribute {name!r}")

__all__ = [
    "ConfigError",
    "GatewayApp",
    "GatewayError",
    "HeaderNames",
    "Identity",
    "InvalidProof",
    "ProofSigner",
    "ProofVerifier",
    "Settings",
    "create_app",
    "load_settings",
]
