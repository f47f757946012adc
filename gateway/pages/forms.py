"""Form handling shared by the gateway's pages: size limits, CSRF, text fields."""

from __future__ import annotations

import logging

from starlette.datastructures import FormData
from starlette.requests import Request

from gateway.errors import BadRequest, CSRFError
from gateway.pages.render import client_of
from gateway.runtime import Runtime
from gateway.state.sessions import read_cookie

logger = logging.getLogger("gateway.forms")

MAX_FIELDS = 40


async def read_form(request: Request, limit: int) -> FormData:
    """Parse a urlencoded/multipart form of at most ``limit`` bytes (413 above)."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise BadRequest("form too large", 413)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest("form too large", 413)
    request._body = body  # let Starlette's form parser reuse what we read
    try:
        return await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=limit)
    except (ValueError, UnicodeDecodeError, AssertionError) as exc:
        raise BadRequest(f"malformed form: {exc}") from exc


def form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


class CSRFForms:
    """The signed double-submit token of every gateway form (:mod:`gateway.state.csrf`)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def cookie(self, request: Request) -> tuple[str, list[str]]:
        """The browser's CSRF cookie value, creating one (and its Set-Cookie) when missing."""
        value = read_cookie(request.headers.get("cookie"), self.runtime.csrf_cookie_name)
        if value and 16 <= len(value) <= 64:
            return value, []
        value = self.runtime.csrf.new_cookie_value()
        return value, [self.runtime.cookies.set(self.runtime.csrf_cookie_name, value)]

    def form_token(self, request: Request) -> tuple[str, list[str]]:
        """A token for a form on this page, and the cookies to set with it."""
        value, cookies = self.cookie(request)
        return self.runtime.csrf.form_token(value), cookies

    async def read_checked(self, request: Request) -> FormData:
        """The POSTed form, refused with 403 unless its token matches the browser's cookie."""
        form = await read_form(request, self.runtime.settings.max_form_bytes)
        cookie = read_cookie(request.headers.get("cookie"), self.runtime.csrf_cookie_name)
        if not self.runtime.csrf.is_valid(cookie, form_text(form, "csrf_token") or None):
            logger.warning("CSRF check failed for %s %s from %s", request.method, request.url.path,
                           client_of(request, self.runtime.client_address))
            raise CSRFError("missing or invalid CSRF token")
        return form
