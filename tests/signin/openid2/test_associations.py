"""Associations remembered in memory (gateway.signin.openid2.associations), against a real provider and store.

The hostile provider (a real python3-openid server) counts the associations
it is asked for; a SQLite store subclass counts how often the association is
read from it. The signature of every answer is still checked, and an
association the provider has dropped is forgotten and negotiated again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from openid.server.server import Server
from openid.store.memstore import MemoryStore

from gateway.errors import LoginFailed
from gateway.fetch.fetcher import SafeFetcher
from gateway.signin.openid2.associations import ASSOCIATION_TTL
from gateway.signin.openid2.consumer import OpenIDExchange
from gateway.store import SQLiteStore
from tests.hostile_provider import HostileProvider, flip_signature

REALM = "http://127.0.0.1:1/"
RETURN_TO = "http://127.0.0.1:1/_gateway/callback?gw_state=s1"


class CountingStore(SQLiteStore):
    """The SQLite store, counting the association reads that reach it."""

    reads = 0

    def getAssociation(self, server_url: str, handle: str | None = None) -> Any:
        self.reads += 1
        return super().getAssociation(server_url, handle)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def op() -> Iterator[HostileProvider]:
    with HostileProvider() as provider:
        yield provider


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CountingStore]:
    counting = CountingStore(tmp_path / "g.sqlite3")
    yield counting
    counting.close()


@pytest.fixture
def exchange(store: CountingStore) -> Iterator[OpenIDExchange]:
    fetcher = SafeFetcher(allow_private_addresses=True)
    yield OpenIDExchange(store, REALM, fetcher=fetcher)
    fetcher.close()


def sign_in(exchange: OpenIDExchange, op: HostileProvider) -> str:
    """A whole sign-in through the hostile provider (it answers at once); the verified claimed identifier."""
    request = exchange.begin(op.op_identifier, RETURN_TO)
    with httpx.Client() as browser:
        answer = browser.get(request.url)
    assert answer.status_code == 302, answer.text[:300]
    query = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
    return exchange.complete(query, RETURN_TO, request.pending).user_id


def test_the_association_is_read_from_the_store_once_then_from_memory(
        exchange: OpenIDExchange, op: HostileProvider, store: CountingStore) -> None:
    for _ in range(3):
        assert sign_in(exchange, op) == op.identifier()
    assert op.seen["associate"] == 1
    assert op.seen["check_authentication"] == 0  # every answer was checked with the shared key
    assert store.reads == 1  # the first begin found none in the store and negotiated one


def test_a_remembered_association_still_checks_every_signature(exchange: OpenIDExchange, op: HostileProvider) -> None:
    sign_in(exchange, op)
    op.misbehave(after_signing=flip_signature)
    with pytest.raises(LoginFailed):
        sign_in(exchange, op)


def test_an_association_the_provider_dropped_is_forgotten_and_negotiated_again(
        exchange: OpenIDExchange, op: HostileProvider) -> None:
    """The provider restarts and forgets its associations: it says so (invalidate_handle), and the gateway listens."""
    sign_in(exchange, op)
    op.server = Server(MemoryStore(), op.endpoint)  # a restarted provider
    assert sign_in(exchange, op) == op.identifier()  # signed with a key of its own, checked with the provider
    assert op.seen["check_authentication"] == 1
    sign_in(exchange, op)
    assert op.seen["associate"] == 2  # the dropped association is not offered again
    assert op.seen["check_authentication"] == 1


def test_remembered_associations_are_read_again_after_the_lifetime(store: CountingStore, op: HostileProvider) -> None:
    clock = Clock()
    fetcher = SafeFetcher(allow_private_addresses=True)
    exchange = OpenIDExchange(store, REALM, fetcher=fetcher)
    exchange.associations._clock = clock
    try:
        sign_in(exchange, op)
        reads = store.reads
        clock.now += ASSOCIATION_TTL + 1
        sign_in(exchange, op)
        assert store.reads == reads + 1
        assert op.seen["associate"] == 1
    finally:
        fetcher.close()
