"""Session, remember-me and login-state cookies (itsdangerous, with key rotation).

The session cookie carries the session id and the identity, signed with the
newest secret key and verified with any of them (itsdangerous' "list of keys,
newest last"). Its timestamp is the time of the last refresh, so the idle
timeout is just ``max_age`` on verification; the absolute lifetime is checked
against the sign-in time inside the payload. Revocation is *not* decided here:
see :mod:`gateway.state.revocation`.

Decoding never raises: a tampered, expired, foreign or garbage cookie is
simply "not signed in".

The auth check decodes the same cookie on every request of a browser, so a
verified cookie is remembered for a few seconds (:class:`VerifiedCookies`):
the signature is then checked once per cookie value and interval, while the
idle and absolute lifetimes are still checked on every request (and
revocation, by the caller). Only cookies that verified are remembered, so
garbage cannot fill the cache.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadData, TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer

from gateway.types import Assurance, Identity

SESSION_SALT = "openid-gateway.session"
REMEMBER_SALT = "openid-gateway.state.remember"
LOGIN_SALT = "openid-gateway.login-state"
MAX_COOKIE_LENGTH = 4096
# Verified session cookies kept in memory: at most this many, each for at most this long.
VERIFIED_CACHE_SIZE = 2048
VERIFIED_CACHE_TTL = 5.0


@dataclass(frozen=True, slots=True)
class Session:
    """A decoded, signature-checked session cookie.

    ``auth_time`` is when this session started (its absolute lifetime counts from it); ``assurance`` when and
    how the person last authenticated at their provider (step-up rules judge it). They differ for a session
    restored from remember-me: it starts now, but carries the series' recorded assurance.
    """

    session_id: str
    identity: Identity
    auth_time: float
    series_id: str | None
    refreshed: float
    assurance: Assurance


class ClockedSigner(TimestampSigner):
    """itsdangerous' timestamp signer reading the time from ``clock`` instead of ``time.time``.

    The signature's timestamp is the session's last refresh, so whoever tests
    lifetimes needs to move this clock, not patch itsdangerous' module.
    """

    def __init__(self, *args: Any, clock: Callable[[], float] = time.time, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock

    def get_timestamp(self) -> int:
        return int(self.clock())


class SessionCodec:
    """Signs and verifies session cookies; enforces idle and absolute lifetimes.

    ``clock`` stamps new signatures and judges their age (itsdangerous'
    ``max_age``); :meth:`decode`'s ``now`` judges the lifetimes. The gateway
    passes the same time to both.
    """

    def __init__(self, secret_keys: list[str], idle_timeout: int, max_lifetime: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._serializer = URLSafeTimedSerializer(secret_keys, salt=SESSION_SALT, signer=ClockedSigner,
                                                  signer_kwargs={"clock": clock})
        self.idle_timeout = idle_timeout
        self.max_lifetime = max_lifetime
        # Re-sign at most this often: often enough that an active user never
        # idles out, rarely enough that most requests set no cookie.
        self.refresh_after = max(1, min(300, idle_timeout // 10))
        # Per codec, never shared: a hit must mean "verified with *these* keys".
        self._verified = VerifiedCookies()

    def encode(self, session_id: str, identity: Identity, auth_time: float, series_id: str | None,
               assurance: Assurance | None = None) -> str:
        """The cookie value; ``assurance`` None means "authenticated at ``auth_time``, no acr" (then not written)."""
        payload = [session_id, identity.user_id, identity.nickname, identity.email, auth_time, series_id,
                   identity.provider]
        recorded = assurance is not None and assurance != Assurance(auth_time)
        if identity.groups or recorded:  # groups an OpenID Connect provider vouched for (its groups_claim)
            payload.append(list(identity.groups))
        if recorded:
            assert assurance is not None
            payload.append([assurance.auth_time, assurance.acr, list(assurance.amr)])
        return self._serializer.dumps(payload)

    def refreshed(self, session: Session) -> str:
        return self.encode(session.session_id, session.identity, session.auth_time, session.series_id,
                           session.assurance)

    def decode(self, value: str | None, now: float) -> Session | None:
        """The session in ``value`` if its signature is valid and it is within both lifetimes, else None."""
        if not value or len(value) > MAX_COOKIE_LENGTH:
            return None
        session = self._verified.get(value, now)
        if session is None:
            session = self._verify(value)
            if session is None:
                return None
            self._verified.put(value, session, now)
        return session if self.alive(session, now) else None

    def alive(self, session: Session, now: float) -> bool:
        """Within the idle timeout (since the cookie was last signed) and the absolute lifetime.

        The idle check is itsdangerous' ``max_age`` check (whole seconds),
        repeated for remembered cookies. A signature from the future was
        refused when the cookie was verified; if the clock goes back, the
        cache verifies again (:meth:`VerifiedCookies.get`).
        """
        return (int(now) - int(session.refreshed) <= self.idle_timeout
                and now - session.auth_time <= self.max_lifetime)

    def _verify(self, value: str) -> Session | None:
        """Check the signature and the payload's shape: the expensive part of :meth:`decode`."""
        try:
            payload, signed_at = self._serializer.loads(value, max_age=self.idle_timeout, return_timestamp=True)
        except (BadData, UnicodeError, ValueError, TypeError, json.JSONDecodeError):
            return None
        # Six fields: a cookie signed before the provider was recorded (it has none); eight: with provider groups;
        # nine: with an assurance other than "authenticated when the session started, no acr" (step-up).
        if not (isinstance(payload, list) and len(payload) in (6, 7, 8, 9)):
            return None
        session_id, user_id, nickname, email, auth_time, series_id, *rest = payload
        provider = rest[0] if rest else ""
        groups = rest[1] if len(rest) > 1 else []
        if not isinstance(auth_time, int | float):
            return None
        assurance = _assurance(rest[2]) if len(rest) > 2 else Assurance(float(auth_time))
        if not (
            isinstance(session_id, str)
            and isinstance(user_id, str)
            and user_id
            and isinstance(nickname, str)
            and isinstance(email, str)
            and assurance is not None
            and (series_id is None or isinstance(series_id, str))
            and isinstance(provider, str)
            and isinstance(groups, list)
            and all(isinstance(group, str) for group in groups)
        ):
            return None
        return Session(session_id, Identity(user_id, nickname, email, tuple(groups), provider), float(auth_time),
                       series_id, signed_at.timestamp(), assurance)

    def needs_refresh(self, session: Session, now: float) -> bool:
        return now - session.refreshed >= self.refresh_after


def _assurance(value: Any) -> Assurance | None:
    """The ``[auth_time, acr, amr]`` of a cookie's ninth field, or None when it is not that shape."""
    if not (isinstance(value, list) and len(value) == 3):
        return None
    auth_time, acr, amr = value
    if not (isinstance(auth_time, int | float) and isinstance(acr, str) and isinstance(amr, list)
            and all(isinstance(method, str) for method in amr)):
        return None
    return Assurance(float(auth_time), acr, tuple(amr))


class VerifiedCookies:
    """Session cookies whose signature verified recently: value -> (session, when verified).

    Bounded in size (the oldest entry goes first) and in time (an entry older
    than ``ttl`` seconds is verified again), so memory stays small whatever
    the traffic and a cookie's signature is re-checked every few seconds.
    Keyed by the whole cookie value, signature included: a hit means these
    exact bytes verified with the current keys. Lifetimes and revocation are
    not cached; callers check them on every request.
    """

    __slots__ = ("_entries", "size", "ttl")

    def __init__(self, size: int = VERIFIED_CACHE_SIZE, ttl: float = VERIFIED_CACHE_TTL) -> None:
        self.size = size
        self.ttl = ttl
        self._entries: dict[str, tuple[Session, float]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, value: str, now: float) -> Session | None:
        entry = self._entries.get(value)
        if entry is None:
            return None
        if 0 <= now - entry[1] < self.ttl:
            return entry[0]
        self._entries.pop(value, None)
        return None

    def put(self, value: str, session: Session, now: float) -> None:
        # Used from the event loop only (the auth check and the pages), never from worker threads.
        if self.size <= 0:
            return
        entries = self._entries
        while len(entries) >= self.size:
            del entries[next(iter(entries))]
        entries[value] = (session, now)


class TokenCodec:
    """Signs small string values (remember-me ``series:token``, login state ids)."""

    def __init__(self, secret_keys: list[str], salt: str) -> None:
        self._serializer = URLSafeSerializer(secret_keys, salt=salt)

    def encode(self, value: str) -> str:
        return self._serializer.dumps(value)

    def decode(self, value: str | None) -> str | None:
        if not value or len(value) > MAX_COOKIE_LENGTH:
            return None
        try:
            result = self._serializer.loads(value)
        except (BadData, UnicodeError, ValueError, TypeError, json.JSONDecodeError):
            return None
        return result if isinstance(result, str) else None


def iter_cookies(header: str | None, name: str) -> Iterator[str]:
    """The values of the cookies called ``name`` in a Cookie header, in order, without a full parse.

    One parser for every reader (the auth check, logout, the pages), so that
    they never disagree on which of two same-named cookies they saw.
    """
    if not header:
        return
    prefix = name + "="
    for part in header.split(";"):
        part = part.strip()
        if part.startswith(prefix):
            value = part[len(prefix) :]
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            yield value


def read_cookie(header: str | None, name: str) -> str | None:
    """The first cookie called ``name``: the hot path needs one, and stops looking there."""
    return next(iter_cookies(header, name), None)


def read_cookies(header: str | None, name: str) -> list[str]:
    """Every cookie called ``name``, in order.

    A browser sends several cookies of one name when they differ in Domain or
    Path (a sibling subdomain can plant one): whoever acts on "the" session
    (logout) must see every copy, not whichever a parser happens to keep.
    """
    return list(iter_cookies(header, name))


def host_cookie_name(name: str, https: bool, domain: str) -> str:
    """``__Host-<name>`` when the site is https and its cookies carry no ``Domain``, else ``name``.

    A browser accepts a ``__Host-`` cookie only from this very host, over
    https, with ``Path=/`` and no ``Domain``: a sibling subdomain cannot plant
    a second copy next to ours. Names already carrying a prefix are kept.
    """
    if https and not domain and not name.startswith(("__Host-", "__Secure-")):
        return "__Host-" + name
    return name


def strip_cookies(header: str, names: frozenset[str], prefixes: tuple[str, ...] = ()) -> str:
    """The Cookie header without the cookies named in ``names`` or starting with ``prefixes``.

    The gateway's cookies sign a person in: the app behind it (and its access
    logs) must never receive them. The app's own cookies pass unchanged, in order.
    """
    kept = []
    for part in header.split(";"):
        name = part.split("=", 1)[0].strip()
        if name in names or (prefixes and name.startswith(prefixes)):
            continue
        if part.strip():
            kept.append(part.strip())
    return "; ".join(kept)


class CookiePolicy:
    """Builds ``Set-Cookie`` values with the gateway's attributes, precomputed once.

    HttpOnly and SameSite=Lax always; ``Secure`` when the public URL is https;
    ``Domain`` only when configured (a host-only cookie is the safer default).
    """

    def __init__(self, secure: bool, domain: str = "") -> None:
        suffix = "; HttpOnly; SameSite=Lax"
        if secure:
            suffix += "; Secure"
        if domain:
            suffix += f"; Domain={domain}"
        self._suffix = suffix

    def set(self, name: str, value: str, *, max_age: int | None = None, path: str = "/") -> str:
        _check_cookie(name, value)
        age = f"; Max-Age={max_age}" if max_age is not None else ""
        return f"{name}={value}; Path={path}{age}{self._suffix}"

    def delete(self, name: str, *, path: str = "/") -> str:
        _check_cookie(name, "")
        return f"{name}=; Path={path}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT{self._suffix}"


# RFC 6265 §4.1.1: a token for the name, cookie-octets for the value.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_COOKIE_VALUE = re.compile(r"[!#-+\--:<-\[\]-~]*")


def is_cookie_name(name: str) -> bool:
    return _COOKIE_NAME.fullmatch(name) is not None


def _check_cookie(name: str, value: str) -> None:
    """Refuse to build a header from a name or value that could split or smuggle it."""
    if not is_cookie_name(name) or not _COOKIE_VALUE.fullmatch(value):
        raise ValueError(f"not a valid cookie name/value: {name[:64]!r}")


def host_name(host: str) -> str:
    """The host name in a ``Host`` header or URL netloc: lower case, no port, no trailing dot ('' if none)."""
    try:
        return (urlsplit("//" + host).hostname or "").rstrip(".")
    except ValueError:
        return ""


def _domain_matches(host: str, domain: str) -> bool:
    domain = domain.lstrip(".").lower()
    return host == domain or host.endswith("." + domain)


def state_cookie_returns(request_host: str, public_url: str, cookie_domain: str = "") -> bool:
    """Whether a cookie set in answer to a request for ``request_host`` is sent to ``public_url``'s callback.

    The provider sends the browser back to ``public_url``; browsers match
    cookies by host name, not port (RFC 6265 §8.5), or by ``cookie_domain``.
    ``public_url = http://localhost:8080`` opened as ``127.0.0.1:8080`` is
    the classic setup mistake: the sign-in would fail only after the provider.
    An unknown host (no ``Host`` header) gets the benefit of the doubt.
    """
    ours, public = host_name(request_host), host_name(urlsplit(public_url).netloc)
    if not ours or ours == public:
        return True
    return bool(cookie_domain) and _domain_matches(ours, cookie_domain) and _domain_matches(public, cookie_domain)
