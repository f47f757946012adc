"""Revocations pushed to every instance (Redis pub/sub), and polled where the store cannot push (SQLite)."""

from __future__ import annotations

import asyncio
import logging
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from devtools.redis_server import RedisServer
from gateway.app import GatewayApp
from gateway.state.revocation import RevocationCache
from gateway.store import SessionRecord, SQLiteStore, Store
from gateway.store.redis import RedisStore
from tests.conftest import make_settings
from tests.redis_fixtures import RedisServerFactory
from tests.servers import UvicornThread, free_port
from tests.signin_steps import sign_in
from tests.state.test_revocation import run

DEADLINE = 10.0  # seconds: for what must happen long before a 30 s poll
POLL_EVERY = 30.0  # so that only a push can explain a revocation seen sooner


def listener_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "revocation-pushes"]


def new_session(store: Store, sid: str) -> None:
    now = time.time()
    store.create_session(SessionRecord(sid, "u", now, now + 3600))


async def until_revoked(cache: RevocationCache, sid: str, deadline: float = DEADLINE) -> float:
    """Seconds until ``cache`` reports ``sid`` revoked (fails after ``deadline``)."""
    started = time.monotonic()
    while not cache.is_revoked(sid):
        assert time.monotonic() - started < deadline, f"{sid} not revoked within {deadline}s"
        await asyncio.sleep(0.002)
    return time.monotonic() - started


def test_sqlite_cannot_push_so_the_cache_polls_without_a_listener_thread(tmp_path: Path) -> None:
    writer, reader = SQLiteStore(tmp_path / "g.sqlite3"), SQLiteStore(tmp_path / "g.sqlite3")  # two workers
    cache = RevocationCache(reader, interval=0.2)
    new_session(writer, "a")

    async def scenario() -> None:
        await cache.start()
        try:
            assert cache._listener is None and listener_threads() == []
            writer.revoke_session("a", time.time())
            await until_revoked(cache, "a")  # by the poll, within an interval or so
        finally:
            await cache.stop()

    run(scenario())
    assert listener_threads() == []
    writer.close()
    reader.close()


# -- Redis: pushed -------------------------------------------------------------------------------


def subscribers(server: RedisServer) -> int:
    """Pub/sub subscriptions on ``server`` (the caches' listeners once they have subscribed)."""
    with server.client() as client:
        channels = client.pubsub_channels()
        return sum(count for _, count in client.pubsub_numsub(*channels)) if channels else 0


async def until(condition: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < deadline, f"not within {deadline}s: {what}"
        await asyncio.sleep(0.01)


def test_a_revocation_on_one_instance_reaches_another_by_push(redis_server_factory: RedisServerFactory) -> None:
    """Revoked through instance X, refused by instance Y's cache long before its 30 s poll."""
    server = redis_server_factory()
    x, y = RedisStore(server.url), RedisStore(server.url)
    caches = [RevocationCache(x, POLL_EVERY), RevocationCache(y, POLL_EVERY)]
    latencies: list[float] = []

    async def scenario() -> None:
        for cache in caches:
            await cache.start()
        try:
            assert len(listener_threads()) == 2  # threads of their own, not the refresh's or the request pool's
            await until(lambda: subscribers(server) == 2, "both listeners subscribed")
            for n in range(20):
                new_session(x, f"s{n}")
                started = time.monotonic()  # from the revoking call on X to Y's answer
                await asyncio.to_thread(x.revoke_session, f"s{n}", time.time())
                await until_revoked(caches[1], f"s{n}")
                latencies.append(time.monotonic() - started)
        finally:
            for cache in caches:
                await cache.stop()

    run(scenario())
    assert listener_threads() == []  # stop() leaves no thread behind
    assert subscribers(server) == 0  # and no subscription
    print(f"\npush latency revoke on X -> is_revoked on Y over {len(latencies)}: median "
          f"{statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")
    x.close()
    y.close()


def test_a_bearer_token_cutoff_reaches_another_instance_by_push(redis_server_factory: RedisServerFactory) -> None:
    """Signing out everywhere someone with no session at all (an API client's user) is pushed all the same."""
    server = redis_server_factory()
    x, y = RedisStore(server.url), RedisStore(server.url)
    cache = RevocationCache(y, POLL_EVERY)

    async def scenario() -> None:
        await cache.start()
        try:
            await until(lambda: subscribers(server) == 1, "the listener subscribed")
            at = time.time()
            await asyncio.to_thread(x.revoke_user, "https://op.example#api-client", at)
            await until(lambda: cache.cut_off("https://op.example#api-client", at), "the cutoff pushed")
        finally:
            await cache.stop()

    run(scenario())
    x.close()
    y.close()


def test_the_listener_survives_redis_stopping_and_resumes_when_it_is_back(
        redis_server_factory: RedisServerFactory, caplog: pytest.LogCaptureFixture) -> None:
    server = redis_server_factory(appendonly=True)  # restarted on its append-only file: the log goes on
    x, y = RedisStore(server.url), RedisStore(server.url)
    cache = RevocationCache(y, POLL_EVERY)
    caplog.set_level(logging.WARNING, logger="gateway.revocation")

    def lost() -> bool:
        return "revocation pushes lost" in caplog.text

    async def scenario() -> None:
        await cache.start()
        try:
            await until(lambda: subscribers(server) == 1, "the listener subscribed")
            listener = cache._listener
            assert listener is not None
            await asyncio.to_thread(server.stop)
            await until(lost, "the lost subscription logged")
            await until(lambda: listener.failures >= 3, "three attempts to subscribe again")
            assert listener.alive
            await asyncio.to_thread(server.start)
            await until(lambda: subscribers(server) == 1, "subscribed again", deadline=DEADLINE)
            assert cache._listener is listener and listener.alive
            new_session(x, "after")
            await asyncio.to_thread(x.revoke_session, "after", time.time())
            await until_revoked(cache, "after")  # pushed again: long before the 30 s poll
        finally:
            await cache.stop()

    run(scenario())
    assert caplog.text.count("revocation pushes lost") == 1  # once per outage, not once per retry
    assert "revocation pushes back" in caplog.text
    assert listener_threads() == []
    x.close()
    y.close()


def test_a_logout_on_one_gateway_is_refused_by_another_at_once(tmp_path: Path, redis_url: str,
                                                               provider: UvicornThread,
                                                               upstream: UvicornThread) -> None:
    """Two real gateways on one Redis, polling every 30 s: the other refuses the cookie within the deadline."""
    port = free_port()
    settings = make_settings(tmp_path / "state", port, mode="proxy", upstream_url=upstream.url, store=redis_url,
                             revocation_refresh=POLL_EVERY)
    app = GatewayApp(settings)
    name = app.runtime.session_cookie_name
    with UvicornThread(app, port=port) as one, UvicornThread(GatewayApp(settings)) as other, \
            httpx.Client(follow_redirects=True, timeout=15) as browser:
        sign_in(browser, one.url, f"{provider.url}/id/alice")
        cookie = browser.cookies[name]

        def answer() -> int:
            with httpx.Client(timeout=15, cookies={name: cookie}) as copy:
                return copy.get(other.url + "/echo").status_code

        assert answer() == 200  # one site: the other instance knows the session
        assert browser.get(one.url + "/logout", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
        signed_out = time.monotonic()
        while answer() == 200:
            assert time.monotonic() - signed_out < DEADLINE, "the other gateway still lets the session in"
        print(f"\nlogout on one gateway -> refused by the other after {(time.monotonic() - signed_out) * 1000:.0f} ms")
