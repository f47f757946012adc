"""``GET /.well-known/openid-gateway/jwks.json``: the public keys apps verify the assertion with.

Plain ASGI, outside the pages' Starlette app: the pages are never cached
(``no-store``), this document should be (``public, max-age=60``), and apps
fetch it without signing in. The body is built once from the key file, so
every instance with the same file serves the same bytes and the same ETag;
``If-None-Match`` with it gets ``304``. Current, next and previous keys are
all published (:mod:`gateway.gate.signing_keys`): a token signed with any of them verifies.
"""

from __future__ import annotations

import json

from gateway.gate.signing_keys import SigningKeys, jwks_etag
from gateway.types import Receive, Scope, Send

MAX_AGE = 60


class JWKSEndpoint:
    """Serves one key set's JWKS document."""

    def __init__(self, keys: SigningKeys) -> None:
        self.body = json.dumps(keys.jwks(), separators=(",", ":")).encode("ascii")
        self.etag = jwks_etag(self.body)
        self._common = [
            (b"etag", self.etag.encode("ascii")),
            (b"cache-control", f"public, max-age={MAX_AGE}".encode("ascii")),
            (b"x-content-type-options", b"nosniff"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await self._answer(send, 405, [(b"allow", b"GET, HEAD"), (b"content-length", b"0")], b"")
            return
        if self._matches(scope["headers"]):
            await self._answer(send, 304, self._common, b"")
            return
        headers = [*self._common, (b"content-type", b"application/json"),
                   (b"content-length", str(len(self.body)).encode("ascii"))]
        await self._answer(send, 200, headers, b"" if method == "HEAD" else self.body)

    def _matches(self, headers: list[tuple[bytes, bytes]]) -> bool:
        """``If-None-Match`` names our ETag (weak comparison, RFC 9110 §13.1.2), or is ``*``."""
        for name, value in headers:
            if name == b"if-none-match":
                tags = {tag.strip().removeprefix("W/") for tag in value.decode("latin-1").split(",")}
                if self.etag in tags or "*" in tags:
                    return True
        return False

    @staticmethod
    async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


__all__ = ["MAX_AGE", "JWKSEndpoint"]
