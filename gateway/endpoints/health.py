"""``/_gateway/health``: 200 while the store answers, 503 when it does not."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from gateway.endpoints.services import Services
from gateway.errors import StoreUnavailable


class HealthEndpoint:
    def __init__(self, services: Services) -> None:
        self.store = services.runtime.store

    async def health(self, request: Request) -> Response:
        try:
            await run_in_threadpool(self.store.ping)
        except StoreUnavailable:
            return PlainTextResponse("store unavailable\n", status_code=503)
        return PlainTextResponse("ok\n")
