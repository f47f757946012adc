"""What only the Redis store has to get right: its server's settings, outages, persistence, keys and memory.

Every test talks to a real redis-server (devtools.redis_server); the contract
shared with SQLite is in test_store_contract.py.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from openid.association import Association

from devtools.redis_server import RedisServer
from gateway.errors import StoreMisconfigured, StoreUnavailable
from gateway.store import (
    LinkRecord,
    LoginStateRecord,
    ProviderSessionRecord,
    RememberRecord,
    SessionRecord,
    open_store,
)
from gateway.store.redis import MARGIN, RedisStore
from tests.conftest import GatewayFactory
from tests.redis_fixtures import RedisServerFactory
from tests.servers import UvicornThread
from tests.signin_steps import sign_in

HANG_GUARD = 30.0  # far above any timeout here: only a hang reaches it


@pytest.fixture
def redis_store(redis_url: str) -> Iterator[RedisStore]:
    store = RedisStore(redis_url + "?timeout=1")
    yield store
    store.close()


def finishes(work: Callable[[], object]) -> BaseException | None:
    """Run ``work`` on a thread; the exception it raised (None if none). Fails the test if it hangs."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the caller
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG_GUARD)
    assert not thread.is_alive(), "the store call hung"
    return outcome[0]


def poll(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def now_records(n: str = "1") -> tuple[SessionRecord, RememberRecord]:
    now = time.time()
    return (SessionRecord(f"sess-{n}", "https://op/id/alice", now, now + 3600, f"series-{n}", "UA", "127.0.0.1"),
            RememberRecord(f"series-{n}", "hash-" + n, "https://op/id/alice", "alice", "a@x", now, now, now + 86400))


def every_method(store: RedisStore) -> dict[str, Callable[[], object]]:
    """One call of each Store method (what an outage must turn into StoreUnavailable)."""
    now = time.time()
    session, series = now_records("outage")
    assoc = Association("h", b"s" * 20, int(now), 600, "HMAC-SHA1")
    state = LoginStateRecord("st", "oidc", "OP", "/", False, now, now + 600, {})
    provider_session = ProviderSessionRecord("sess-outage", "OP", "sub", "sid", "a.b.c", now + 600)
    return {
        "storeAssociation": lambda: store.storeAssociation("https://op/", assoc),
        "getAssociation": lambda: store.getAssociation("https://op/"),
        "removeAssociation": lambda: store.removeAssociation("https://op/", "h"),
        "useNonce": lambda: store.useNonce("https://op/", int(now), "salt"),
        "cleanupAssociations": store.cleanupAssociations,
        "create_session": lambda: store.create_session(session),
        "revoke_session": lambda: store.revoke_session("sess-outage", now),
        "revoke_user": lambda: store.revoke_user("u", now),
        "list_sessions": lambda: store.list_sessions("u", now),
        "list_all_sessions": lambda: store.list_all_sessions(now),
        "revoke_all": lambda: store.revoke_all(now),
        "revocations_after": lambda: store.revocations_after(0, now),
        "put_provider_session": lambda: store.put_provider_session(provider_session),
        "get_provider_session": lambda: store.get_provider_session("sess-outage"),
        "revoke_provider_sessions": lambda: store.revoke_provider_sessions("OP", "sub", None, now),
        "use_logout_token": lambda: store.use_logout_token("https://op", "j", now + 60, now),
        "create_series": lambda: store.create_series(series),
        "get_series": lambda: store.get_series("series-outage"),
        "rotate_series": lambda: store.rotate_series("series-outage", "a", "b", now),
        "revoke_series": lambda: store.revoke_series("series-outage", now),
        "put_login_state": lambda: store.put_login_state(state),
        "take_login_state": lambda: store.take_login_state("st", now),
        "link_identity": lambda: store.link_identity(LinkRecord("k", "u", "OP", now)),
        "linked_user": lambda: store.linked_user("k"),
        "list_links": lambda: store.list_links("u"),
        "unlink_identity": lambda: store.unlink_identity("k", "u", now),
        "add_hit": lambda: store.add_hit("b", 60, now),
        "peek_hits": lambda: store.peek_hits("b", 60, now),
        "purge_expired": lambda: store.purge_expired(now),
        "ping": store.ping,
    }


# -- the server's settings ---------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-ttl"])
def test_a_redis_that_may_evict_keys_is_refused_at_open(redis_server: RedisServer, redis_url: str,
                                                        policy: str) -> None:
    """Every gateway key has a TTL: even volatile-* would evict sessions and revocations (forgotten sign-outs)."""
    with redis_server.client() as admin:
        admin.config_set("maxmemory-policy", policy)
        try:
            with pytest.raises(StoreMisconfigured, match=f"maxmemory-policy is '{policy}'; set it to noeviction"):
                RedisStore(redis_url)
        finally:
            admin.config_set("maxmemory-policy", "noeviction")


def test_a_redis_where_config_is_not_allowed_is_used_with_a_loud_warning(
        redis_server: RedisServer, redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Managed Redis services often forbid CONFIG: the gateway cannot check, so it says so and goes on.

    The user is the README's: the gateway's keys and channel only, no @dangerous commands.
    """
    with redis_server.client() as admin:
        admin.acl_setuser("gateway", enabled=True, passwords=["+gateway-pw-123456"], keys=["gw:*"],
                          channels=["gw:*"], commands=["+@all", "-@dangerous"])
        try:
            store = RedisStore(redis_url.replace("redis://", "redis://gateway:gateway-pw-123456@"))
            pushes = store.revocation_pushes()
            try:
                fill(store)
                store.purge_expired(time.time())
                assert pushes.wait(1) is True
            finally:
                pushes.close()
                store.close()
        finally:
            admin.acl_deluser("gateway")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("cannot read maxmemory-policy" in line and "noeviction" in line for line in warnings), warnings
    assert not any("gateway-pw-123456" in line for line in warnings)


def test_a_wrong_password_is_unavailable_and_never_shown(redis_server_factory: RedisServerFactory) -> None:
    server = redis_server_factory(extra_config={"requirepass": "right-password-4242"})
    wrong = server.url.replace("right-password-4242", "wrong-password-1717")
    with pytest.raises(StoreUnavailable) as raised:
        RedisStore(wrong)
    message = str(raised.value)
    assert "wrong-password-1717" not in message and "***" in message, message
    assert "right-password-4242" not in message
    store = RedisStore(server.url)  # the right one works
    store.ping()
    store.close()


# -- outages -----------------------------------------------------------------------------------------


def test_a_stopped_redis_makes_every_method_unavailable_and_the_same_store_works_again(
        redis_server_factory: RedisServerFactory) -> None:
    server = redis_server_factory(appendonly=True)
    store = RedisStore(server.url + "?timeout=1")
    try:
        session, _ = now_records()
        store.create_session(session)
        server.stop()
        for name, call in every_method(store).items():
            error = finishes(call)
            assert isinstance(error, StoreUnavailable), (name, error)
        server.start()
        assert finishes(store.ping) is None  # the pool reconnects by itself: no new store
        assert [s.session_id for s in store.list_sessions(session.user_id, time.time())] == [session.session_id]
        for name, call in every_method(store).items():
            assert finishes(call) is None, name
    finally:
        store.close()


def test_a_slow_redis_is_unavailable_after_the_timeout_not_a_hang(redis_server: RedisServer,
                                                                  redis_store: RedisStore) -> None:
    """DEBUG SLEEP holds the whole server: the store gives up after its 1 s timeout, long before Redis answers."""
    sleeper = threading.Thread(target=lambda: redis_server.client(socket_timeout=60).execute_command(  # type: ignore[no-untyped-call]
        "DEBUG", "SLEEP", "4"), daemon=True)
    sleeper.start()
    errors: list[BaseException] = []

    def stalled() -> bool:
        error = finishes(redis_store.ping)
        if error is not None:
            errors.append(error)
        return error is not None

    poll(stalled)
    assert isinstance(errors[0], StoreUnavailable) and "imeout" in str(errors[0]), errors
    assert sleeper.is_alive()  # Redis was still asleep: the store did not wait for it
    sleeper.join(HANG_GUARD)
    redis_store.ping()  # and it recovers


def test_revocation_pushes_report_a_lost_subscription_and_resubscribe(
        redis_server_factory: RedisServerFactory) -> None:
    server = redis_server_factory()
    store = RedisStore(server.url + "?timeout=1")
    pushes = store.revocation_pushes()
    try:
        assert pushes.wait(1) is True  # subscribed
        server.restart()
        with pytest.raises(StoreUnavailable):
            for _ in range(50):  # the closed connection is noticed at the next read
                pushes.wait(0.2)
        assert pushes.wait(1) is True  # subscribed again: read the log, what was revoked meanwhile was not pushed
        other = RedisStore(server.url)
        other.create_session(now_records()[0])
        other.revoke_session("sess-1", time.time())
        other.close()
        assert pushes.wait(10) is True
    finally:
        pushes.close()
        store.close()


def test_sessions_and_series_survive_a_restart_on_the_append_only_file(
        redis_server_factory: RedisServerFactory) -> None:
    server = redis_server_factory(appendonly=True)
    store = RedisStore(server.url)
    session, series = now_records()
    store.create_series(series)
    store.create_session(session)
    store.revoke_session("never-issued", time.time())
    store.create_session(SessionRecord("gone", "bob", time.time(), time.time() + 600))
    store.revoke_session("gone", time.time())
    _, position = store.revocations_after(0, time.time())
    store.close()
    server.restart()
    store = RedisStore(server.url)
    try:
        now = time.time()
        assert store.get_series(series.series_id) == series
        assert store.list_sessions(session.user_id, now) == [session]
        assert store.revocations_after(0, now) == (["gone"], position)  # the log, and its positions, kept
        store.create_session(SessionRecord("later", "bob", now, now + 600))
        store.revoke_session("later", now)
        assert store.revocations_after(position, now)[0] == ["later"]
    finally:
        store.close()


def test_a_lost_log_counter_never_hands_out_a_position_already_read(redis_store: RedisStore,
                                                                     redis_url: str) -> None:
    """Redis restarted without persistence (or the counter expired): new positions still follow old ones."""
    now = time.time()
    redis_store.create_session(SessionRecord("a", "u", now, now + 600))
    redis_store.revoke_session("a", now)
    _, position = redis_store.revocations_after(0, now)
    with redis.Redis.from_url(redis_url) as admin:
        admin.flushdb()
    redis_store.create_session(SessionRecord("b", "u", now, now + 600))
    redis_store.revoke_session("b", now)
    assert redis_store.revocations_after(position, now)[0] == ["b"]


def test_a_rotation_sent_again_after_a_lost_reply_is_its_own_not_a_theft(redis_store: RedisStore) -> None:
    """redis-py re-sends a command once after a broken connection: the swap it already made must answer True."""
    _, series = now_records()
    redis_store.create_series(series)
    now = time.time()
    assert redis_store.rotate_series(series.series_id, "hash-1", "new-hash", now) is True
    assert redis_store.rotate_series(series.series_id, "hash-1", "new-hash", now) is True  # the same call again
    assert redis_store.rotate_series(series.series_id, "hash-1", "other-hash", now) is False  # another's: stale
    record = redis_store.get_series(series.series_id)
    assert record is not None and (record.token_hash, record.previous_hash) == ("new-hash", "hash-1")


def test_a_nonce_and_a_logout_token_sent_again_by_the_same_call_are_not_replays(redis_store: RedisStore,
                                                                                 redis_url: str) -> None:
    """The value written is the call's own random token: finding it means "recorded by me" (a retried command)."""
    from gateway.store import redis_lua

    now = int(time.time())
    with redis.Redis.from_url(redis_url) as admin:
        use_once = admin.register_script(redis_lua.USE_ONCE)
        assert use_once(keys=["gw:n:x"], args=["call-1", now + 60]) == 1
        assert use_once(keys=["gw:n:x"], args=["call-1", now + 60]) == 1  # the same call, re-sent
        assert use_once(keys=["gw:n:x"], args=["call-2", now + 60]) == 0  # another call: a replay
        record = admin.register_script(redis_lua.RECORD_LOGOUT_JTI)
        assert record(keys=["gw:lt:x"], args=["call-1", now + 60, now, now + 61]) == 1
        assert record(keys=["gw:lt:x"], args=["call-1", now + 60, now, now + 61]) == 1
        assert record(keys=["gw:lt:x"], args=["call-2", now + 60, now, now + 61]) == 0


# -- keys ----------------------------------------------------------------------------------------------


def fill(store: RedisStore) -> None:
    """One of everything the gateway writes."""
    now = time.time()
    session, series = now_records()
    store.create_series(series)
    store.create_session(session)
    store.put_provider_session(ProviderSessionRecord(session.session_id, "OP", "sub", "sid", "a.b.c", now + 600,
                                                     series.series_id))
    store.put_login_state(LoginStateRecord("st", "oidc", "OP", "/", True, now, now + 600, {"nonce": "n"}))
    store.storeAssociation("https://op/", Association("h", b"s" * 20, int(now), 600, "HMAC-SHA1"))
    store.useNonce("https://op/", int(now), "salt")
    store.use_logout_token("https://op", "jti", now + 60, now)
    store.add_hit("login:1.2.3.4", 60, now)
    store.rotate_series(series.series_id, series.token_hash, "hash-2", now)
    store.create_session(SessionRecord("other", "bob", now, now + 600))
    store.revoke_user("bob", now)
    store.link_identity(LinkRecord("https://oidc#1", session.user_id, "OP", now))


def test_every_key_but_the_links_expires(redis_store: RedisStore, redis_url: str) -> None:
    fill(redis_store)
    with redis.Redis.from_url(redis_url, decode_responses=True) as admin:
        keys = list(admin.scan_iter("gw:*"))
        lasting = sorted(key for key in keys if admin.ttl(key) == -1)
    assert len(keys) > 20, keys
    assert lasting == ["gw:k:https://oidc#1", "gw:ku:https://op/id/alice"], lasting


def test_a_remember_me_sign_ins_provider_session_and_its_indexes_live_until_the_series_ends(
        redis_store: RedisStore, redis_url: str) -> None:
    """Not only until the first session's end: a logout at the provider must still find the series."""
    session, series = now_records()
    redis_store.create_series(series)
    redis_store.create_session(session)
    redis_store.put_provider_session(ProviderSessionRecord(session.session_id, "OP", "sub", "sid", "a.b.c",
                                                           session.expires, series.series_id))
    keys = [f"gw:p:{session.session_id}", "gw:pu:OP\0sub", "gw:pd:OP\0sid", f"gw:pr:{series.series_id}"]
    with redis.Redis.from_url(redis_url, decode_responses=True) as admin:
        assert [admin.expiretime(key) for key in keys] == [math.ceil(series.expires) + MARGIN] * 4
        assert admin.zscore("gw:px", session.session_id) == series.expires  # purged when the series is over


def test_purge_removes_expired_records_with_their_index_entries(redis_store: RedisStore, redis_url: str) -> None:
    fill(redis_store)
    redis_store.purge_expired(time.time() + 100 * 86400)
    with redis.Redis.from_url(redis_url, decode_responses=True) as admin:
        left = sorted(admin.scan_iter("gw:*"))
    # The links (the account's), the log counter, and keys that expire by themselves within minutes.
    assert [k for k in left if not k.startswith(("gw:n:", "gw:lt:", "gw:h:", "gw:a:", "gw:al", "gw:k:", "gw:ku:"))
            ] == ["gw:seq"], left


def test_two_gateways_with_different_prefixes_share_one_redis_apart(redis_url: str) -> None:
    one, two = RedisStore(redis_url + "?prefix=site-one:"), RedisStore(redis_url + "?prefix=site-two:")
    try:
        session, _ = now_records()
        one.create_session(session)
        assert two.list_all_sessions(time.time()) == []
        assert [s.session_id for s in one.list_all_sessions(time.time())] == [session.session_id]
    finally:
        one.close()
        two.close()


def everything_in(admin: redis.Redis) -> bytes:
    """Every key's name, DUMP and readable values: what a stolen dump of the server holds."""
    parts: list[bytes] = []
    for key in admin.scan_iter("*"):
        parts += [key, admin.dump(key) or b""]
        kind: Any = admin.type(key)
        readers: dict[bytes, Callable[[], Any]] = {
            b"string": lambda: [admin.get(key)],
            b"hash": lambda: [item for pair in admin.hgetall(key).items() for item in pair],
            b"set": lambda: list(admin.smembers(key)),
            b"zset": lambda: list(admin.zrange(key, 0, -1)),
        }
        parts += [v for v in readers[kind]() if v]
    return b"\n".join(parts)


def test_a_full_dump_after_real_sign_ins_holds_no_remember_token_and_no_cookie(
        gateway_factory: GatewayFactory, provider: UvicornThread, redis_url: str) -> None:
    """A dump must not let anyone restore a session: token hashes only, and cookies are signed with our keys."""
    gateway = gateway_factory(store=redis_url)
    runtime = gateway.app.runtime
    remember_cookie, session_cookie = gateway.settings.remember_cookie, gateway.settings.session_cookie
    secrets_seen: list[str] = []
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        sign_in(browser, gateway.url, f"{provider.url}/id/alice", remember=True)
        assert browser.get(gateway.url + "/echo", follow_redirects=False).status_code == 200
        secrets_seen += [browser.cookies[remember_cookie], browser.cookies[session_cookie]]
        with httpx.Client(follow_redirects=True, timeout=15) as restored:  # only the remember-me cookie: rotates it
            restored.cookies.set(remember_cookie, browser.cookies[remember_cookie])
            assert restored.get(gateway.url + "/echo").status_code == 200
            rotated = {str(c.value) for c in restored.cookies.jar if c.name == remember_cookie} - {secrets_seen[0]}
            secrets_seen += [*rotated, restored.cookies[session_cookie]]
    assert len(rotated) == 1  # the restore rotated the token
    tokens = [runtime.remember.codec.decode(cookie) for cookie in secrets_seen[::2]]
    assert all(tokens) and tokens[0] != tokens[1]
    raw_tokens = [str(value).split(":", 1)[1] for value in tokens]
    with redis.Redis.from_url(redis_url) as admin:
        dump = everything_in(admin)
    assert b"gw:r:" in dump and b"gw:s:" in dump  # the sign-ins are in there
    for secret in [*raw_tokens, *secrets_seen]:
        assert secret.encode() not in dump, "a sign-in secret is in the Redis dump"


# -- memory --------------------------------------------------------------------------------------------


def test_memory_per_signed_in_person(redis_store: RedisStore, redis_url: str) -> None:
    """A remembered sign-in (session, series, indexes, an OIDC provider session) costs about 1-2 KB; printed."""
    people = 1000
    with redis.Redis.from_url(redis_url) as admin:
        admin.execute_command("MEMORY", "PURGE")
        before = int(admin.info("memory")["used_memory"])
        now = time.time()
        for n in range(people):
            user = f"https://accounts.example.com#{n:020d}"
            series_id, session_id = f"{n:024d}", f"{n:043d}"
            redis_store.create_series(RememberRecord(series_id, "f" * 64, user, f"person{n}", f"p{n}@example.com",
                                                     now, now, now + 30 * 86400, user_agent="Mozilla/5.0 " + "x" * 90))
            redis_store.create_session(SessionRecord(session_id, user, now, now + 86400, series_id,
                                                     "Mozilla/5.0 " + "x" * 90, "203.0.113.7"))
        plain = (int(admin.info("memory")["used_memory"]) - before) / people
        for n in range(people):
            redis_store.put_provider_session(ProviderSessionRecord(
                f"{n:043d}", "OP", f"{n:020d}", f"sid-{n:032d}", "e" * 900, now + 86400))
        with_oidc = (int(admin.info("memory")["used_memory"]) - before) / people
        one_session = admin.memory_usage(f"gw:s:{0:043d}")
        one_series = admin.memory_usage(f"gw:r:{0:024d}")
    print(f"\nRedis memory per remembered sign-in: {plain:.0f} bytes; with an OIDC provider session (900-byte ID "
          f"token): {with_oidc:.0f} bytes; MEMORY USAGE of a session hash {one_session} B, of a series {one_series} B")
    assert 0 < plain < 8192 and plain < with_oidc < 16384


def test_the_factory_picks_the_store_from_the_setting(redis_url: str, tmp_path: Path) -> None:
    redis_backed = open_store(redis_url, tmp_path)
    assert isinstance(redis_backed, RedisStore)
    redis_backed.close()
    sqlite_backed = open_store(str(tmp_path / "elsewhere.sqlite3"), tmp_path / "state")
    sqlite_backed.close()
    assert (tmp_path / "elsewhere.sqlite3").exists() and not (tmp_path / "state").exists()
