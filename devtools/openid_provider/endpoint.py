"""The OP endpoint ``<p>/endpoint`` (OpenID 2.0 §8-§11), GET and POST.

associate and check_authentication are answered by the library; checkid_immediate
always answers setup_needed; checkid_setup keeps the request server-side and shows the
consent page, unless the browser stayed signed in here and the request asks for nothing more
(PAPE, ``devtools/stepup.py``): then it is answered at once.
"""

from __future__ import annotations

import time

from openid.server.server import CheckIDRequest, ProtocolError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from devtools.openid_provider import consent, extensions
from devtools.openid_provider.pages import error_page
from devtools.openid_provider.pending import Pending
from devtools.openid_provider.profiles import PROFILES, Profile
from devtools.openid_provider.provider import Provider
from devtools.openid_provider.sessions import COOKIE, SignIn

NOT_OPENID = "This is an OpenID 2.0 provider endpoint: it expects openid.* parameters from a relying party."


async def openid_args(request: Request) -> dict[str, str]:
    """The request's parameters: the query for GET, the form body for POST (OpenID 2.0 §4.1.2)."""
    if request.method != "POST":
        return dict(request.query_params)
    async with request.form() as form:
        return {key: value for key, value in form.items() if isinstance(value, str)}


class Endpoint:
    """One profile's OP endpoint."""

    def __init__(self, provider: Provider, profile: Profile) -> None:
        self.provider = provider
        self.profile = profile

    async def handle(self, request: Request) -> Response:
        args = await openid_args(request)
        if not args:
            return error_page(request, 400, NOT_OPENID)
        if any(key.startswith("openid.ns.") and ":" not in value for key, value in args.items()):
            # python3-openid only warns about these (OpenID 2.0 §7.3.1 wants URIs); refuse them here.
            return error_page(request, 400, "Extension namespaces (openid.ns.*) must be URIs.")
        sign_in = self.provider.sign_ins.get(request.cookies.get(COOKIE, ""))
        return await run_in_threadpool(self._handle, request, self.provider.base(request), args, sign_in)

    def _handle(self, request: Request, base: str, args: dict[str, str], sign_in: SignIn | None) -> Response:
        server = self.provider.server(base, self.profile)
        try:
            openid_request = server.decodeRequest(args)
        except ProtocolError as error:
            return self.provider.refuse(request, error, self.profile, base)
        except (KeyError, ValueError) as exc:  # e.g. namespace alias clashes, raised outside ProtocolError
            return error_page(request, 400, f"Malformed OpenID message: {exc}")
        if openid_request is None:
            return error_page(request, 400, NOT_OPENID)
        try:
            if openid_request.mode in ("checkid_setup", "checkid_immediate"):
                return self._checkid(request, base, openid_request, sign_in)
            response = server.handleRequest(openid_request)
        except ProtocolError as error:
            return self.provider.refuse(request, error, self.profile, base)
        return self.provider.respond(request, response, self.profile, base)

    def _checkid(self, request: Request, base: str, openid_request: CheckIDRequest,
                 sign_in: SignIn | None) -> Response:
        """Raises ProtocolError for a request this profile cannot answer."""
        if not openid_request.return_to:
            return error_page(request, 400, "The request has no openid.return_to: there is nowhere to send an answer.")
        if openid_request.message.isOpenID1():
            raise ProtocolError(openid_request.message, "this development provider speaks OpenID 2.0 only")
        requested = extensions.check(openid_request)
        if openid_request.immediate:
            return self.provider.respond(request, openid_request.answer(False), self.profile, base)
        username = self._username(base, openid_request)
        if sign_in is not None and sign_in.answers(self.profile.name, openid_request.trust_root, username, requested,
                                                   ignore_step_up=self.provider.ignore_step_up, now=int(time.time())):
            pending = Pending(openid_request, self.profile, base, username, 0.0, requested)
            return consent.assertion(self.provider, request, pending, sign_in.username, sign_in.auth_time,
                                     sign_in.multi_factor)
        token, pending = self.provider.pending.add(openid_request, self.profile, base, username, requested)
        return consent.form(request, token, pending, ignore_step_up=self.provider.ignore_step_up)

    def _username(self, base: str, openid_request: CheckIDRequest) -> str | None:
        """The user the request is about; None for identifier_select (the person chooses)."""
        if openid_request.idSelect():
            return None
        if self.profile.steam_ids:
            raise ProtocolError(openid_request.message, "this provider accepts identifier_select only, "
                                f"through its OP identifier {self.profile.op_identifier(base)}")
        identity = openid_request.identity
        username = self.profile.username_for(base, identity) if identity else None
        if username is None:
            raise ProtocolError(openid_request.message, f"this provider does not serve the identifier {identity!r}")
        return username


def routes(provider: Provider) -> list[BaseRoute]:
    return [
        Route(profile.url("", "/endpoint"), Endpoint(provider, profile).handle, methods=["GET", "POST"])
        for profile in PROFILES
    ]
