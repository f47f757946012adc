"""Discovery documents: the home page, OP identifiers and claimed identifier pages.

Per profile ``<p>``:

- ``<p>/openid``: the OP identifier for identifier_select (OpenID 2.0 §7.3.2.1.1). XRDS
  for ``Accept: application/xrds+xml`` (as Steam serves it), else HTML with an
  ``X-XRDS-Location`` header pointing at ``<p>/openid/xrds``.
- ``<p>/id/<user>``: a claimed identifier: HTML ``openid2.*`` links plus
  ``X-XRDS-Location`` → ``<p>/id/<user>/xrds`` (as Ubuntu One does). With an
  ``oidc_issuer``, ``Accept: application/json`` gets ``{"iss": oidc_issuer}``
  (OpenID 2.0 to OpenID Connect Migration §6).
- ``<p>/html-id/<user>``: a claimed identifier with HTML links only (§7.3.3).
- Steam profile instead: ``<p>/openid/id/<SteamID64>`` (+ ``/xrds``), answered like ``<p>/openid``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from devtools.openid_provider.pages import error_page, page, wants_xrds, xrds
from devtools.openid_provider.profiles import PROFILES, Profile, valid_steam_id, valid_username
from devtools.openid_provider.provider import Provider

OPENID2_SERVER = "http://specs.openid.net/auth/2.0/server"
OPENID2_SIGNON = "http://specs.openid.net/auth/2.0/signon"
EXAMPLE_USER = "alice"
NO_SUCH_USER = "No such user: user names are letters, digits, '.', '_' and '-'."
NO_SUCH_ACCOUNT = "No such account: Steam identifiers are 17 digits starting 7656119."

View = Callable[[Profile, Request], Awaitable[Response]]


class DiscoveryViews:
    """The GET pages of every profile; each view takes the profile first (bound with partial)."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [Route("/", self.home)]
        for profile in PROFILES:
            views: list[tuple[str, View]] = [
                ("/openid", self.op_identifier),
                ("/openid/xrds", self.op_identifier_xrds),
            ]
            if profile.steam_ids:
                views += [("/openid/id/{steam_id}", self.steam_identity),
                          ("/openid/id/{steam_id}/xrds", self.steam_identity_xrds)]
            else:
                views += [("/id/{username}", self.identity),
                          ("/id/{username}/xrds", self.identity_xrds),
                          ("/html-id/{username}", self.html_identity)]
            routes += [Route(profile.url("", path), partial(view, profile)) for path, view in views]
        return routes

    async def home(self, request: Request) -> Response:
        base = self.provider.base(request)
        rows = [
            {
                "profile": profile,
                "op_identifier": profile.op_identifier(base),
                "endpoint": profile.endpoint(base),
                "claimed_id": profile.claimed_id(base, EXAMPLE_USER),
                "html_claimed_id": None if profile.steam_ids else profile.html_claimed_id(base, EXAMPLE_USER),
            }
            for profile in PROFILES
        ]
        return page(request, "home.html", {"rows": rows, "example_user": EXAMPLE_USER})

    async def op_identifier(self, profile: Profile, request: Request) -> Response:
        base = self.provider.base(request)
        if wants_xrds(request):
            return self._op_xrds(request, profile, base)
        context = {"profile": profile, "op_identifier": profile.op_identifier(base), "endpoint": profile.endpoint(base)}
        return page(request, "op_identifier.html", context,
                    headers={"X-XRDS-Location": profile.url(base, "/openid/xrds")})

    async def op_identifier_xrds(self, profile: Profile, request: Request) -> Response:
        return self._op_xrds(request, profile, self.provider.base(request))

    def _op_xrds(self, request: Request, profile: Profile, base: str) -> Response:
        return xrds(request, [OPENID2_SERVER, *profile.extension_types()], profile.endpoint(base))

    async def identity(self, profile: Profile, request: Request) -> Response:
        issuer = self.provider.oidc_issuer
        if issuer and "application/json" in request.headers.get("accept", "") \
                and valid_username(request.path_params["username"]):
            return JSONResponse({"iss": issuer})
        return self._identity_page(request, profile, request.path_params["username"], yadis=True)

    async def html_identity(self, profile: Profile, request: Request) -> Response:
        return self._identity_page(request, profile, request.path_params["username"], yadis=False)

    async def identity_xrds(self, profile: Profile, request: Request) -> Response:
        if not valid_username(request.path_params["username"]):
            return error_page(request, 404, NO_SUCH_USER)
        return self._signon_xrds(request, profile)

    async def steam_identity(self, profile: Profile, request: Request) -> Response:
        steam_id = request.path_params["steam_id"]
        if not valid_steam_id(steam_id):
            return error_page(request, 404, NO_SUCH_ACCOUNT)
        if wants_xrds(request):
            return self._signon_xrds(request, profile)
        base = self.provider.base(request)
        claimed_id = profile.url(base, f"/openid/id/{steam_id}")
        return self._identity_html(request, profile, base, claimed_id, steam_id, f"{claimed_id}/xrds")

    async def steam_identity_xrds(self, profile: Profile, request: Request) -> Response:
        if not valid_steam_id(request.path_params["steam_id"]):
            return error_page(request, 404, NO_SUCH_ACCOUNT)
        return self._signon_xrds(request, profile)

    def _signon_xrds(self, request: Request, profile: Profile) -> Response:
        base = self.provider.base(request)
        return xrds(request, [OPENID2_SIGNON, *profile.extension_types()], profile.endpoint(base))

    def _identity_page(self, request: Request, profile: Profile, username: str, *, yadis: bool) -> Response:
        if not valid_username(username):
            return error_page(request, 404, NO_SUCH_USER)
        base = self.provider.base(request)
        if yadis:
            claimed_id = profile.claimed_id(base, username)
            return self._identity_html(request, profile, base, claimed_id, username, f"{claimed_id}/xrds")
        return self._identity_html(request, profile, base, profile.html_claimed_id(base, username), username, None)

    def _identity_html(self, request: Request, profile: Profile, base: str, claimed_id: str, subject: str,
                       xrds_location: str | None) -> Response:
        context = {"profile": profile, "claimed_id": claimed_id, "endpoint": profile.endpoint(base),
                   "subject": subject, "yadis": xrds_location is not None}
        return page(request, "identity.html", context,
                    headers={"X-XRDS-Location": xrds_location} if xrds_location else None)
