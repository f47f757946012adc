"""Every URL path the gateway owns, once (as oauth2-proxy keeps its paths in one block).

The paths depend on one setting, ``route_prefix`` (oauth2-proxy's ``--proxy-prefix``), so they are a
small frozen object, :class:`Paths`, built once by the runtime from that setting and handed to whatever
needs a path: the dispatcher (:mod:`gateway.app`), the pages' routes (:mod:`gateway.pages`), the URLs the
gateway hands out (callback, login, post-logout), the login-state cookie's path and ``openid-gateway
check-config``'s registration hints. Templates get the same object through the renderer's globals.

- ``route_prefix = ""`` (the default): the seed's ``/login`` and ``/logout`` at the site root, every other
  page under ``/_gateway/``.
- ``route_prefix = "/sso"``: every page under it (``/sso/login``, ``/sso/logout``, ``/sso/callback``,
  ``/sso/auth`` ...), so the gateway no longer shadows an app's own ``/login`` (Grafana, Jenkins, Nextcloud
  have one). ``route_prefix = "/_gateway"`` keeps every other path where it was and moves only the two.

The JWKS stays at ``/.well-known/openid-gateway/jwks.json`` whatever the prefix: well-known URIs live at
the root of a site (RFC 8615 §3), and no app has a page there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

# Where the gateway's pages live when route_prefix is empty (login and logout then sit at the site root).
DEFAULT_SPACE = "/_gateway"
JWKS = "/.well-known/openid-gateway/jwks.json"
_PREFIX = re.compile(r"(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+")


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot be a route prefix, or None: ``""`` or ``/segment[/segment...]``, no trailing ``/``."""
    if prefix == "":
        return None
    if not _PREFIX.fullmatch(prefix):
        return (f"route_prefix must be empty or a path such as /sso (letters, digits, -_.~ in each segment,"
                f" no trailing /), got {prefix!r}")
    if prefix.lower().startswith("/.well-known") or "/." in prefix:
        return f"route_prefix must not start a segment with a dot, got {prefix!r}"
    return None


@dataclass(frozen=True, slots=True)
class Paths:
    """The gateway's paths under one ``route_prefix`` (``""``: today's ``/login``, ``/logout``, ``/_gateway/``)."""

    prefix: str = ""
    # Everything under this (with its trailing /) is the gateway's, in both modes: never forwarded to the app.
    space: str = field(init=False)
    login: str = field(init=False)
    logout: str = field(init=False)
    auth: str = field(init=False)  # nginx auth_request, Caddy/Traefik forward auth (mode 1 only)
    callback: str = field(init=False)  # every protocol's redirect_uri / return_to
    backchannel_logout: str = field(init=False)
    account: str = field(init=False)
    account_revoke: str = field(init=False)
    account_sign_out_everywhere: str = field(init=False)
    account_link: str = field(init=False)
    account_unlink: str = field(init=False)
    forbidden: str = field(init=False)
    health: str = field(init=False)
    ready: str = field(init=False)
    static: str = field(init=False)
    # Generated per-site stylesheet (branding colours): a file, so the CSP needs no inline style.
    theme: str = field(init=False)
    # Where an OpenID Connect provider sends the browser after RP-initiated logout (after public_origin).
    post_logout: str = field(init=False)
    jwks: str = field(init=False)
    # The pages outside ``space`` (only with the default, empty prefix).
    root_pages: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        problem = prefix_problem(self.prefix)
        if problem is not None:
            raise ValueError(problem)
        space = self.prefix or DEFAULT_SPACE
        entry = self.prefix  # login and logout: at the root without a prefix, under it with one
        values: dict[str, str | frozenset[str]] = {
            "space": space + "/",
            "login": entry + "/login",
            "logout": entry + "/logout",
            "auth": space + "/auth",
            "callback": space + "/callback",
            "backchannel_logout": space + "/backchannel-logout",
            "account": space + "/account",
            "account_revoke": space + "/account/revoke",
            "account_sign_out_everywhere": space + "/account/signout-everywhere",
            "account_link": space + "/account/link",
            "account_unlink": space + "/account/unlink",
            "forbidden": space + "/forbidden",
            "health": space + "/health",
            "ready": space + "/ready",
            "static": space + "/static",
            "theme": space + "/theme.css",
            "post_logout": entry + "/login?m=signed-out",
            "jwks": JWKS,
        }
        values["root_pages"] = frozenset() if self.prefix else frozenset({entry + "/login", entry + "/logout"})
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def is_own(self, path: str) -> bool:
        """Whether ``path`` is one of the gateway's pages (never the app's, in either mode)."""
        return path.startswith(self.space) or path in self.root_pages

    def login_url(self, next_target: str, message: str | None = None, max_age: int | None = None,
                  acr_values: Sequence[str] = ()) -> str:
        """``login?next=...`` with ``next`` percent-encoded (nginx cannot encode it); ``/`` is left out.

        ``max_age``, ``acr_values``: what a step-up rule asks of the sign-in (space-separated values, as
        OpenID Connect spells them); the login page asks the provider for it and records it in the login state.
        """
        params = {"next": next_target} if next_target and next_target != "/" else {}
        if message:
            params["m"] = message
        if max_age is not None:
            params[MAX_AGE_PARAM] = str(max_age)
        if acr_values:
            params[ACR_VALUES_PARAM] = " ".join(acr_values)
        return self.login + ("?" + urlencode(params) if params else "")


MAX_AGE_PARAM = "max_age"  # the login page's step-up parameters (Paths.login_url)
ACR_VALUES_PARAM = "acr_values"


# The paths without a prefix: what tests, the bench and documentation examples name.
DEFAULT = Paths()
