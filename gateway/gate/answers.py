"""How a refusal is said: a redirect or a page for a browser, JSON for an API client.

A browser navigating to a protected page should land on the login page; a
script calling an API should not: a ``302`` to an HTML page turns into a CORS
error or a parse error in the caller (a long-standing complaint of
oauth2-proxy users). So a request that is not a browser navigation gets
``401`` (not signed in) or ``403`` (not allowed) with a small JSON body and a
``WWW-Authenticate`` header telling it where to sign in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from gateway.paths import Paths
from gateway.types import ASGIApp, Receive, Scope, Send

_JSON = b"application/json"


def is_api_request(accept: str | None, fetch_mode: str | None, requested_with: str | None, path: str,
                   api_paths: Sequence[str] = ()) -> bool:
    """Whether a refused request should get JSON rather than a redirect or an HTML page.

    True for a path under one of ``api_paths``, an ``X-Requested-With:
    XMLHttpRequest``, a ``Sec-Fetch-Mode`` other than ``navigate`` (fetch,
    XHR, an image, a script), or an ``Accept`` that prefers JSON to HTML.
    A request without any of these hints (curl, an old browser) is treated as
    a browser: it can follow a redirect.
    """
    if api_paths and under(path, api_paths):
        return True
    if requested_with is not None and requested_with.lower() == "xmlhttprequest":
        return True
    if fetch_mode is not None and fetch_mode.lower() != "navigate":
        return True
    return accept is not None and prefers_json(accept)


def under(path: str, prefixes: Sequence[str]) -> bool:
    """``path`` is one of ``prefixes`` or below one (``/api`` and ``/api/`` both cover ``/api/x``)."""
    return any(path == p.rstrip("/") or path.startswith(p if p.endswith("/") else p + "/") for p in prefixes)


def weighted(header: str, limit: int) -> list[tuple[str, float]]:
    """The first ``limit`` items of a comma-separated header with their q-values (RFC 9110 §12.4.2).

    ``Accept`` here, ``Accept-Language`` for the pages: a missing ``q`` is 1, a malformed one 0.
    """
    items = []
    for item in header.split(",")[:limit]:
        value, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, number = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(number)
                except ValueError:
                    quality = 0.0
        items.append((value, quality))
    return items


def prefers_json(accept: str) -> bool:
    """``Accept`` ranks ``application/json`` (or ``+json``) above ``text/html`` (RFC 9110 §12.5.1 q-values)."""
    best_json = best_html = -1.0
    for media, quality in weighted(accept, 32):
        media = media.lower()
        if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
            best_json = max(best_json, quality)
        elif media in ("text/html", "application/xhtml+xml"):
            best_html = max(best_html, quality)
    return best_json > 0 and best_json > best_html


def json_body(status: int, login_url: str = "", bearer: bool = False) -> bytes:
    """The body of a 401/403 answer for an API client (the rule that refused is logged, never told).

    ``bearer``: the client sent a bearer token; the reason is in the ``WWW-Authenticate`` challenge.
    """
    if bearer:
        document = ({"error": "invalid_token", "message": "The bearer token was not accepted."} if status == 401
                    else {"error": "insufficient_scope", "message": "The user of this token is not allowed here."})
    elif status == 401:
        document = {"error": "unauthorized", "message": "Sign in first.", "login_url": login_url}
    else:
        document = {"error": "forbidden", "message": "You are signed in but not allowed here."}
    return json.dumps(document, separators=(",", ":")).encode()


def www_authenticate(login_path: str) -> bytes:
    """The ``WWW-Authenticate`` of a JSON 401: where the sign-in form is (the configured login path)."""
    return b'Cookie realm="openid-gateway", form="' + login_path.encode() + b'"'


def json_headers(body: bytes, status: int, login_path: str, challenge: bytes = b"") -> list[tuple[bytes, bytes]]:
    """The JSON answer's headers; ``challenge``: a bearer token's RFC 6750 ``WWW-Authenticate`` (401 and 403)."""
    headers = [(b"content-type", _JSON), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]
    if challenge:
        headers.append((b"www-authenticate", challenge))
    elif status == 401:
        headers.append((b"www-authenticate", www_authenticate(login_path)))
    return headers


def forbidden_page_scope(scope: Scope, uri: str, forbidden_path: str) -> Scope:
    """The scope that renders the 403 page (:mod:`gateway.pages.forbidden`) for ``uri``.

    The page reads ``X-Original-URI``, as from nginx.
    """
    headers = [(k, v) for k, v in scope["headers"] if k != b"x-original-uri"]
    headers.append((b"x-original-uri", uri.encode("latin-1")))
    return {**scope, "method": "GET", "path": forbidden_path, "raw_path": forbidden_path.encode(),
            "query_string": b"", "headers": headers}


async def send_refusal(scope: Scope, receive: Receive, send: Send, *, status: int, login: str, api: bool,
                       uri: str, pages: ASGIApp, paths: Paths, challenge: bytes = b"") -> None:
    """Refuse where the gateway answers the browser itself (proxy mode, Caddy/Traefik forward auth).

    An API client gets the JSON 401/403; a browser a redirect to ``login``
    (401) or the same 403 page nginx shows in mode 1, rendered by ``pages``.
    A refused bearer token (``challenge``) is always answered as RFC 6750 says, never redirected.
    """
    if api or challenge:
        body = json_body(status, login, bearer=bool(challenge))
        headers = json_headers(body, status, paths.login, challenge)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif status == 401:
        await send({"type": "http.response.start", "status": 302,
                    "headers": [(b"location", login.encode("latin-1")), (b"cache-control", b"no-store"),
                                (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
    else:
        await pages(forbidden_page_scope(scope, uri, paths.forbidden), receive, send)


__all__ = ["forbidden_page_scope", "is_api_request", "json_body", "json_headers", "prefers_json",
           "send_refusal", "under", "weighted", "www_authenticate"]
