"""Complete OpenID sign-ins through the stack, as a browser does them, over async httpx.

One sign-in: ``GET /login`` (CSRF cookie and form) → ``POST /login`` with the
local provider's OP identifier (the gateway discovers it and reuses its
association) → the provider's consent page → ``POST`` Allow → the gateway's
callback (signature, nonce, re-discovery of the claimed identifier, session
row) → ``next``, which must answer 200 with the new session cookie.

This is the dance of ``tests/signin.py``, kept apart so that the benchmark
does not import the test suite, and made cheap: the load generator shares
two CPUs with the servers it measures, and ``httpx.AsyncClient``'s cookie jar
(``http.cookiejar``), redirect handling and repeated URL parsing cost more CPU
per sign-in than the gateway itself. :class:`Browser` therefore sends its
requests straight to an ``httpx.AsyncHTTPTransport`` (httpx's connection
pool, keep-alive, HTTP/1.1) and keeps its cookies and follows redirects itself.
"""

from __future__ import annotations

import asyncio
import html
import importlib.util
import re
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urljoin, urlsplit

import httpx

AUTOPOST_MARKER = 'id="autopost"'
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
TIMEOUT = httpx.Timeout(30.0)

# httpcore asks "which async library?" with ``import sniffio`` on every request;
# without sniffio installed that is a failed import each time (a search of
# sys.path, never cached). A None entry makes the import fail at once, with the
# same outcome (httpcore then assumes asyncio, which is what runs here).
if importlib.util.find_spec("sniffio") is None:
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

_FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S | re.I)
_FIELD = re.compile(r"<(input|button)\b([^>]*)>", re.I)
_ATTR = re.compile(r'([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*"([^"]*)")?')


class SignInError(RuntimeError):
    """A sign-in did not end signed in; the message says at which step."""


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: dict[str, str] = field(default_factory=dict)


def _attrs(text: str) -> dict[str, str]:
    return {name.lower(): html.unescape(value or "") for name, value in _ATTR.findall(text)}


def first_form(page: str) -> Form:
    """The first form of a page: action, method, named fields and buttons.

    A few regular expressions instead of html.parser: these are the gateway's
    and the provider's own pages, and reading them must cost little.
    """
    match = _FORM.search(page)
    if match is None:
        raise SignInError(f"expected a form, got: {page[:300]!r}")
    attrs = _attrs(match.group(1))
    form = Form(attrs.get("action", ""), attrs.get("method", "get").lower())
    for tag, text in _FIELD.findall(match.group(2)):
        a = _attrs(text)
        name = a.get("name")
        if not name:
            continue
        kind = a.get("type", "submit" if tag.lower() == "button" else "text").lower()
        if kind == "submit":
            form.buttons.setdefault(name, a.get("value", ""))
        elif kind != "checkbox":
            form.fields[name] = a.get("value", "")
    return form


@dataclass(frozen=True, slots=True)
class Page:
    """A response after redirects: where it ended, its status and its text."""

    url: str
    status: int
    text: str


class Browser:
    """One browser on one site: a cookie jar of its own, redirects followed like a browser's.

    Every server of the stack is on 127.0.0.1, and browsers do not separate
    cookies by port, so one jar of ``name -> value`` is right here; paths and
    expiry other than deletion (``Max-Age=0``) do not matter for a sign-in.
    """

    def __init__(self, transport: httpx.AsyncHTTPTransport) -> None:
        self.transport = transport
        self.cookies: dict[str, str] = {}

    async def request(self, method: str, url: str, data: dict[str, str] | None = None) -> Page:
        for _ in range(MAX_REDIRECTS):
            headers = {"cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
            request = httpx.Request(method, url, headers=headers, data=data,
                                    extensions={"timeout": TIMEOUT.as_dict()})
            response = await self.transport.handle_async_request(request)
            try:
                body = await response.aread()
            finally:
                await response.aclose()
            for value in response.headers.get_list("set-cookie"):
                self._store(value)
            if response.status_code not in REDIRECTS:
                return Page(url, response.status_code, body.decode("utf-8", "replace"))
            url = urljoin(url, response.headers["location"])
            if response.status_code in (301, 302, 303):  # what browsers do: the next request is a GET
                method, data = "GET", None
        raise SignInError(f"more than {MAX_REDIRECTS} redirects, last to {url}")

    def _store(self, set_cookie: str) -> None:
        pair, _, attributes = set_cookie.partition(";")
        name, _, value = pair.strip().partition("=")
        if "max-age=0" in attributes.lower().replace(" ", ""):
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value

    async def submit(self, page: Page, data: dict[str, str] | None = None) -> Page:
        """Submit the page's first form: hidden fields kept, ``data`` typed in."""
        form = first_form(page.text)
        values = {**form.fields, **(data or {})}
        url = urljoin(page.url, form.action or page.url)
        if form.method == "post":
            return await self.request("POST", url, values)
        return await self.request("GET", f"{url}?{urlencode(values)}")


def _expect(page: Page, step: str) -> Page:
    if page.status != 200:
        raise SignInError(f"{step}: HTTP {page.status} at {page.url}: {page.text[:300]!r}")
    return page


async def sign_in(browser: Browser, site: str, identifier: str, username: str, *,
                  next_path: str = "/", cookie_name: str = "gw_session") -> str:
    """Sign ``username`` in through ``site`` (nginx); return the new session cookie's value.

    The browser's cookies are cleared first: every sign-in starts from nothing.
    """
    browser.cookies.clear()
    page = _expect(await browser.request("GET", f"{site}/login?{urlencode({'next': next_path})}"), "login page")
    consent = _expect(await browser.submit(page, {"identifier": identifier}), "start of sign-in")
    if AUTOPOST_MARKER in consent.text:  # a request too long for a URL is POSTed to the provider
        consent = _expect(await browser.submit(consent), "post to the provider")
    if 'name="decision"' not in consent.text:
        raise SignInError(f"no consent page at {consent.url}: {consent.text[:300]!r}")
    answer = await browser.submit(consent, {"username": username, "decision": "allow"})
    for _ in range(2):  # answers too long for a URL come back as self-posting forms
        if answer.status != 200 or "<form" not in answer.text or "/_gateway/callback" not in answer.text:
            break
        answer = await browser.submit(answer)
    _expect(answer, "callback")
    if urlsplit(answer.url).path != next_path:
        raise SignInError(f"ended at {answer.url}, not {next_path}: {answer.text[:300]!r}")
    value = browser.cookies.get(cookie_name)
    if not value:
        raise SignInError(f"signed in but no {cookie_name} cookie")
    return value


def new_transport(connections: int = 4) -> httpx.AsyncHTTPTransport:
    return httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=connections,
                                                        max_keepalive_connections=connections), trust_env=False)


async def session_cookie(site: str, identifier: str, username: str = "bench", next_path: str = "/") -> str:
    """One sign-in, for the cookie the load generator sends."""
    async with new_transport() as transport:
        return await sign_in(Browser(transport), site, identifier, username, next_path=next_path)


@dataclass(frozen=True, slots=True)
class SignInRate:
    completed: int
    errors: int
    seconds: float
    client_cpu: float
    first_error: str = ""

    @property
    def per_second(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0


async def sign_in_rate(site: str, identifier: str, *, concurrency: int, count: int | None = None,
                       duration: float | None = None, next_path: str = "/",
                       latencies: list[float] | None = None) -> SignInRate:
    """``concurrency`` browsers signing in back to back: ``count`` sign-ins in all, or for ``duration`` s.

    Each browser has its own small connection pool (httpcore's pool costs
    more per request the more connections it holds). The duration of every
    completed sign-in (seconds) is appended to ``latencies``.
    """
    completed = errors = 0
    first_error = ""
    remaining = count
    started = time.monotonic()
    cpu_before = time.process_time()
    deadline = started + duration if duration is not None else None

    def more() -> bool:
        nonlocal remaining
        if deadline is not None and time.monotonic() >= deadline:
            return False
        if remaining is not None:
            if remaining <= 0:
                return False
            remaining -= 1
        return True

    async def browse(browser: Browser, lane: int) -> None:
        nonlocal completed, errors, first_error
        n = 0
        while more():
            n += 1
            began = time.monotonic()
            try:
                await sign_in(browser, site, identifier, f"bench{lane}x{n}", next_path=next_path)
            except (SignInError, httpx.HTTPError, KeyError) as exc:
                errors += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"
            else:
                completed += 1
                if latencies is not None:
                    latencies.append(time.monotonic() - began)

    async def browser(lane: int) -> None:
        async with new_transport() as transport:
            await browse(Browser(transport), lane)

    await asyncio.gather(*(browser(lane) for lane in range(concurrency)))
    return SignInRate(completed, errors, time.monotonic() - started, time.process_time() - cpu_before, first_error)


__all__ = ["Browser", "Page", "SignInError", "SignInRate", "first_form", "new_transport", "session_cookie",
           "sign_in", "sign_in_rate"]
