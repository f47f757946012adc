"""Rendering for the gateway's own pages: templates, messages, error pages, headers.

Every gateway page gets the same security headers: a strict
Content-Security-Policy (no inline scripts, no framing), no referrer, no
caching (they all involve credentials), no MIME sniffing.

An operator makes the pages their own without touching the package (``templates_dir``, ``site_name``,
``logo_url``, ``brand_color``): a template of the same name in their directory replaces ours (ours stay
reachable as ``gateway/<name>`` to extend), the colours come as a generated stylesheet (:class:`Branding`),
never as an inline style, and the headers above are added outside any template, so no override can send
a page without them or make an inline script run.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.gate.clientaddr import ClientAddress
from gateway.pages.browsers import browser_name
from gateway.pages.languages import N_, Languages
from gateway.paths import Paths
from gateway.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("gateway")

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

# Messages shown on the login page, chosen by code so that no attacker-chosen
# text ever reaches a page.
MESSAGES: dict[str, tuple[str, str]] = {
    "invalid": ("error", N_("Invalid login. Please try again.")),
    "cancelled": ("error", N_("Sign-in was cancelled at your provider.")),
    "expired": ("error", N_("Your sign-in attempt expired or was started in another browser (or at another address "
                "for this site than its usual one). Please try again.")),
    "no-provider": ("error", N_("Could not find an OpenID provider at that address.")),
    "refused": ("error", N_("Signing in with that address is not allowed here.")),
    "private-address": ("error", N_("That provider is on a private network address, which this site does not allow "
                        "(site operators: see the allow_private_addresses setting).")),
    "wrong-host": ("error", N_("This site is misconfigured: the address in your browser does not match the gateway's "
                   "public_url setting, so sign-in cannot work from here. Please tell the site's operator.")),
    "not-allowed": ("error", N_("That provider is not allowed here.")),
    "unreachable": ("error", N_("Your provider did not answer in time. Please try again.")),
    "provider-error": ("error", N_("Your provider answered, but not in a way this site can use to sign you in. "
                       "Please try again later, or tell the site's operator.")),
    "too-many-groups": ("error", N_("Your account is in more groups (or longer-named ones) than this site can carry. "
                        "Please tell the site's operator.")),
    "migration-refused": ("error", N_("Your provider said you have an older OpenID account here, but this site could "
                          "not confirm that your provider speaks for it, so you were not signed in. Please tell "
                          "the site's operator.")),
    "email-required": ("error", N_("This site needs an e-mail address, and your provider did not send one.")),
    "empty": ("error", N_("Please enter your OpenID or pick a provider.")),
    "too-long": ("error", N_("That OpenID is too long.")),
    "xri": ("error", N_("XRI identifiers (=name, @name) are not supported. Please use a URL.")),
    "signed-out": ("info", N_("You have been signed out.")),
    "signed-out-everywhere": ("info", N_("You have been signed out on every device.")),
    "unlinked-signed-out": ("info", N_("The sign-in method you were signed in with is unlinked, so you have been "
                                       "signed out. Please sign in with one that reaches your account.")),
    "session-expired": ("info", N_("Your session has ended. Please sign in again.")),
    "step-up": ("info", N_("This page asks for a recent or stronger sign-in. Please sign in again.")),
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


def loader(templates_dir: str = "") -> ChoiceLoader:
    """The operator's templates first (``templates_dir``), then ours; ours also as ``gateway/<name>``."""
    ours = FileSystemLoader(TEMPLATES)
    theirs = [FileSystemLoader(templates_dir)] if templates_dir else []
    return ChoiceLoader([*theirs, PrefixLoader({"gateway": ours}), ours])


@dataclass(frozen=True, slots=True)
class Branding:
    """The site's look from the settings: a logo on this site and accent colours (light and dark scheme).

    The colours become a stylesheet (:meth:`stylesheet`, served at ``paths.theme``) that overrides the CSS
    custom properties of ``gateway.css``: the CSP keeps ``style-src 'self'``, with no inline style to allow.
    """

    logo_url: str = ""
    color: str = ""
    color_dark: str = ""

    def stylesheet(self) -> str:
        rules = []
        if self.color:
            rules.append(f":root {{ --accent: {self.color}; --on-accent: {on_color(self.color)}; }}")
        if self.color_dark:
            rules.append(f"@media (prefers-color-scheme: dark) {{ :root {{ --accent: {self.color_dark};"
                         f" --on-accent: {on_color(self.color_dark)}; }} }}")
        return "\n".join(rules) + "\n" if rules else ""


def _luminance(color: str) -> float:
    """WCAG 2.2 relative luminance of ``#rgb`` or ``#rrggbb``."""
    digits = color[1:] if len(color) == 7 else "".join(c * 2 for c in color[1:])
    channels = [int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def on_color(color: str) -> str:
    """Black or white text on ``color``: whichever contrasts more (WCAG 2.2 contrast ratio)."""
    luminance = _luminance(color)
    return "#000" if (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) else "#fff"


class Pages:
    """Renders the gateway's Jinja2 templates (or the operator's) in the request's language."""

    def __init__(self, site_name: str, paths: Paths, *, languages: Languages | None = None,
                 templates_dir: str = "", branding: Branding | None = None) -> None:
        self.env = Environment(loader=loader(templates_dir), autoescape=select_autoescape(["html"]),
                               auto_reload=False)
        self.env.filters["datetime"] = _datetime
        self.env.filters["browser"] = browser_name
        self.env.globals["paths"] = paths  # every URL a template links to (gateway.paths)
        self.branding = branding or Branding()
        self.theme = self.branding.stylesheet()
        self.env.globals["logo_url"] = self.branding.logo_url
        self.env.globals["theme"] = bool(self.theme)
        self.site_name = site_name
        self.paths = paths
        self.languages = languages or Languages()
        # {{ _("...") }} and {% trans %} in the templates: the request's language; newstyle, so that
        # _("... %(name)s", name=value) escapes the value (autoescape) and a msgid may hold markup.
        self.env.add_extension("jinja2.ext.i18n")
        self.env.install_gettext_callables(  # type: ignore[attr-defined]  # added by the i18n extension
            lambda message: self.languages.translations_now().gettext(message),
            lambda singular, plural, n: self.languages.translations_now().ngettext(singular, plural, n),
            newstyle=True)

    def translate(self, message: str) -> str:
        """``message`` (an English msgid, marked with ``N_``) in the current request's language."""
        return self.languages.translations_now().gettext(message)

    def render(self, template: str, status: int = 200, message: str | None = None, **context: Any) -> HTMLResponse:
        messages = []
        if message in MESSAGES:
            kind, text = MESSAGES[message]
            messages.append({"kind": kind, "text": self.translate(text)})
        language = self.languages.current()
        html = self.env.get_template(template).render(site_name=self.site_name, messages=messages, lang=language,
                                                      **context)
        response = HTMLResponse(html, status_code=status)
        response.headers["Content-Language"] = language
        response.headers["Vary"] = "Accept-Language"
        return response

    def error(self, status: int, title: str, detail: str, *, back_url: str | None = None,
              back_label: str = N_("Back to sign-in"), retry_after: int | None = None) -> HTMLResponse:
        """An error page; ``title``, ``detail`` and ``back_label`` are English msgids (marked with ``N_``)."""
        translate = self.translate
        response = self.render("error.html", status=status, title=translate(title), detail=translate(detail),
                               back_url=self.paths.login if back_url is None else back_url,
                               back_label=translate(back_label), retry_after=retry_after)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response


def cannot_check(pages: Pages) -> HTMLResponse:
    """503 when sessions cannot be checked (store down, revocations stale): a protected page is never served."""
    return pages.error(503, N_("Temporarily unavailable"),
                       N_("The site cannot check your sign-in right now. Please try again."), retry_after=5)


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


class InLanguage:
    """Chooses each request's language from its ``Accept-Language`` before a page renders (:mod:`.languages`)."""

    def __init__(self, app: ASGIApp, languages: Languages) -> None:
        self.app = app
        self.languages = languages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.languages.use(scope)
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Adds the security headers to every response of the gateway's own pages."""

    def __init__(self, app: ASGIApp, static_prefix: str | None = None) -> None:
        self.app = app
        self.static_prefix = static_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = self.static_prefix is not None and scope["path"].startswith(self.static_prefix)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control" or cacheable]
                headers.extend(SECURITY_HEADERS)
                if not cacheable:
                    headers.append(NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
