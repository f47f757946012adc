"""What the provider remembers between requests, all in this process's memory.

Pending consent requests, authorization codes, access tokens and sign-in sessions are
each an ``Expiring`` map: random keys, a lifetime, a size cap (a development tool forgets
the oldest rather than grow without bound). Everything runs on the event loop, so plain
dicts are enough.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
CAPACITY = 1000
# The two assurance levels (Core §2 acr): the consent form as it is, or with the development one-time code.
ACR_PWD = "urn:openid-gateway:dev:acr:pwd"
ACR_MFA = "urn:openid-gateway:dev:acr:mfa"
ACR_VALUES = (ACR_PWD, ACR_MFA)


class Expiring(Generic[T]):
    """Items under random keys that vanish after ``lifetime`` seconds."""

    def __init__(self, lifetime: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.lifetime = lifetime
        self._clock = clock
        self._items: dict[str, tuple[float, T]] = {}

    def add(self, item: T, key: str | None = None) -> str:
        now = self._clock()
        for old in [k for k, (expires, _) in self._items.items() if expires <= now]:
            del self._items[old]
        while len(self._items) >= CAPACITY:
            del self._items[next(iter(self._items))]
        key = key or secrets.token_urlsafe(32)
        self._items[key] = (now + self.lifetime, item)
        return key

    def get(self, key: str) -> T | None:
        entry = self._items.get(key)
        return entry[1] if entry is not None and entry[0] > self._clock() else None

    def take(self, key: str) -> T | None:
        """Like ``get`` but removes it: for things used once (codes, consent tokens)."""
        entry = self._items.pop(key, None)
        return entry[1] if entry is not None and entry[0] > self._clock() else None

    def values(self) -> list[tuple[str, T]]:
        now = self._clock()
        return [(key, item) for key, (expires, item) in self._items.items() if expires > now]

    def remove(self, key: str) -> None:
        self._items.pop(key, None)


@dataclass(frozen=True)
class User:
    """Who the person said they are on the consent page."""

    username: str
    name: str
    email: str | None
    email_verified: bool
    groups: tuple[str, ...]
    openid2_id: str | None = None

    @property
    def sub(self) -> str:
        """Stable per user name, across restarts too, and not the user name itself (as real providers do)."""
        return hashlib.sha256(f"devtools-oidc:{self.username}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked authorization request waiting for the person's decision."""

    client_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str
    response_mode: str
    openid2_realm: str | None
    # Step-up (Core §3.1.2.1): a new authentication asked for, the oldest acceptable one, the levels accepted.
    prompt_login: bool = False
    max_age: int | None = None
    acr_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Authentication:
    """When and how the person authenticated (Core §2 ``auth_time``, ``acr``, ``amr``)."""

    auth_time: int
    acr: str = ACR_PWD
    amr: tuple[str, ...] = ("pwd",)


@dataclass(frozen=True)
class Grant:
    """What an authorization code, and then an access token, stands for."""

    request: AuthorizationRequest
    user: User
    sid: str
    auth_time: int
    acr: str = ACR_PWD
    amr: tuple[str, ...] = ("pwd",)

    @property
    def authentication(self) -> Authentication:
        return Authentication(self.auth_time, self.acr, self.amr)


@dataclass(frozen=True)
class IssuedToken:
    """An access token as the provider remembers it, for introspection (RFC 7662 §2.2) and revocation (RFC 7009).

    ``user`` None: the client's own (client credentials). ``issuer``: the issuer it was issued under.
    """

    issuer: str
    client_id: str
    audience: str
    scope: tuple[str, ...]
    issued: int
    user: User | None = None
    authenticated: Authentication | None = None


@dataclass
class Session:
    """A sign-in at the provider (the ``sid`` claim) and the clients it signed in to."""

    user: User
    auth_time: int
    client_ids: set[str] = field(default_factory=set)
    acr: str = ACR_PWD
    amr: tuple[str, ...] = ("pwd",)
