"""Opaque bearer tokens, asked about at the provider's introspection endpoint (RFC 7662).

An opaque access token is a random string only its provider can explain. Where the operator
sets ``bearer_introspection = true`` on an ``oidc`` provider (one at most: an opaque token names
no issuer, and sending it to several providers would show each the others' tokens) and that
provider's discovery document announces an ``introspection_endpoint``, the token is POSTed there
(§2.1) with the gateway's client credentials, through the same SSRF-guarded, time- and size-capped
:class:`~gateway.fetch.fetcher.SafeFetcher` as every other provider call. The answer must say
``active: true`` (§2.2); its claims are then judged as a JWT's are, by
:class:`~gateway.signin.oidc.bearer.BearerVerifier`.

An inactive answer (unknown, expired or revoked: §2.2 does not say which) is remembered by the
SHA-256 of the token, bounded, for the cache time, so a client repeating a dead token does not
make the gateway ask again each time. A provider that cannot be reached, or answers anything but
200 with a JSON object, is a 503: the token could not be checked, and it never passes.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from typing import Any

from gateway.errors import LoginFailed, TokenRefused
from gateway.fetch.fetcher import SafeFetcher
from gateway.signin.oidc.exchange import client_request
from gateway.signin.oidc.metadata import ProviderMetadata, fetch_json
from gateway.signin.provider import Provider

TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")  # RFC 6750 §2.1 b64token: nothing else is sent to the provider
INACTIVE_REMEMBERED = 1024  # inactive answers remembered at most
NOT_ACTIVE = "the provider says the token is not active (unknown, expired or revoked)"


class Introspection:
    """One provider's introspection endpoint, asked with its client's credentials; thread-safe, blocks."""

    def __init__(self, provider: Provider, metadata: ProviderMetadata, fetcher: SafeFetcher,
                 clock: Callable[[], float], cache_seconds: float) -> None:
        self.provider = provider
        self.metadata = metadata
        self.fetcher = fetcher
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._inactive: dict[bytes, float] = {}  # SHA-256 of a token -> until when its inactive answer is used

    def __call__(self, token: str) -> dict[str, Any]:
        """The provider's answer about an active token (its claims not yet judged); :class:`TokenRefused`
        for an inactive one, with status 503 when the provider could not say."""
        if not TOKEN.fullmatch(token):
            raise TokenRefused("the token is not an RFC 6750 token (b64token characters)")
        key = hashlib.sha256(token.encode("ascii")).digest()
        with self._lock:
            until = self._inactive.get(key)
        if until is not None and self.clock() < until:
            raise TokenRefused(NOT_ACTIVE)
        try:
            document = self.metadata.document()
            endpoint = document.introspection_endpoint
            if endpoint is None:
                raise TokenRefused(f"opaque tokens are not supported here: {self.provider.name} announces no"
                                   " introspection_endpoint")
            body, headers = client_request(self.provider, document.introspection_auth_method,
                                           {"token": token, "token_type_hint": "access_token"})
            status, answer = fetch_json(self.fetcher, endpoint, "introspection", body, headers)
        except LoginFailed as exc:  # discovery or the endpoint unreachable: not the token's fault
            raise TokenRefused(f"the provider's introspection cannot be reached: {exc.reason}", status=503) from exc
        if status != 200 or not isinstance(answer, dict):
            raise TokenRefused(f"the provider's introspection answered {status} without a JSON object", status=503)
        if answer.get("active") is not True:
            self._remember_inactive(key)
            raise TokenRefused(NOT_ACTIVE)
        return answer

    def _remember_inactive(self, key: bytes) -> None:
        with self._lock:
            while len(self._inactive) >= INACTIVE_REMEMBERED:
                del self._inactive[next(iter(self._inactive))]
            self._inactive[key] = self.clock() + self.cache_seconds


__all__ = ["Introspection"]
