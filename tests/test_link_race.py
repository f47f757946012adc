"""Two links of one sign-in to two users at the same moment: exactly one is made, on SQLite and on Redis.

Each side is another worker or instance (its own store object on the same
data, its own thread), both released at once. Checking ``linked_user`` and
then writing let both pass the check, and the later write replaced the
earlier: the link the first person was told about silently went to the other.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from gateway.fetch.fetcher import SafeFetcher
from gateway.observe.events import Events
from gateway.signin.identities import Identities, LinkRefused
from gateway.signin.oidc.migration import OpenID2Migration
from gateway.signin.openid2.consumer import OpenIDExchange
from gateway.store import Store, open_store

ROUNDS = 30


@pytest.fixture(params=["sqlite", "redis"])
def location(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("redis_url")) if request.param == "redis" else ""


def link_at_once(sides: list[tuple[Identities, str]], key: str) -> list[str]:
    """Each side links ``key`` to its user on a thread of its own; what each got: "linked" or the refusal code."""
    start = threading.Barrier(len(sides))
    results = [""] * len(sides)

    def run(n: int) -> None:
        identities, user = sides[n]
        start.wait()
        try:
            identities.link(key, "OP", user, "192.0.2.1")
            results[n] = "linked"
        except LinkRefused as exc:
            results[n] = exc.code

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(sides))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_of_two_links_of_one_sign_in_to_two_users_at_once_exactly_one_is_made(location: str, tmp_path: Path) -> None:
    stores: list[Store] = [open_store(location, tmp_path), open_store(location, tmp_path)]
    try:
        with SafeFetcher(allow_private_addresses=False) as fetcher:
            alice, mallory = (Identities(store, OpenID2Migration(OpenIDExchange(store, "https://rp.example/",
                                                                                fetcher=fetcher)),
                                         lambda: 1000.0, Events()) for store in stores)
            for n in range(ROUNDS):
                key = f"https://op.example#race-{n}"
                got = link_at_once([(alice, "https://id.example/alice"), (mallory, "https://id.example/mallory")],
                                   key)
                assert sorted(got) == ["link-taken", "linked"], (n, got)
                winner = "https://id.example/alice" if got[0] == "linked" else "https://id.example/mallory"
                link = stores[1].linked_user(key)
                assert link is not None and link.user_id == winner, (n, got, link)
    finally:
        for store in stores:
            store.close()
