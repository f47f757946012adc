"""What every page uses: the runtime (with the gate) and the page renderer."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from gateway.gate.authenticate import Authenticator
from gateway.pages.render import Pages, client_of
from gateway.runtime import Runtime
from gateway.state.sessions import Session


@dataclass(frozen=True, slots=True)
class Services:
    """The long-lived parts a request handler needs, wired once in :mod:`gateway.app`."""

    runtime: Runtime
    pages: Pages

    @property
    def auth(self) -> Authenticator:
        return self.runtime.auth

    def client(self, request: Request) -> str:
        """The client address, from the trusted proxy chain (see :mod:`gateway.gate.clientaddr`)."""
        return client_of(request, self.runtime.client_address)

    def current_session(self, request: Request) -> Session | None:
        """The live session of this request, or None (raises StoreUnavailable: fail closed)."""
        session, _ = self.auth.authenticate(request.headers.get("cookie"), self.runtime.now())
        return session
