"""The gateway's own HTTP endpoints: sign-in, callback, sign-out, account, health.

Each module holds one group of endpoints as a class built from
:class:`Services`, so a handler receives what it uses through typed wiring
instead of fetching it back from ``request.app.state``. :func:`routes` lists
them for the Starlette app in :mod:`gateway.app`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.pages.account import AccountEndpoints
from gateway.pages.backchannel import BackchannelLogoutEndpoint
from gateway.pages.callback import CallbackEndpoint
from gateway.pages.forbidden import ForbiddenEndpoint
from gateway.pages.health import HealthEndpoint
from gateway.pages.login import LoginEndpoints
from gateway.pages.logout import LogoutEndpoint
from gateway.pages.render import STATIC
from gateway.pages.services import Services


def theme_stylesheet(services: Services) -> Callable[[Request], Awaitable[Response]]:
    """The branding colours as a stylesheet (``brand_color``; 404 when none is set): no inline style."""
    css = services.pages.theme

    async def stylesheet(request: Request) -> Response:
        if not css:
            raise HTTPException(404)
        return Response(css, media_type="text/css")

    return stylesheet


def routes(services: Services) -> list[BaseRoute]:
    login = LoginEndpoints(services)
    account = AccountEndpoints(services)
    health = HealthEndpoint(services)
    paths = services.runtime.paths
    return [
        Route(paths.login, login.page, methods=["GET"]),
        Route(paths.login, login.submit, methods=["POST"]),
        Route(paths.logout, LogoutEndpoint(services).logout, methods=["GET", "POST"]),
        Route(paths.callback, CallbackEndpoint(services).callback, methods=["GET", "POST"]),
        Route(paths.backchannel_logout, BackchannelLogoutEndpoint(services).logout, methods=["POST"]),
        Route(paths.account, account.page, methods=["GET"]),
        Route(paths.account_revoke, account.revoke_one, methods=["POST"]),
        Route(paths.account_sign_out_everywhere, account.sign_out_everywhere, methods=["POST"]),
        Route(paths.account_link, account.link, methods=["POST"]),
        Route(paths.account_unlink, account.unlink, methods=["POST"]),
        Route(paths.forbidden, ForbiddenEndpoint(services).page, methods=["GET"]),
        Route(paths.health, health.health, methods=["GET"]),
        Route(paths.ready, health.ready, methods=["GET"]),
        Route(paths.theme, theme_stylesheet(services), methods=["GET"]),
        Mount(paths.static, StaticFiles(directory=STATIC), name="static"),
    ]


__all__ = ["Services", "routes"]
