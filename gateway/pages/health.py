"""``/_gateway/health`` (liveness) and ``/_gateway/ready`` (readiness), for load balancers and probes.

Liveness says only that the process answers: a store outage must not get
every worker restarted (it would not help, and the auth check already fails
closed). Readiness says whether this instance can do its job: the store
answers and the revocation list is fresh; otherwise 503, so a balancer sends
the traffic elsewhere.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from gateway.errors import StoreUnavailable
from gateway.pages.services import Services
from gateway.pages.threads import run_in_threadpool


class HealthEndpoint:
    def __init__(self, services: Services) -> None:
        self.store = services.runtime.store
        self.revocation = services.runtime.revocation

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def ready(self, request: Request) -> Response:
        try:
            await run_in_threadpool(self.store.ping)
        except StoreUnavailable:
            return PlainTextResponse("store unavailable\n", status_code=503)
        if not self.revocation.healthy:
            return PlainTextResponse("revocation list stale\n", status_code=503)
        return PlainTextResponse("ready\n")
