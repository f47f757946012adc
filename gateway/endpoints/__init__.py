"""The gateway's own HTTP endpoints: sign-in, callback, sign-out, account, health.

Each module holds one group of endpoints as a class built from
:class:`Services`, so a handler receives what it uses through typed wiring
instead of fetching it back from ``request.app.state``. :func:`routes` lists
them for the Starlette app in :mod:`gateway.app`.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.endpoints.account import AccountEndpoints
from gateway.endpoints.backchannel import PATH as BACKCHANNEL_PATH
from gateway.endpoints.backchannel import BackchannelLogoutEndpoint
from gateway.endpoints.callback import CallbackEndpoint
from gateway.endpoints.forbidden import FORBIDDEN_PATH, ForbiddenEndpoint
from gateway.endpoints.health import HealthEndpoint
from gateway.endpoints.login import LoginEndpoints
from gateway.endpoints.logout import LogoutEndpoint
from gateway.endpoints.services import Services
from gateway.web import STATIC


def routes(services: Services) -> list[BaseRoute]:
    login = LoginEndpoints(services)
    account = AccountEndpoints(services)
    health = HealthEndpoint(services)
    return [
        Route("/login", login.page, methods=["GET"]),
        Route("/login", login.submit, methods=["POST"]),
        Route("/logout", LogoutEndpoint(services).logout, methods=["GET", "POST"]),
        Route("/_gateway/callback", CallbackEndpoint(services).callback, methods=["GET", "POST"]),
        Route(BACKCHANNEL_PATH, BackchannelLogoutEndpoint(services).logout, methods=["POST"]),
        Route("/_gateway/account", account.page, methods=["GET"]),
        Route("/_gateway/account/revoke", account.revoke_one, methods=["POST"]),
        Route("/_gateway/account/signout-everywhere", account.sign_out_everywhere, methods=["POST"]),
        Route("/_gateway/account/link", account.link, methods=["POST"]),
        Route("/_gateway/account/unlink", account.unlink, methods=["POST"]),
        Route(FORBIDDEN_PATH, ForbiddenEndpoint(services).page, methods=["GET"]),
        Route("/_gateway/health", health.health, methods=["GET"]),
        Route("/_gateway/ready", health.ready, methods=["GET"]),
        Mount("/_gateway/static", StaticFiles(directory=STATIC), name="static"),
    ]


__all__ = ["FORBIDDEN_PATH", "Services", "routes"]
