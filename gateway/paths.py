"""Every URL path the gateway owns, once (as oauth2-proxy keeps its paths in one block).

The dispatcher (:mod:`gateway.app`), the pages' routes (:mod:`gateway.pages`), the URLs the gateway
hands out (callback, login, post-logout) and ``openid-gateway check-config``'s registration hints all
read them here, so a path is spelled in one place. Templates get them through the renderer's globals.
"""

from __future__ import annotations

from urllib.parse import urlencode

# Everything under this prefix is the gateway's, in both modes: never forwarded to the app.
PREFIX = "/_gateway/"
LOGIN = "/login"
LOGOUT = "/logout"
# The site-root pages the gateway answers besides PREFIX (the microblog's seed had /login and /logout).
ROOT_PAGES = frozenset({LOGIN, LOGOUT})

AUTH = "/_gateway/auth"  # nginx auth_request, Caddy/Traefik forward auth (mode 1 only)
CALLBACK = "/_gateway/callback"  # every protocol's redirect_uri / return_to
BACKCHANNEL_LOGOUT = "/_gateway/backchannel-logout"
ACCOUNT = "/_gateway/account"
ACCOUNT_REVOKE = "/_gateway/account/revoke"
ACCOUNT_SIGN_OUT_EVERYWHERE = "/_gateway/account/signout-everywhere"
ACCOUNT_LINK = "/_gateway/account/link"
ACCOUNT_UNLINK = "/_gateway/account/unlink"
FORBIDDEN = "/_gateway/forbidden"
HEALTH = "/_gateway/health"
READY = "/_gateway/ready"
STATIC = "/_gateway/static"
JWKS = "/.well-known/openid-gateway/jwks.json"
# Where an OpenID Connect provider sends the browser after RP-initiated logout (after public_origin).
POST_LOGOUT = LOGIN + "?m=signed-out"


def is_own(path: str) -> bool:
    """Whether ``path`` is one of the gateway's pages (never the app's, in either mode)."""
    return path.startswith(PREFIX) or path in ROOT_PAGES


def login_url(next_target: str, message: str | None = None) -> str:
    """``/login?next=...`` with ``next`` percent-encoded (nginx cannot encode it); ``/`` is left out."""
    params = {"next": next_target} if next_target and next_target != "/" else {}
    if message:
        params["m"] = message
    return LOGIN + ("?" + urlencode(params) if params else "")
