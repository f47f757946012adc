"""SignInCapacity: a real exchange against a slow provider, at most ``limit`` at once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import SignInBusy
from gateway.fetch.fetcher import SafeFetcher
from gateway.signin.capacity import RETRY_AFTER, SignInCapacity
from gateway.signin.openid2.consumer import OpenIDExchange, ProviderRequest
from gateway.store import SQLiteStore
from gateway.types import Identity
from tests.hostile_provider import HostileProvider

RETURN_TO = "http://127.0.0.1:1/_gateway/callback"


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    """asyncio.run in a thread of its own: Playwright's sync API may hold this thread's event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()


async def until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout}s")
        await asyncio.sleep(0.02)


@pytest.fixture
def slow_provider() -> Iterator[HostileProvider]:
    with HostileProvider() as op:
        op.misbehave(delay=60)  # until released
        yield op


class Capacity:
    """An OpenID 2.0 exchange on a capacity of one sign-in thread, as the sign-in methods run it."""

    def __init__(self, exchange: OpenIDExchange, capacity: SignInCapacity) -> None:
        self.exchange = exchange
        self.capacity = capacity

    @property
    def in_flight(self) -> int:
        return self.capacity.in_flight

    async def begin(self, identifier: str, return_to: str) -> ProviderRequest:
        return await self.capacity.run(lambda: self.exchange.begin(identifier, return_to))

    async def complete(self, query: dict[str, str], current_url: str, pending: dict[str, object]) -> Identity:
        return await self.capacity.run(lambda: self.exchange.complete(query, current_url, pending))


@pytest.fixture
def capacity(tmp_path: Path) -> Iterator[Capacity]:
    store = SQLiteStore(tmp_path / "g.sqlite3")
    fetcher = SafeFetcher(allow_private_addresses=True, read_timeout=30)
    signins = SignInCapacity(limit=1)
    yield Capacity(OpenIDExchange(store, "http://127.0.0.1:1/", fetcher=fetcher), signins)
    signins.close()
    fetcher.close()
    store.close()


def test_beyond_the_limit_a_signin_is_refused_at_once(capacity: Capacity,
                                                      slow_provider: HostileProvider) -> None:
    async def scenario() -> None:
        first = asyncio.create_task(capacity.begin(slow_provider.op_identifier, RETURN_TO))
        await until(lambda: slow_provider.seen["slow"] == 1, "the first sign-in at the provider")
        with pytest.raises(SignInBusy) as busy:
            await capacity.begin(slow_provider.op_identifier, RETURN_TO)
        assert (busy.value.limit, busy.value.retry_after) == (1, RETRY_AFTER)
        with pytest.raises(SignInBusy):
            await capacity.complete({"openid.mode": "id_res"}, RETURN_TO, {})
        slow_provider.release.set()
        request = await first
        assert request.url.startswith(slow_provider.endpoint)
        assert capacity.in_flight == 0
        await capacity.begin(slow_provider.op_identifier, RETURN_TO)  # the slot is free again

    run(scenario())
    assert slow_provider.seen["slow"] >= 1


def test_a_disconnected_browser_keeps_its_slot_until_its_thread_is_done(capacity: Capacity,
                                                                        slow_provider: HostileProvider) -> None:
    """Cancelling the request does not stop the thread waiting on the provider: the slot stays taken."""
    async def scenario() -> None:
        first = asyncio.create_task(capacity.begin(slow_provider.op_identifier, RETURN_TO))
        await until(lambda: slow_provider.seen["slow"] == 1, "the first sign-in at the provider")
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert capacity.in_flight == 1
        with pytest.raises(SignInBusy):
            await capacity.begin(slow_provider.op_identifier, RETURN_TO)
        slow_provider.release.set()
        await until(lambda: capacity.in_flight == 0, "the abandoned sign-in's thread done")
        await capacity.begin(slow_provider.op_identifier, RETURN_TO)

    run(scenario())


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SignInCapacity(limit=0)
