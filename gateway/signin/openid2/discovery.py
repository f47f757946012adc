"""Discovery of the identifier a sign-in starts from, remembered briefly for configured OP identifiers.

Every sign-in through a provider button (Steam, Ubuntu One, the operator's
``providers``) starts by discovering the same OP identifier: one fetch and
one XRDS parse that give the same endpoint every time. :class:`DiscoveryCache`
keeps that result for ``ttl`` seconds (default :data:`DISCOVERY_TTL`), and
only when all of this holds, which is what makes it safe:

* the identifier is one the operator configured (exactly, after trimming):
  whatever a visitor types is discovered afresh, so nobody can fill the cache;
* discovery found an **OP identifier** service (identifier_select, OpenID 2.0
  §7.3.2.1.1): the provider chooses the claimed identifier, and its answer
  names one that differs from the OP identifier, so python3-openid
  **discovers that claimed identifier again at completion** (§11.2) and
  accepts the answer only from an endpoint that discovery names for it. The
  cache proves nothing about any claimed identifier and is never asked about
  one: re-discovery at completion is not cached at all (an answer naming the
  OP identifier itself is checked against the cached discovery of exactly
  that URL, as it would be against a fresh one);
* failures are not kept, and the endpoint still has to pass the allow list
  (:func:`gateway.signin.openid2.providers.check_endpoint_allowed`) on every sign-in.

A stale entry can therefore only send a browser to an endpoint the provider
used up to ``ttl`` seconds ago; the begin-to-callback round trip already
trusts a discovery result for as long as the login state lives (15 minutes).
Associations are python3-openid's, per endpoint, in the store: they are
reused until they expire, not re-established per sign-in.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterable

from openid.consumer import discover as openid_discover
from openid.consumer.discover import DiscoveryFailure, OpenIDServiceEndpoint

DISCOVERY_TTL = 60.0  # seconds


def discover_endpoint(identifier: str) -> OpenIDServiceEndpoint:
    """What ``Consumer.begin`` would use: the first service discovery finds (OP identifier services first).

    Raises ``DiscoveryFailure`` (and lets the fetcher's ``HTTPFetchingError`` through) as ``begin`` does.
    """
    _, services = openid_discover.discover(identifier)
    if not services:
        raise DiscoveryFailure(f"No usable OpenID services found for {identifier}", None)
    endpoint: OpenIDServiceEndpoint = services[0]
    return endpoint


def _copy(endpoint: OpenIDServiceEndpoint) -> OpenIDServiceEndpoint:
    """A fresh endpoint object per sign-in (the library keeps it in its request), sharing no list."""
    fresh = copy.copy(endpoint)
    fresh.type_uris = list(endpoint.type_uris)
    return fresh


class DiscoveryCache:
    """The OP endpoints of configured OP identifiers, each kept ``ttl`` seconds; thread-safe."""

    def __init__(self, identifiers: Iterable[str], ttl: float = DISCOVERY_TTL,
                 discover: Callable[[str], OpenIDServiceEndpoint] = discover_endpoint,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.identifiers = frozenset(i.strip() for i in identifiers if i.strip())
        self.ttl = ttl
        self._discover = discover
        self._clock = clock
        self._entries: dict[str, tuple[OpenIDServiceEndpoint, float]] = {}  # identifier -> (endpoint, expires)
        self._lock = threading.Lock()

    def endpoint(self, identifier: str) -> OpenIDServiceEndpoint:
        """The endpoint to begin a sign-in at ``identifier``: remembered, or discovered now (blocks)."""
        if self.ttl <= 0 or identifier not in self.identifiers:
            return self._discover(identifier)
        now = self._clock()
        with self._lock:
            cached, expires = self._entries.get(identifier, (None, 0.0))
        if cached is not None and expires > now:
            return _copy(cached)
        endpoint = self._discover(identifier)
        if endpoint.isOPIdentifier() and endpoint.canonicalID is None and isinstance(endpoint.server_url, str):
            with self._lock:
                self._entries[identifier] = (_copy(endpoint), now + self.ttl)
        return endpoint

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


__all__ = ["DISCOVERY_TTL", "DiscoveryCache", "discover_endpoint"]
