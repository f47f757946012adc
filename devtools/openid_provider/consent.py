"""The consent page: the person picks a user name (no password) and chooses Allow or Deny.

The form carries only the pending request's token; the request itself, and the user
name when the claimed identifier already names one, stay on the server.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from devtools.openid_provider import extensions
from devtools.openid_provider.pages import error_page, page
from devtools.openid_provider.pending import LIFETIME, Pending
from devtools.openid_provider.profiles import USERNAME_RULE, valid_username
from devtools.openid_provider.provider import Provider

PATH = "/consent"
EXPIRED = (f"This sign-in request is unknown, already answered or older than {LIFETIME / 60:.0f} minutes. "
           "Start again from the site you came from.")


def form(request: Request, token: str, pending: Pending, *, username: str = "", error: str | None = None,
         status_code: int = 200) -> Response:
    """The consent form for a pending request (re-shown with ``error`` after a bad user name)."""
    openid_request = pending.request
    context = {
        "action": PATH,
        "token": token,
        "profile": pending.profile,
        "realm": openid_request.trust_root,
        "return_to": openid_request.return_to,
        "username": pending.username or username,
        "fixed": pending.username is not None,
        "released": extensions.released(requested_by(pending), pending.profile),
        "username_rule": USERNAME_RULE,
        "error": error,
    }
    return page(request, "consent.html", context, status_code=status_code)


def requested_by(pending: Pending) -> extensions.Requested:
    """The pending request's extension requests, read once (at the endpoint) where possible."""
    return pending.requested or extensions.check(pending.request)


def _field(data: FormData, name: str) -> str:
    value = data.get(name)
    return value if isinstance(value, str) else ""


class Consent:
    """``POST /consent``: answers the pending request the form's token names."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def routes(self) -> list[BaseRoute]:
        return [Route(PATH, self.decide, methods=["POST"])]

    async def decide(self, request: Request) -> Response:
        async with request.form() as data:
            token, decision, username = (_field(data, name) for name in ("token", "decision", "username"))
        pending = self.provider.pending.get(token)
        if pending is None:
            return error_page(request, 400, EXPIRED)
        if decision not in ("allow", "deny"):
            return form(request, token, pending, username=username, error="Choose Allow or Deny.", status_code=400)
        username = pending.username or username
        if decision == "allow" and not valid_username(username):
            return form(request, token, pending, username=username, status_code=400,
                        error=f"Not a valid user name. User names are {USERNAME_RULE}.")
        if self.provider.pending.take(token) is None:  # answered meanwhile by another submission
            return error_page(request, 400, EXPIRED)
        return await run_in_threadpool(self._answer, request, pending, username if decision == "allow" else None)

    def _answer(self, request: Request, pending: Pending, username: str | None) -> Response:
        """A positive assertion for ``username``, or a cancel when it is None (OpenID 2.0 §10)."""
        openid_request = pending.request
        if username is None:
            response = openid_request.answer(False)
        else:
            if pending.username is None:  # identifier_select: the OP chooses the identifier (§10.1)
                claimed_id = pending.profile.claimed_id(pending.base, username)
                response = openid_request.answer(True, identity=claimed_id, claimed_id=claimed_id)
            else:
                response = openid_request.answer(True)
            extensions.add_to(response, requested_by(pending), pending.profile, username)
        return self.provider.respond(request, response, pending.profile, pending.base)
