"""The shared store of several gateway instances: one Redis server (``store = "redis://…"``).

Synchronous on purpose, like the SQLite store: python3-openid calls the store
from sign-in threads, the revocation cache from its own thread, the CLI
directly, and the hot path (``/_gateway/auth``, the proxy) never calls it. So
this is redis-py's blocking client on its thread-safe connection pool, with a
socket timeout (``?timeout=``, default 2 s) on every connect and reply: a slow
or stopped Redis gives :class:`~gateway.errors.StoreUnavailable` (a 503,
fail closed) within the timeout, never a hang or a pile-up.

Retries. redis-py re-sends a command once after a *connection* error (a
pooled connection that died with a restarted Redis heals that way); never after
a timeout (a slow server is not helped by more work). A connection can break
after Redis ran the command but before its reply arrived, so every command
must survive being run twice:

- sessions, series, provider sessions, login states, associations, links:
  writing the same record again changes nothing (``create_session`` leaves an
  existing id alone; ``link_identity`` answers True for its own record, False
  only for another link of the key);
- revocations: a revoked record is not revoked or logged again, and the ids
  returned are the same;
- ``rotate_series``: the script recognises its own finished swap (the current
  hash is the new one and the previous hash the old one) and answers True, so a
  retry is never mistaken for a stolen token;
- ``useNonce``, ``use_logout_token``: the value written is a random token of
  this call; finding its own token means "recorded by me", not a replay;
- ``take_login_state`` (``GETDEL``): a retry finds nothing, so that sign-in
  fails closed ("start again"); the state is never used twice;
- ``add_hit`` (``INCR``): a retry counts one event twice: a limit a little
  stricter, never looser; ``unlink_identity``: a retry answers None (the first run unlinked and ended the
  sessions and series the link started; the revocation log tells every instance).

A timed-out command may still run later; each is then the same as a completed
one whose answer was lost (a rotation so lost looks like a concurrent restore
to :mod:`gateway.state.remember`, whose grace rule is made for that).

What a dump of this Redis holds cannot sign anyone in: remember-me tokens are
stored as hashes only; session ids are useless without the gateway's secret
keys, because the session cookie is HMAC-signed; login states and provider
sessions (ID tokens) live minutes, a session, or a remember-me sign-in's
series. Records are plain strings and JSON, never pickles. Every key but the
links (the account's own, bounded by the number of people) and the index of
associations' servers expires; the server must run with
``maxmemory-policy noeviction`` (checked at open).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

import redis
from openid.association import Association
from openid.store import nonce as openid_nonce
from redis.backoff import NoBackoff
from redis.retry import Retry

import gateway.store.redis_lua as redis_lua
from gateway.errors import StoreMisconfigured, StoreUnavailable
from gateway.observe import metrics
from gateway.store.base import (
    CUTOFF_KEEP,
    LinkRecord,
    LoginStateRecord,
    ProviderSessionRecord,
    RememberRecord,
    RevocationPushes,
    SessionRecord,
    assurance_of,
    assurance_text,
    cutoff_entry,
)
from gateway.store.location import RedisLocation, parse_redis

T = TypeVar("T")
logger = logging.getLogger(__name__)

# Records outlive their expiry by this much, so purge_expired (every few minutes) unindexes them before Redis
# drops them; the TTL is the backstop when no gateway purges.
MARGIN = 3600
PURGE_BATCH = 500
MIN_VERSION = (7, 0)  # EXPIRETIME, EXPIREAT NX/GT, GETDEL, SET … EXAT
ERRORS = (redis.exceptions.RedisError, OSError)


def _num(value: float) -> str:
    """A time as the scripts store it: ``repr`` round-trips a float exactly."""
    return repr(float(value))


def _at(expires: float) -> int:
    """The second a record's key expires at."""
    return math.ceil(expires) + MARGIN


def _opt_float(value: str | None) -> float | None:
    return float(value) if value else None


class RedisStore:
    """Sessions, revocations, remember-me series, sign-ins in flight and rate limits of every instance."""

    def __init__(self, location: str | RedisLocation) -> None:
        self.location = parse_redis(location) if isinstance(location, str) else location
        self.prefix = self.location.prefix
        self.name = f"Redis store {self.location.shown}"
        self._client = self._new_client(retries=1)
        script = self._client.register_script
        self._revoke = script(redis_lua.REVOKE)
        self._create_session = script(redis_lua.CREATE_SESSION)
        self._rotate = script(redis_lua.ROTATE_SERIES)
        self._use_once = script(redis_lua.USE_ONCE)
        self._use_logout_token = script(redis_lua.RECORD_LOGOUT_JTI)
        self._put_provider_session = script(redis_lua.PUT_PROVIDER_SESSION)
        self._get_provider_session = script(redis_lua.GET_PROVIDER_SESSION)
        self._link = script(redis_lua.LINK)
        self._unlink = script(redis_lua.UNLINK)
        self._read_log = script(redis_lua.READ_LOG)
        self._purge = script(redis_lua.PURGE)
        try:
            self._check_server()
        except BaseException:
            self.close()
            raise

    # -- plumbing ---------------------------------------------------------

    def _new_client(self, retries: int) -> redis.Redis:
        timeout = self.location.timeout
        return redis.Redis.from_url(
            self.location.url, decode_responses=True, socket_timeout=timeout, socket_connect_timeout=timeout,
            socket_keepalive=True, retry=Retry(NoBackoff(), retries, supported_errors=(redis.ConnectionError,)),
            client_name="openid-gateway")

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        message = str(exc) or type(exc).__name__
        password = self.location.password
        if password:
            message = message.replace(password, "***")
        return StoreUnavailable(f"{self.name}: {message}")

    def _call(self, work: Callable[[redis.Redis], T]) -> T:
        """Run ``work``; any Redis or socket error becomes StoreUnavailable (timed for the store metrics)."""
        started = time.perf_counter()
        failed = True
        try:
            result = work(self._client)
            failed = False
            return result
        except ERRORS as exc:
            raise self._unavailable(exc) from exc
        finally:
            metrics.observe_store(time.perf_counter() - started, failed)

    def _script(self, script: Any, *args: object, now: float | None = None) -> Any:
        argv = [self.prefix, _num(time.time() if now is None else now), MARGIN, *args]
        return self._call(lambda client: script(args=argv, client=client))

    def _key(self, kind: str, *parts: str) -> str:
        return self.prefix + kind + ":" + "\0".join(parts)

    @staticmethod
    def _extend(pipe: Any, key: str, at: int) -> None:
        """Expire ``key`` at ``at`` or later: set when it has no expiry yet, else only push it back."""
        pipe.expireat(key, at, nx=True)
        pipe.expireat(key, at, gt=True)

    def _check_server(self) -> None:
        """Reachable, recent enough, and not allowed to evict: refuse to run on a Redis that forgets sign-outs."""
        try:
            self._client.ping()
        except ERRORS as exc:
            raise self._unavailable(exc) from exc
        try:
            version = str(cast(Mapping[str, Any], self._client.info("server")).get("redis_version", ""))
            numbers = tuple(int(part) for part in version.split(".")[:2])
        except (redis.exceptions.ResponseError, ValueError):
            numbers = MIN_VERSION  # INFO disabled or odd: the scripts will tell
        except ERRORS as exc:
            raise self._unavailable(exc) from exc
        if numbers < MIN_VERSION:
            raise StoreMisconfigured(f"{self.name}: Redis {version} is too old; the gateway needs Redis 7.0 or newer")
        try:
            policy = cast(Mapping[str, str], self._client.config_get("maxmemory-policy")).get("maxmemory-policy")
        except redis.exceptions.ResponseError as exc:  # CONFIG renamed or not allowed (managed Redis)
            logger.warning("%s: cannot read maxmemory-policy (%s): make sure it is noeviction, or Redis may "
                           "evict sessions and revocations and silently undo sign-outs", self.name, exc)
            return
        except ERRORS as exc:
            raise self._unavailable(exc) from exc
        if policy is None:
            logger.warning("%s: maxmemory-policy not reported: make sure it is noeviction", self.name)
        elif policy != "noeviction":
            raise StoreMisconfigured(
                f"{self.name}: maxmemory-policy is {policy!r}; set it to noeviction (redis.conf: maxmemory-policy "
                "noeviction): every gateway key has a TTL, so any eviction policy, volatile-* too, may drop "
                "sessions and revocations and silently undo sign-outs")

    def ping(self) -> None:
        self._call(lambda client: client.ping())

    def close(self) -> None:
        try:
            self._client.close()
        except ERRORS:  # pragma: no cover - closing a broken pool
            pass

    # -- python3-openid's OpenIDStore interface ---------------------------

    def storeAssociation(self, server_url: str, association: Association) -> None:
        value = json.dumps({"secret": base64.b64encode(association.secret).decode(), "issued": association.issued,
                            "lifetime": association.lifetime, "type": association.assoc_type})
        at = int(association.issued + association.lifetime) + 1
        key = self._key("a", server_url)

        def work(client: redis.Redis) -> None:
            with client.pipeline() as pipe:
                pipe.hset(key, association.handle, value)
                self._extend(pipe, key, at)
                pipe.zadd(self.prefix + "al", {server_url: at}, gt=True)
                self._extend(pipe, self.prefix + "al", at)
                pipe.execute()

        self._call(work)

    def getAssociation(self, server_url: str, handle: str | None = None) -> Association | None:
        key = self._key("a", server_url)
        if handle is None:
            rows = cast(dict[str, str], self._call(lambda client: client.hgetall(key)))
        else:
            value = self._call(lambda client: client.hget(key, handle))
            rows = {handle: cast(str, value)} if value is not None else {}
        live: list[Association] = []
        for found, value in rows.items():
            assoc = self._association(found, value)
            if assoc is None or assoc.expiresIn == 0:
                self.removeAssociation(server_url, found)
            else:
                live.append(assoc)
        return max(live, key=lambda a: a.issued) if live else None

    @staticmethod
    def _association(handle: str, value: str) -> Association | None:
        try:
            data = json.loads(value)
            return Association(handle, base64.b64decode(data["secret"]), int(data["issued"]), int(data["lifetime"]),
                               str(data["type"]))
        except (ValueError, KeyError, TypeError):  # not written by storeAssociation: treat as gone
            return None

    def removeAssociation(self, server_url: str, handle: str) -> bool:
        return bool(self._call(lambda client: client.hdel(self._key("a", server_url), handle)))

    def useNonce(self, server_url: str, timestamp: int, salt: str) -> bool:
        """``SET NX`` until the nonce is too old to be accepted anyway; False when seen before or too skewed."""
        if abs(timestamp - time.time()) > openid_nonce.SKEW:
            return False
        key = self._key("n", server_url, str(timestamp), salt)
        at = int(timestamp) + openid_nonce.SKEW + 1
        token = secrets.token_hex(8)
        return bool(self._call(lambda client: self._use_once(keys=[key], args=[token, at], client=client)))

    def cleanupNonces(self) -> int:
        """Nothing to do: each nonce key expires when the skew window has passed it."""
        return 0

    def cleanupAssociations(self) -> int:
        now = int(time.time())

        def work(client: redis.Redis) -> int:
            removed = 0
            for server_url in cast(list[str], client.zrange(self.prefix + "al", 0, -1)):
                key = self._key("a", server_url)
                for handle, value in cast(dict[str, str], client.hgetall(key)).items():
                    assoc = self._association(handle, value)
                    if assoc is None or assoc.issued + assoc.lifetime < now:
                        removed += client.hdel(key, handle)
            client.zremrangebyscore(self.prefix + "al", "-inf", f"({now}")
            return removed

        return self._call(work)

    # -- sessions ---------------------------------------------------------

    def create_session(self, record: SessionRecord) -> None:
        """Record a session; one restored from a series revoked meanwhile is born revoked (one script)."""
        self._script(self._create_session, record.session_id, record.user_id, _num(record.created),
                     _num(record.expires), record.series_id or "", record.user_agent[:256], record.client_addr,
                     record.link_key, now=record.created)

    def _revoke_by(self, kind: str, now: float, *args: str) -> list[str]:
        padded = [*args, "", "", ""][:3]
        return [str(sid) for sid in self._script(self._revoke, kind, *padded, now=now)]

    def revoke_session(self, session_id: str, now: float) -> None:
        self._revoke_by("session", now, session_id)

    def revoke_user(self, user_id: str, now: float) -> list[str]:
        return self._revoke_by("user", now, user_id, cutoff_entry(user_id, now), _num(now + CUTOFF_KEEP))

    def _sessions(self, client: redis.Redis, ids: list[str]) -> list[SessionRecord]:
        with client.pipeline(transaction=False) as pipe:
            for sid in ids:
                pipe.hgetall(self._key("s", sid))
            rows = cast(list[dict[str, str]], pipe.execute())
        return [SessionRecord(sid, row["u"], float(row["c"]), float(row["e"]), row.get("sr"), row.get("ua", ""),
                              row.get("ad", ""), _opt_float(row.get("rv")), row.get("lk", ""))
                for sid, row in zip(ids, rows, strict=True) if row]

    @staticmethod
    def _live(records: list[SessionRecord], now: float) -> list[SessionRecord]:
        live = [r for r in records if r.revoked_at is None and r.expires > now]
        return sorted(live, key=lambda r: r.created, reverse=True)

    def list_sessions(self, user_id: str, now: float) -> list[SessionRecord]:
        def work(client: redis.Redis) -> list[SessionRecord]:
            ids = sorted(cast(set[str], client.smembers(self._key("su", user_id))))
            return [r for r in self._sessions(client, ids) if r.user_id == user_id]

        return self._live(self._call(work), now)

    def list_all_sessions(self, now: float) -> list[SessionRecord]:
        def work(client: redis.Redis) -> list[SessionRecord]:
            ids = cast(list[str], client.zrangebyscore(self.prefix + "sx", f"({_num(now)}", "+inf"))
            return self._sessions(client, ids)

        return self._live(self._call(work), now)

    def revoke_all(self, now: float) -> list[str]:
        return self._revoke_by("all", now, "", cutoff_entry("", now), _num(now + CUTOFF_KEEP))

    def revocations_after(self, seq: int, now: float) -> tuple[list[str], int]:
        rows = [str(row) for row in self._script(self._read_log, str(seq), now=now)]
        return rows[:-1], max(seq, int(float(rows[-1])))

    # -- OpenID Connect logout ----------------------------------------------

    def put_provider_session(self, record: ProviderSessionRecord) -> None:
        """One script: it reads the series' expiry, which the record and its indexes live until when it is later."""
        self._script(self._put_provider_session, record.session_id, record.provider, record.sub, record.sid or "",
                     record.id_token, _num(record.expires), record.series_id or "")

    def get_provider_session(self, session_id: str) -> ProviderSessionRecord | None:
        """The session's own record, else the one of the sign-in that started the series it was restored from."""
        return self._provider_session(session_id, "")

    def get_series_provider_session(self, series_id: str) -> ProviderSessionRecord | None:
        """The record ``pr:<series>`` names (:data:`~gateway.store.redis_lua.PUT_PROVIDER_SESSION`)."""
        return self._provider_session("", series_id)

    def _provider_session(self, session_id: str, series_id: str) -> ProviderSessionRecord | None:
        found = [str(value) for value in self._script(self._get_provider_session, session_id, series_id)]
        if not found:
            return None
        row = dict(zip(found[1::2], found[2::2], strict=True))
        return ProviderSessionRecord(found[0], row["pv"], row["sub"], row.get("sid"), row["it"], float(row["e"]),
                                     row.get("sr"))

    def revoke_provider_sessions(self, provider: str, sub: str | None, sid: str | None, now: float) -> list[str]:
        """The sessions of ``sid`` when given (and of ``sub`` too when both are), else every one of ``sub``."""
        if sid is None and sub is None:
            return []
        return self._revoke_by("provider", now, provider, sub or "", sid or "")

    def use_logout_token(self, issuer: str, jti: str, expires: float, now: float) -> bool:
        key = self._key("lt", issuer, jti)
        token = secrets.token_hex(8)
        at = math.ceil(max(expires, now, time.time())) + 1
        return bool(self._call(lambda client: self._use_logout_token(
            keys=[key], args=[token, _num(expires), _num(now), at], client=client)))

    # -- remember-me series -----------------------------------------------

    def create_series(self, record: RememberRecord) -> None:
        """The token's hash only, never the token: a dump of Redis cannot restore a remember-me sign-in."""
        key = self._key("r", record.series_id)
        at = _at(record.expires)
        fields: dict[Any, str] = {
            "th": record.token_hash, "u": record.user_id, "n": record.nickname, "em": record.email,
            "c": _num(record.created), "lu": _num(record.last_used), "e": _num(record.expires),
            "ua": record.user_agent[:256], "pv": record.provider, "lk": record.link_key,
            "gr": json.dumps(list(record.groups)), "as": assurance_text(record.assurance)}
        users = self._key("ru", record.user_id)

        def work(client: redis.Redis) -> None:
            with client.pipeline() as pipe:
                pipe.hset(key, mapping=fields)
                pipe.expireat(key, at)
                pipe.sadd(users, record.series_id)
                self._extend(pipe, users, at)
                pipe.zadd(self.prefix + "rx", {record.series_id: record.expires})
                self._extend(pipe, self.prefix + "rx", at)
                pipe.execute()

        self._call(work)

    def get_series(self, series_id: str) -> RememberRecord | None:
        row = cast(dict[str, str], self._call(lambda client: client.hgetall(self._key("r", series_id))))
        if not row:
            return None
        return RememberRecord(series_id, row["th"], row["u"], row["n"], row["em"], float(row["c"]),
                              float(row["lu"]), float(row["e"]), row.get("ph"), _opt_float(row.get("ra")),
                              row.get("ua", ""), _opt_float(row.get("rv")), row.get("pv", ""), row.get("lk", ""),
                              tuple(json.loads(row.get("gr", "[]"))), assurance_of(row.get("as")))

    def rotate_series(self, series_id: str, old_hash: str, new_hash: str, now: float) -> bool:
        """Compare-and-swap in one script: of two instances restoring the same token, one rotates."""
        return bool(self._script(self._rotate, series_id, old_hash, new_hash, now=now))

    def revoke_series(self, series_id: str, now: float) -> list[str]:
        return self._revoke_by("series", now, series_id)

    # -- sign-ins in flight ------------------------------------------------

    def put_login_state(self, record: LoginStateRecord) -> None:
        value = json.dumps({"protocol": record.protocol, "provider": record.provider, "next": record.next,
                            "remember": record.remember, "created": _num(record.created),
                            "expires": _num(record.expires), "data": dict(record.data)}, separators=(",", ":"))
        key = self._key("l", record.state_id)
        at = _at(record.expires)

        def work(client: redis.Redis) -> None:
            with client.pipeline() as pipe:
                pipe.set(key, value, exat=at)
                pipe.zadd(self.prefix + "lx", {record.state_id: record.expires})
                self._extend(pipe, self.prefix + "lx", at)
                pipe.execute()

        self._call(work)

    def take_login_state(self, state_id: str, now: float) -> LoginStateRecord | None:
        """``GETDEL``: Redis runs one command at a time, so of two takes one gets the record."""
        def work(client: redis.Redis) -> str | None:
            with client.pipeline() as pipe:
                pipe.getdel(self._key("l", state_id))
                pipe.zrem(self.prefix + "lx", state_id)
                return cast(str | None, pipe.execute()[0])

        value = self._call(work)
        if value is None:
            return None
        try:
            row = json.loads(value)
            record = LoginStateRecord(state_id, row["protocol"], row["provider"], row["next"], bool(row["remember"]),
                                      float(row["created"]), float(row["expires"]), row["data"])
        except (ValueError, KeyError, TypeError):
            record = None
        if record is None or not isinstance(record.data, dict):  # written by put_login_state: only damage gets here
            raise StoreUnavailable(f"{self.name}: login state {state_id!r} is unreadable")
        return record if record.expires > now else None

    # -- linked sign-ins ---------------------------------------------------

    def link_identity(self, record: LinkRecord) -> bool:
        """One script: written only when the key is linked to nobody (of two links at once, one wins)."""
        return bool(self._script(self._link, record.identity_key, record.user_id, record.provider,
                                 _num(record.created), record.how))

    def _links(self, client: redis.Redis, keys: list[str]) -> list[LinkRecord]:
        with client.pipeline(transaction=False) as pipe:
            for identity_key in keys:
                pipe.hgetall(self._key("k", identity_key))
            rows = cast(list[dict[str, str]], pipe.execute())
        return [LinkRecord(identity_key, row["u"], row["pv"], float(row["c"]), row["h"])  # type: ignore[arg-type]
                for identity_key, row in zip(keys, rows, strict=True) if row]

    def linked_user(self, identity_key: str) -> LinkRecord | None:
        found = self._call(lambda client: self._links(client, [identity_key]))
        return found[0] if found else None

    def list_links(self, user_id: str) -> list[LinkRecord]:
        def work(client: redis.Redis) -> list[LinkRecord]:
            keys = sorted(cast(set[str], client.smembers(self._key("ku", user_id))))
            return [link for link in self._links(client, keys) if link.user_id == user_id]

        return sorted(self._call(work), key=lambda link: link.created)

    def unlink_identity(self, identity_key: str, user_id: str, now: float) -> list[str] | None:
        """One script: the link, and the series and sessions it started (found among the user's own)."""
        found, *ended = self._script(self._unlink, identity_key, user_id, now=now)
        return [str(sid) for sid in ended] if int(found) else None

    # -- rate limits ---------------------------------------------------------

    def add_hit(self, bucket: str, window: int, now: float) -> tuple[int, int]:
        """``INCR`` and ``EXPIREAT`` in one ``MULTI``: exact across instances; a window lives two windows."""
        number = int(now // window)
        current, previous = self._key("h", bucket, str(number)), self._key("h", bucket, str(number - 1))

        def work(client: redis.Redis) -> tuple[int, int]:
            with client.pipeline() as pipe:
                pipe.incr(current)
                pipe.expireat(current, (number + 2) * window)
                pipe.get(previous)
                hits, _, before = pipe.execute()
            return int(hits), int(before or 0)

        return self._call(work)

    def peek_hits(self, bucket: str, window: int, now: float) -> tuple[int, int]:
        number = int(now // window)
        keys = [self._key("h", bucket, str(number)), self._key("h", bucket, str(number - 1))]
        current, previous = cast(list[str | None], self._call(lambda client: client.mget(keys)))
        return int(current or 0), int(previous or 0)

    def revocation_pushes(self) -> RevocationPushes:
        """A subscription to the revocation channel, on a connection of its own."""
        return RedisPushes(self)

    # -- housekeeping ------------------------------------------------------

    def purge_expired(self, now: float) -> int:
        """Remove expired records and their index entries, a batch per script (Redis stays responsive)."""
        removed = 0
        while True:
            count, more = self._script(self._purge, PURGE_BATCH, now=now)
            removed += int(count)
            if not int(more):
                break
        self.cleanupAssociations()
        return removed


class RedisPushes:
    """Revocations pushed by any instance: a pub/sub subscription, (re)made by :meth:`wait`.

    Right after (re)subscribing :meth:`wait` answers True at once: what was
    revoked while nobody listened was not pushed, so the caller reads the log.
    No retries on this connection: a lost subscription must be reported, not
    silently remade with the messages in between missed.
    """

    def __init__(self, store: RedisStore) -> None:
        self._store = store
        self._channel = store.prefix + "revoked"
        self._client = store._new_client(retries=0)
        self._pubsub: Any = None
        self._lock = threading.Lock()

    def wait(self, timeout: float) -> bool:
        with self._lock:
            try:
                if self._pubsub is None:
                    pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                    self._pubsub = pubsub
                    pubsub.subscribe(self._channel)
                    return True
                deadline = time.monotonic() + timeout
                arrived = False
                while not arrived:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    arrived = self._pubsub.get_message(timeout=remaining) is not None
                while arrived and self._pubsub.get_message(timeout=0) is not None:
                    pass  # several revocations, one wake-up
                return arrived
            except ERRORS as exc:
                self._drop()
                raise self._store._unavailable(exc) from exc

    def _drop(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                pubsub.close()
            except ERRORS:  # pragma: no cover - closing a broken connection
                pass

    def close(self) -> None:
        with self._lock:
            self._drop()
            self._client.close()


__all__ = ["RedisPushes", "RedisStore"]
