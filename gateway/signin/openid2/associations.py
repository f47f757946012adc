"""python3-openid's associations, each endpoint's newest kept in memory for a few seconds.

An association is the MAC key the gateway and a provider endpoint share
(OpenID 2.0 §8); python3-openid negotiates one per endpoint and keeps it in
the store until it expires (hours), so it is already reused across sign-ins.
But every sign-in still reads it from the store twice: at the start (which
one to use) and at completion (the one the answer names, to check the
signature). :class:`RememberedAssociations` is the store python3-openid is
given: it answers those reads from memory for ``ttl`` seconds (default
:data:`ASSOCIATION_TTL`) and passes everything else through.

What stays the same: the signature of every answer is checked, with the
association its handle names (a handle the memory does not hold is read from
the store); an expired association is never returned; the nonce is recorded
in the store on every sign-in. When the provider says a handle is invalid
(``invalidate_handle``), python3-openid removes it, and it is forgotten here
at once. Another instance or worker removing it from the shared store is
noticed within ``ttl`` seconds; until then an answer about it would name the
handle as invalid and be verified with the provider directly
(check_authentication), as for any association the provider has dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from openid.association import Association

from gateway.store import Store

ASSOCIATION_TTL = 30.0  # seconds


@dataclass(frozen=True, slots=True)
class _Remembered:
    association: Association
    until: float


class RememberedAssociations:
    """python3-openid's OpenIDStore: ``store``, with each endpoint's newest association remembered briefly."""

    def __init__(self, store: Store, ttl: float = ASSOCIATION_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._newest: dict[str, _Remembered] = {}

    def getAssociation(self, server_url: str, handle: str | None = None) -> Association | None:
        now = self._clock()
        with self._lock:
            remembered = self._newest.get(server_url)
        if remembered is not None and remembered.until > now and remembered.association.expiresIn > 0 \
                and (handle is None or remembered.association.handle == handle):
            return remembered.association
        association = self.store.getAssociation(server_url, handle)
        if isinstance(association, Association) and handle is None:
            self._remember(server_url, association, now)
        return association if isinstance(association, Association) else None

    def storeAssociation(self, server_url: str, association: Association) -> None:
        self.store.storeAssociation(server_url, association)
        self._remember(server_url, association, self._clock())

    def removeAssociation(self, server_url: str, handle: str) -> bool:
        with self._lock:
            remembered = self._newest.get(server_url)
            if remembered is not None and remembered.association.handle == handle:
                del self._newest[server_url]
        return self.store.removeAssociation(server_url, handle)

    def useNonce(self, server_url: str, timestamp: int, salt: str) -> bool:
        return self.store.useNonce(server_url, timestamp, salt)

    def cleanupNonces(self) -> int:
        return self.store.cleanupNonces()

    def cleanupAssociations(self) -> int:
        return self.store.cleanupAssociations()

    def _remember(self, server_url: str, association: Association, now: float) -> None:
        if self.ttl > 0:
            with self._lock:
                self._newest[server_url] = _Remembered(association, now + self.ttl)


__all__ = ["ASSOCIATION_TTL", "RememberedAssociations"]
