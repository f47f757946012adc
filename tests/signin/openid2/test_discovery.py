"""The discovery cache of configured OP identifiers (gateway.signin.openid2.discovery), against real providers.

The development provider runs under uvicorn behind a counter of the paths it
was asked for, so each test can tell which discovery really happened. The
security tests sign in through a cached OP identifier and check that the
claimed identifier in the answer is still discovered, every time, and that an
endpoint it does not name is refused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from devtools.openid_provider import create_app
from gateway.errors import LoginFailed
from gateway.fetch.fetcher import SafeFetcher
from gateway.signin.openid2.consumer import OpenIDExchange
from gateway.signin.openid2.discovery import DISCOVERY_TTL
from gateway.store import SQLiteStore
from tests.hostile_provider import HostileProvider
from tests.htmlforms import submit
from tests.servers import UvicornThread, free_port

REALM = "http://127.0.0.1:1/"
RETURN_TO = "http://127.0.0.1:1/_gateway/callback?gw_state=s1"


class CountingProvider:
    """The development provider (every profile) on a loopback port, counting the paths it serves."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        app = create_app(self.url)

        async def counting(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                self.hits[scope["path"]] += 1
            await app(scope, receive, send)

        self.server = UvicornThread(counting, port=port)


@pytest.fixture(scope="module")
def op() -> Iterator[CountingProvider]:
    provider = CountingProvider()
    with provider.server:
        yield provider


@pytest.fixture(autouse=True)
def fresh_counts(op: CountingProvider) -> None:
    op.hits.clear()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


MakeExchange = Callable[..., OpenIDExchange]


@pytest.fixture
def make_exchange(tmp_path: Path, clock: Clock) -> Iterator[MakeExchange]:
    closing: list[Any] = []

    def make(*configured: str, **options: Any) -> OpenIDExchange:
        store = SQLiteStore(tmp_path / f"g{len(closing)}.sqlite3")
        fetcher = SafeFetcher(allow_private_addresses=True)
        closing.extend([store, fetcher])
        return OpenIDExchange(store, REALM, fetcher=fetcher, discovery_clock=clock,
                              named_providers=[(f"P{n}", identifier) for n, identifier in enumerate(configured)],
                              **options)

    yield make
    for thing in closing:
        thing.close()


def sign_in_at_provider(request_url: str, username: str) -> dict[str, str]:
    """Take the checkid request to the development provider, allow it as ``username``: the answer's query."""
    with httpx.Client() as browser:
        consent = browser.get(request_url)
        assert consent.status_code == 200 and 'name="decision"' in consent.text, consent.text[:300]
        answer = submit(browser, consent, {"username": username}, button=("decision", "allow"))
        assert answer.status_code == 302, answer.text[:300]
        return dict(parse_qsl(urlsplit(answer.headers["location"]).query))


# -- what is remembered, and for how long ------------------------------------------------------


def test_a_configured_op_identifier_is_discovered_once_within_the_lifetime(
        op: CountingProvider, make_exchange: MakeExchange, clock: Clock) -> None:
    exchange = make_exchange(f"{op.url}/openid")
    first = exchange.begin(f"{op.url}/openid", RETURN_TO)
    clock.now += DISCOVERY_TTL - 1
    second = exchange.begin(f" {op.url}/openid ", RETURN_TO)  # the identifier is trimmed first, as always
    assert op.hits["/openid"] == 1
    assert first.provider == second.provider == f"{op.url}/endpoint"
    assert first.pending == second.pending


def test_the_entry_expires(op: CountingProvider, make_exchange: MakeExchange, clock: Clock) -> None:
    exchange = make_exchange(f"{op.url}/openid")
    exchange.begin(f"{op.url}/openid", RETURN_TO)
    clock.now += DISCOVERY_TTL + 1
    exchange.begin(f"{op.url}/openid", RETURN_TO)
    assert op.hits["/openid"] == 2


def test_a_typed_identifier_that_is_not_configured_is_discovered_every_time(
        op: CountingProvider, make_exchange: MakeExchange) -> None:
    exchange = make_exchange(f"{op.url}/openid")
    for _ in range(2):
        exchange.begin(f"{op.url}/sreg-only/openid", RETURN_TO)
    assert op.hits["/sreg-only/openid"] == 2


def test_each_configured_identifier_has_its_own_entry(op: CountingProvider, make_exchange: MakeExchange) -> None:
    exchange = make_exchange(f"{op.url}/openid", f"{op.url}/sreg-only/openid")
    for _ in range(2):
        assert exchange.begin(f"{op.url}/openid", RETURN_TO).provider == f"{op.url}/endpoint"
        assert exchange.begin(f"{op.url}/sreg-only/openid", RETURN_TO).provider == f"{op.url}/sreg-only/endpoint"
    assert (op.hits["/openid"], op.hits["/sreg-only/openid"]) == (1, 1)


def test_a_configured_claimed_identifier_is_not_remembered(op: CountingProvider, make_exchange: MakeExchange) -> None:
    """Only OP identifiers (identifier_select) are kept: a claimed identifier's discovery vouches for a person."""
    exchange = make_exchange(f"{op.url}/id/alice")
    for _ in range(2):
        exchange.begin(f"{op.url}/id/alice", RETURN_TO)
    assert op.hits["/id/alice"] == 2


def test_a_lifetime_of_zero_turns_the_cache_off(op: CountingProvider, make_exchange: MakeExchange) -> None:
    exchange = make_exchange(f"{op.url}/openid", discovery_ttl=0)
    for _ in range(2):
        exchange.begin(f"{op.url}/openid", RETURN_TO)
    assert op.hits["/openid"] == 2


def test_a_failed_discovery_is_not_remembered(op: CountingProvider, make_exchange: MakeExchange) -> None:
    exchange = make_exchange(f"{op.url}/gone/openid")
    for _ in range(2):
        with pytest.raises(LoginFailed):
            exchange.begin(f"{op.url}/gone/openid", RETURN_TO)  # 404
    assert op.hits["/gone/openid"] == 2


# -- the checks that still happen on every sign-in ----------------------------------------------


def test_every_completion_discovers_the_claimed_identifier_again(
        op: CountingProvider, make_exchange: MakeExchange) -> None:
    exchange = make_exchange(f"{op.url}/openid")
    for _ in range(2):
        request = exchange.begin(f"{op.url}/openid", RETURN_TO)
        identity = exchange.complete(sign_in_at_provider(request.url, "bob"), RETURN_TO, request.pending)
        assert identity.user_id == f"{op.url}/id/bob"
    assert op.hits["/openid"] == 1  # the OP identifier: remembered
    assert op.hits["/id/bob"] == 2  # the claimed identifier: discovered at each completion


def test_a_cached_op_cannot_assert_an_identifier_it_is_not_authoritative_for(
        op: CountingProvider, make_exchange: MakeExchange) -> None:
    """A configured provider whose discovery is cached asserts someone else's identifier: refused every time."""
    victim = f"{op.url}/id/alice"
    with HostileProvider() as hostile:
        exchange = make_exchange(hostile.op_identifier)
        honest = exchange.begin(hostile.op_identifier, RETURN_TO)
        identity = exchange.complete(_answer(honest.url), RETURN_TO, honest.pending)
        assert identity.user_id == hostile.identifier()  # its own users: fine
        hostile.misbehave(claimed_id=victim)
        for _ in range(2):
            request = exchange.begin(hostile.op_identifier, RETURN_TO)  # from the cache
            with pytest.raises(LoginFailed):
                exchange.complete(_answer(request.url), RETURN_TO, request.pending)
        assert len(exchange.discovery._entries) == 1
    assert op.hits["/id/alice"] == 2  # the victim's identifier was discovered, and names another endpoint


def _answer(request_url: str) -> dict[str, str]:
    """The hostile provider answers a checkid request at once: the query of its redirect back."""
    with httpx.Client() as browser:
        answer = browser.get(request_url)
        assert answer.status_code == 302, answer.text[:300]
        return dict(parse_qsl(urlsplit(answer.headers["location"]).query))
