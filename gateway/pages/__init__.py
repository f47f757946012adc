"""The gateway's own HTTP endpoints: sign-in, callback, sign-out, account, health.

Each module holds one group of endpoints as a class built from
:class:`Services`, so a handler receives what it uses through typed wiring
instead of fetching it back from ``request.app.state``. :func:`routes` lists
them for the Starlette app in :mod:`gateway.app`.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway import paths
from gateway.pages.account import AccountEndpoints
from gateway.pages.backchannel import BackchannelLogoutEndpoint
from gateway.pages.callback import CallbackEndpoint
from gateway.pages.forbidden import ForbiddenEndpoint
from gateway.pages.health import HealthEndpoint
from gateway.pages.login import LoginEndpoints
from gateway.pages.logout import LogoutEndpoint
from gateway.pages.render import STATIC
from gateway.pages.services import Services


def routes(services: Services) -> list[BaseRoute]:
    login = LoginEndpoints(services)
    account = AccountEndpoints(services)
    health = HealthEndpoint(services)
    return [
        Route(paths.LOGIN, login.page, methods=["GET"]),
        Route(paths.LOGIN, login.submit, methods=["POST"]),
        Route(paths.LOGOUT, LogoutEndpoint(services).logout, methods=["GET", "POST"]),
        Route(paths.CALLBACK, CallbackEndpoint(services).callback, methods=["GET", "POST"]),
        Route(paths.BACKCHANNEL_LOGOUT, BackchannelLogoutEndpoint(services).logout, methods=["POST"]),
        Route(paths.ACCOUNT, account.page, methods=["GET"]),
        Route(paths.ACCOUNT_REVOKE, account.revoke_one, methods=["POST"]),
        Route(paths.ACCOUNT_SIGN_OUT_EVERYWHERE, account.sign_out_everywhere, methods=["POST"]),
        Route(paths.ACCOUNT_LINK, account.link, methods=["POST"]),
        Route(paths.ACCOUNT_UNLINK, account.unlink, methods=["POST"]),
        Route(paths.FORBIDDEN, ForbiddenEndpoint(services).page, methods=["GET"]),
        Route(paths.HEALTH, health.health, methods=["GET"]),
        Route(paths.READY, health.ready, methods=["GET"]),
        Mount(paths.STATIC, StaticFiles(directory=STATIC), name="static"),
    ]


__all__ = ["Services", "routes"]
