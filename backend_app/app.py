"""``create_app(settings)``: the microblog as one Starlette application."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from backend_app.database import Database
from backend_app.identity import ProofMiddleware, identity_verifier
from backend_app.pages import Pages
from backend_app.settings import AppSettings
from gateway.paths import Paths

STATIC_DIR = Path(__file__).with_name("static")


def create_app(settings: AppSettings) -> Starlette:
    """Build the app; the database is opened (and created) when the lifespan starts."""
    database = Database(settings.sqlite_path)
    pages = Pages(database, gateway=Paths(settings.gateway_prefix))
    verifier = identity_verifier(settings)  # the HMAC proof, or the gateway's JWT (settings.jwks_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(database.open)
        try:
            yield
        finally:
            await run_in_threadpool(database.close)

    routes = [
        Route("/", pages.home, methods=["GET"], name="home"),
        Route("/", pages.publish, methods=["POST"], name="publish"),
        Route("/user/{nickname}", pages.user, methods=["GET"], name="user"),
        Route("/about", pages.about, methods=["GET"], name="about"),
        Route("/admin", pages.admin, methods=["GET"], name="admin"),
        Route("/api/whoami", pages.whoami, methods=["GET"], name="whoami"),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(ProofMiddleware, verifier=verifier, refusal=pages.refused)],
        exception_handlers={HTTPException: pages.http_error},
        lifespan=lifespan,
    )


__all__ = ["create_app"]
