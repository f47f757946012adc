"""The consent page: the person picks a user name (no password) and chooses Allow or Deny.

Optionally the development one-time code (multi-factor, PAPE) and "Stay signed in at this provider"
(``devtools/stepup.py``).

The form carries only the pending request's token; the request itself, and the user
name when the claimed identifier already names one, stay on the server.
"""

from __future__ import annotations

import time

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
from devtools.openid_provider.sessions import COOKIE, SignIn
from devtools.stepup import DEV_OTP, remember_browser, second_factor, stays

PATH = "/consent"
EXPIRED = (f"This sign-in request is unknown, already answered or older than {LIFETIME / 60:.0f} minutes. "
           "Start again from the site you came from.")


def form(request: Request, token: str, pending: Pending, *, username: str = "", error: str | None = None,
         status_code: int = 200, stay: bool = False, ignore_step_up: bool = False) -> Response:
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
        "otp_required": otp_required(pending, ignore_step_up),
        "dev_otp": DEV_OTP,
        "stay": stay,
    }
    return page(request, "consent.html", context, status_code=status_code)


def requested_by(pending: Pending) -> extensions.Requested:
    """The pending request's extension requests, read once (at the endpoint) where possible."""
    return pending.requested or extensions.check(pending.request)


def otp_required(pending: Pending, ignore_step_up: bool) -> bool:
    """The form insists on the one-time code when the relying party prefers the multi-factor policy."""
    return not ignore_step_up and requested_by(pending).multi_factor()


def assertion(provider: Provider, request: Request, pending: Pending, username: str | None, auth_time: int,
              multi_factor: bool) -> Response:
    """A positive assertion for ``username`` authenticated at ``auth_time``, or a cancel when it is None
    (OpenID 2.0 §10). Runs off the event loop (signing may create an association)."""
    openid_request = pending.request
    if username is None:
        response = openid_request.answer(False)
    else:
        if pending.username is None:  # identifier_select: the OP chooses the identifier (§10.1)
            claimed_id = pending.profile.claimed_id(pending.base, username)
            response = openid_request.answer(True, identity=claimed_id, claimed_id=claimed_id)
        else:
            response = openid_request.answer(True)
        extensions.add_to(response, requested_by(pending), pending.profile, username, auth_time, multi_factor)
    return provider.respond(request, response, pending.profile, pending.base)


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
            multi_factor, otp_error = second_factor(data, otp_required(pending, self.provider.ignore_step_up))
            stay = stays(data)
        if decision not in ("allow", "deny"):
            return self._again(request, token, pending, username, "Choose Allow or Deny.", stay)
        username = pending.username or username
        if decision == "allow" and not valid_username(username):
            return self._again(request, token, pending, username,
                               f"Not a valid user name. User names are {USERNAME_RULE}.", stay)
        if decision == "allow" and otp_error:
            return self._again(request, token, pending, username, otp_error, stay)
        if self.provider.pending.take(token) is None:  # answered meanwhile by another submission
            return error_page(request, 400, EXPIRED)
        now = int(time.time())
        allowed = username if decision == "allow" else None
        response = await run_in_threadpool(assertion, self.provider, request, pending, allowed, now, multi_factor)
        if allowed is None or not stay:
            return response
        sign_in = SignIn(allowed, pending.profile.name, now, multi_factor, {pending.request.trust_root})
        return remember_browser(response, COOKIE, self.provider.sign_ins.add(sign_in))

    def _again(self, request: Request, token: str, pending: Pending, username: str, error: str,
               stay: bool) -> Response:
        return form(request, token, pending, username=username, error=error, status_code=400, stay=stay,
                    ignore_step_up=self.provider.ignore_step_up)
