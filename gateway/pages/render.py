"""Rendering for the gateway's own pages: templates, messages, error pages, headers.

Every gateway page gets the same security headers: a strict
Content-Security-Policy (no inline scripts, no framing), no referrer, no
caching (they all involve credentials), no MIME sniffing.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway import paths
from gateway.gate.clientaddr import ClientAddress
from gateway.pages.browsers import browser_name
from gateway.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("gateway")

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

# Messages shown on the login page, chosen by code so that no attacker-chosen
# text ever reaches a page.
MESSAGES: dict[str, tuple[str, str]] = {
    "invalid": ("error", "Invalid login. Please try again."),
    "cancelled": ("error", "Sign-in was cancelled at your provider."),
    "expired": ("error", "Your sign-in attempt expired or was started in another browser (or at another address "
                "for this site than its usual one). Please try again."),
    "no-provider": ("error", "Could not find an OpenID provider at that address."),
    "refused": ("error", "Signing in with that address is not allowed here."),
    "private-address": ("error", "That provider is on a private network address, which this site does not allow "
                        "(site operators: see the allow_private_addresses setting)."),
    "wrong-host": ("error", "This site is misconfigured: the address in your browser does not match the gateway's "
                   "public_url setting, so sign-in cannot work from here. Please tell the site's operator."),
    "not-allowed": ("error", "That provider is not allowed here."),
    "unreachable": ("error", "Your provider did not answer in time. Please try again."),
    "provider-error": ("error", "Your provider answered, but not in a way this site can use to sign you in. "
                       "Please try again later, or tell the site's operator."),
    "too-many-groups": ("error", "Your account is in more groups (or longer-named ones) than this site can carry. "
                        "Please tell the site's operator."),
    "migration-refused": ("error", "Your provider said you have an older OpenID account here, but this site could "
                          "not confirm that your provider speaks for it, so you were not signed in. Please tell "
                          "the site's operator."),
    "email-required": ("error", "This site needs an e-mail address, and your provider did not send one."),
    "empty": ("error", "Please enter your OpenID or pick a provider."),
    "too-long": ("error", "That OpenID is too long."),
    "xri": ("error", "XRI identifiers (=name, @name) are not supported. Please use a URL."),
    "signed-out": ("info", "You have been signed out."),
    "signed-out-everywhere": ("info", "You have been signed out on every device."),
    "unlinked-signed-out": ("info", "The sign-in method you were signed in with is unlinked, so you have been signed "
                            "out. Please sign in with one that reaches your account."),
    "session-expired": ("info", "Your session has ended. Please sign in again."),
}

SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     b"frame-ancestors 'none'; base-uri 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]
NO_STORE = (b"cache-control", b"no-store")


def _datetime(value: float) -> str:
    return datetime.datetime.fromtimestamp(value, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


class Pages:
    """Renders the gateway's Jinja2 templates."""

    def __init__(self, site_name: str) -> None:
        self.env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                               auto_reload=False)
        self.env.filters["datetime"] = _datetime
        self.env.filters["browser"] = browser_name
        self.env.globals["paths"] = paths  # every URL a template links to (gateway.paths)
        self.site_name = site_name

    def render(self, template: str, status: int = 200, message: str | None = None, **context: Any) -> HTMLResponse:
        messages = []
        if message in MESSAGES:
            kind, text = MESSAGES[message]
            messages.append({"kind": kind, "text": text})
        html = self.env.get_template(template).render(site_name=self.site_name, messages=messages, **context)
        return HTMLResponse(html, status_code=status)

    def error(self, status: int, title: str, detail: str, *, back_url: str = paths.LOGIN,
              back_label: str = "Back to sign-in", retry_after: int | None = None) -> HTMLResponse:
        response = self.render("error.html", status=status, title=title, detail=detail, back_url=back_url,
                               back_label=back_label, retry_after=retry_after)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response


def cannot_check(pages: Pages) -> HTMLResponse:
    """503 when sessions cannot be checked (store down, revocations stale): a protected page is never served."""
    return pages.error(503, "Temporarily unavailable",
                       "The site cannot check your sign-in right now. Please try again.", retry_after=5)


def redirect(url: str, cookies: Sequence[str] = (), status: int = 303) -> Response:
    return add_cookies(RedirectResponse(url, status_code=status), cookies)


def add_cookies(response: Response, cookies: Sequence[str]) -> Response:
    for cookie in cookies:
        response.raw_headers.append((b"set-cookie", cookie.encode("latin-1")))
    return response


def client_of(request: Request, client_address: ClientAddress) -> str:
    """The client address, from the trusted proxy chain (see :mod:`gateway.gate.clientaddr`)."""
    peer = request.client.host if request.client else None
    return client_address.resolve(peer, request.headers.get("x-forwarded-for"))


class SecurityHeaders:
    """Adds the security headers to every response of the gateway's own pages."""

    def __init__(self, app: ASGIApp, static_prefix: str = paths.STATIC + "/") -> None:
        self.app = app
        self.static_prefix = static_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = scope["path"].startswith(self.static_prefix)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control" or cacheable]
                headers.extend(SECURITY_HEADERS)
                if not cacheable:
                    headers.append(NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
