"""What every endpoint uses: the runtime, the auth check and the page renderer."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from gateway.authcheck import AuthCheck
from gateway.runtime import Runtime
from gateway.sessions import Session
from gateway.web import Pages, client_of


@dataclass(frozen=True, slots=True)
class Services:
    """The long-lived parts a request handler needs, wired once in :mod:`gateway.app`."""

    runtime: Runtime
    auth: AuthCheck
    pages: Pages

    def client(self, request: Request) -> str:
        """The client address, from the trusted proxy chain (see :mod:`gateway.clientaddr`)."""
        return client_of(request, self.runtime.client_address)

    def current_session(self, request: Request) -> Session | None:
        """The live session of this request, or None (raises StoreUnavailable: fail closed)."""
        session, _ = self.auth.authenticate(request.headers.get("cookie"), self.runtime.now())
        return session
