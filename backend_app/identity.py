"""Who is asking: the gateway's identity headers, believed only with a valid proof.

The app has no login of its own. The gateway in front of it adds identity
headers and a short-lived proof signed over the method, the Host, the request
URI and the header values (:mod:`gateway.proof`). :class:`ProofMiddleware` checks that proof
on every request before routing: a request without identity headers is
anonymous, one with a valid proof carries an :class:`~gateway.types.Identity`,
and anything else is refused with 401 - never downgraded to anonymous, so that a
misconfigured gateway is noticed rather than silently logging everybody out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from backend_app.settings import AppSettings
from gateway.proof import HeaderNames, InvalidProof, ProofVerifier, request_uri
from gateway.types import ASGIApp, Identity, Receive, Scope, Send

logger = logging.getLogger("backend_app.identity")

SCOPE_KEY = "gateway.identity"

Refusal = Callable[[Request, InvalidProof], Response]


class IdentityVerifier(Protocol):
    """What :class:`ProofMiddleware` needs: the headers to collect and the check.

    :class:`~gateway.proof.ProofVerifier` (the HMAC proof) or
    :class:`backend_app.assertion.AssertionVerifier` (the gateway's JWT, whose
    ``names.proof`` is the assertion header).
    """

    @property
    def names(self) -> HeaderNames: ...

    def verify(self, headers: Mapping[str, str], method: str, host: str, uri: str) -> Identity | None: ...


def identity_verifier(settings: AppSettings) -> IdentityVerifier:
    """The JWT check when ``jwks_url`` is set, else the HMAC proof check."""
    if settings.jwks_url:
        from backend_app.assertion import AssertionVerifier  # PyJWT: needed only then

        names = settings.header_names()
        names.proof = settings.header_assertion
        return AssertionVerifier(settings.jwks_url, settings.issuer, names)
    assert settings.proof_key is not None  # load_app_settings requires one of the two
    return ProofVerifier(str(settings.proof_key), settings.proof_max_age, settings.header_names())


def identity_of(conn: HTTPConnection) -> Identity | None:
    """The identity :class:`ProofMiddleware` verified for this request, if any."""
    identity: Identity | None = conn.scope.get(SCOPE_KEY)
    return identity


class ProofMiddleware:
    """Verify the gateway's proof and store the identity in the ASGI scope.

    Only the configured identity headers and ``Host`` are looked at, in one pass
    over the raw header list; a repeated identity header is refused outright,
    since which copy a component reads would otherwise decide who the user is.
    The proof must have been made for the Host this request arrived with (the
    first one, as the gateway's proxy forwards the first).
    """

    def __init__(self, app: ASGIApp, verifier: IdentityVerifier, refusal: Refusal) -> None:
        self.app = app
        self.verifier = verifier
        self.refusal = refusal
        self._wanted = {name.lower().encode("latin-1"): name for name in verifier.names.all()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            scope[SCOPE_KEY] = self._verify(scope)
        except InvalidProof as exc:
            logger.warning("refused %s %r: %s", scope.get("method", "GET"), request_uri(scope), exc)
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            response = self.refusal(Request(scope), exc)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _verify(self, scope: Scope) -> Identity | None:
        found: dict[str, str] = {}
        host: bytes | None = None
        wanted = self._wanted
        for raw_name, raw_value in scope["headers"]:
            name = wanted.get(raw_name)
            if name is not None:
                if name in found:
                    raise InvalidProof(f"{name} header sent twice")
                found[name] = raw_value.decode("latin-1")
            elif raw_name == b"host" and host is None:
                host = raw_value
        if not found:
            return None
        host_value = host.decode("latin-1") if host is not None else ""
        return self.verifier.verify(found, scope.get("method", "GET"), host_value, request_uri(scope))


__all__ = ["SCOPE_KEY", "IdentityVerifier", "ProofMiddleware", "Refusal", "identity_of", "identity_verifier",
           "request_uri"]
