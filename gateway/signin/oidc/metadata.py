"""An OpenID Connect provider's discovery document and signing keys, fetched safely and cached.

Both are fetched through the SSRF-guarded, time- and size-capped
:class:`~gateway.fetch.fetcher.SafeFetcher` and kept for ``lifetime``
seconds, so a provider's key rotation and endpoint changes are seen without a
restart. An ID token signed with a key id we do not hold triggers one early
JWKS refetch, at most every ``refetch_interval`` seconds: a stream of forged
tokens with random ``kid`` values cannot make us hammer the provider.

The discovery document must name the configured issuer exactly (OpenID
Connect Discovery §4.3): a document that claims another issuer would let its
host mint tokens for it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError, MissingKeyError
from joserfc.jwk import KeySet

from gateway.errors import DiscoveryRefused, FetchError, LoginFailed, PrivateAddressRefused
from gateway.fetch.fetcher import SafeFetcher

DISCOVERY_PATH = "/.well-known/openid-configuration"
LIFETIME = 3600.0  # seconds a discovery document or key set is used before it is fetched again
REFETCH_INTERVAL = 60.0  # seconds between early key set refetches for an unknown kid
# Signature algorithms we accept at all; a provider's announced list is intersected with it.
# Never "none", never HMAC: an HMAC "key" would be the client secret or, worse, a public key.
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                   "ES256", "ES384", "ES512", "EdDSA", "Ed25519"})
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post")


@dataclass(frozen=True, slots=True)
class ProviderDocument:
    """What we use of a discovery document, checked."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]
    token_auth_method: str
    iss_parameter_supported: bool
    end_session_endpoint: str | None = None  # RP-Initiated Logout 1.0 §2.1
    userinfo_endpoint: str | None = None  # Core §5.3: claims the ID token may leave out
    claims_parameter_supported: bool = False  # Discovery §3: a step-up may ask for an essential acr (Core §5.5)
    introspection_endpoint: str | None = None  # RFC 7662 §2 (announced as RFC 8414 §2 says): opaque bearer tokens
    introspection_auth_method: str = "client_secret_basic"


PROVIDER_ERROR = "provider-error"  # the provider answered, but with something unusable


def fetch_error_code(error: FetchError) -> str:
    """The login page message for a failed fetch (``gateway.pages.render.MESSAGES``)."""
    if isinstance(error, PrivateAddressRefused):
        return "private-address"
    if isinstance(error, DiscoveryRefused):
        return "refused"
    return "unreachable"


def _http_url(document: Mapping[str, Any], key: str, issuer: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc:
        raise LoginFailed(f"discovery document of {issuer} has no usable {key}: {str(value)[:200]!r}", PROVIDER_ERROR)
    return value


def parse_document(issuer: str, document: object) -> ProviderDocument:
    """The checked fields of ``issuer``'s discovery document; :class:`LoginFailed` when unusable."""
    if not isinstance(document, dict):
        raise LoginFailed(f"discovery document of {issuer} is not a JSON object", PROVIDER_ERROR)
    if document.get("issuer") != issuer:
        raise LoginFailed(f"discovery document of {issuer} names issuer {str(document.get('issuer'))[:200]!r}",
                          PROVIDER_ERROR)
    announced = document.get("id_token_signing_alg_values_supported", ["RS256"])
    algorithms = tuple(a for a in announced if isinstance(a, str) and a in ASYMMETRIC_ALGORITHMS) \
        if isinstance(announced, list) else ()
    if not algorithms:
        raise LoginFailed(f"{issuer} announces no asymmetric ID token algorithm: {str(announced)[:200]}",
                          PROVIDER_ERROR)
    usable = _auth_methods(document, "token_endpoint_auth_methods_supported", ["client_secret_basic"])
    if not usable:
        raise LoginFailed(f"{issuer} supports neither client_secret_basic nor client_secret_post", PROVIDER_ERROR)
    introspection_methods = _auth_methods(document, "introspection_endpoint_auth_methods_supported", usable)
    return ProviderDocument(
        issuer, _http_url(document, "authorization_endpoint", issuer), _http_url(document, "token_endpoint", issuer),
        _http_url(document, "jwks_uri", issuer), algorithms, usable[0],
        document.get("authorization_response_iss_parameter_supported") is True,
        _http_url(document, "end_session_endpoint", issuer) if "end_session_endpoint" in document else None,
        _http_url(document, "userinfo_endpoint", issuer) if "userinfo_endpoint" in document else None,
        document.get("claims_parameter_supported") is True,
        _http_url(document, "introspection_endpoint", issuer) if "introspection_endpoint" in document else None,
        (introspection_methods or usable)[0],
    )


def _auth_methods(document: Mapping[str, Any], key: str, default: list[str]) -> list[str]:
    """The client authentication methods we have (:data:`TOKEN_AUTH_METHODS`) that ``key`` announces."""
    methods = document.get(key, default)
    return [m for m in TOKEN_AUTH_METHODS if isinstance(methods, list) and m in methods]


def fetch_json(fetcher: SafeFetcher, url: str, what: str, body: str | None = None,
               headers: Mapping[str, str] | None = None) -> tuple[int, object]:
    """GET (or POST ``body`` to) ``url`` and parse JSON; a network failure is :class:`LoginFailed` with its code."""
    try:
        response = fetcher.fetch(url, body, {"Accept": "application/json", **(headers or {})})
    except FetchError as exc:
        raise LoginFailed(f"{what} {url}: {exc}", fetch_error_code(exc)) from exc
    try:
        return response.status, json.loads(response.body)
    except ValueError:
        return response.status, None


class ProviderMetadata:
    """One issuer's discovery document and key set, cached; thread-safe (sign-ins run on several threads)."""

    def __init__(self, issuer: str, fetcher: SafeFetcher, *, clock: Callable[[], float] = time.monotonic,
                 lifetime: float = LIFETIME, refetch_interval: float = REFETCH_INTERVAL) -> None:
        self.issuer = issuer
        self.fetcher = fetcher
        self.clock = clock
        self.lifetime = lifetime
        self.refetch_interval = refetch_interval
        self._lock = threading.Lock()
        self._document: tuple[float, ProviderDocument] | None = None
        self._keys: tuple[float, KeySet] | None = None
        self._last_key_fetch = float("-inf")

    @property
    def last_key_fetch(self) -> float:
        """When (on ``clock``) the key set was last fetched: what the refetch rate limit counts from."""
        return self._last_key_fetch

    def document(self) -> ProviderDocument:
        with self._lock:
            if self._document is not None and self.clock() < self._document[0]:
                return self._document[1]
        url = self.issuer.rstrip("/") + DISCOVERY_PATH
        status, body = fetch_json(self.fetcher, url, "discovery")
        if status != 200:
            raise LoginFailed(f"discovery {url} answered {status}", PROVIDER_ERROR)
        document = parse_document(self.issuer, body)
        with self._lock:
            self._document = (self.clock() + self.lifetime, document)
        return document

    def keys(self) -> KeySet:
        """The cached key set, fetched when missing or older than ``lifetime``."""
        with self._lock:
            if self._keys is not None and self.clock() < self._keys[0]:
                return self._keys[1]
        return self._fetch_keys()

    def refetch_keys(self) -> KeySet | None:
        """A fresh key set for an unknown ``kid``, or None when one was fetched less than ``refetch_interval`` ago."""
        with self._lock:
            if self.clock() - self._last_key_fetch < self.refetch_interval:
                return None
        return self._fetch_keys()

    def decode(self, token: str, algorithms: Sequence[str]) -> dict[str, Any]:
        """A JWT's claims once joserfc has checked its signature with this provider's keys (claims unchecked).

        An unknown ``kid`` (or no matching key) fetches the key set again, at most once per
        ``refetch_interval``: the provider may have rotated its keys since they were cached. Raises
        joserfc's errors for a bad token, :class:`LoginFailed` when discovery or the JWKS fails.
        """
        try:
            return dict(jwt.decode(token, self.keys(), algorithms=list(algorithms)).claims)
        except (InvalidKeyIdError, MissingKeyError):
            fresh = self.refetch_keys()
            if fresh is None:
                raise
            return dict(jwt.decode(token, fresh, algorithms=list(algorithms)).claims)

    def _fetch_keys(self) -> KeySet:
        url = self.document().jwks_uri
        with self._lock:
            self._last_key_fetch = self.clock()
        status, body = fetch_json(self.fetcher, url, "JWKS")
        if status != 200 or not isinstance(body, dict):
            raise LoginFailed(f"JWKS {url} answered {status} without a key set", PROVIDER_ERROR)
        try:
            key_set = KeySet.import_key_set(body)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise LoginFailed(f"JWKS {url} is not a usable key set: {exc}", PROVIDER_ERROR) from exc
        with self._lock:
            self._keys = (self.clock() + self.lifetime, key_set)
        return key_set


__all__ = ["ASYMMETRIC_ALGORITHMS", "LIFETIME", "REFETCH_INTERVAL", "ProviderDocument", "ProviderMetadata",
           "fetch_error_code", "fetch_json", "parse_document"]
