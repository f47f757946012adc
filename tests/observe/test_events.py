"""The events seam (gateway.observe.events): the events the scripted session of test_audit does not reach.

Each is caused for real against a running gateway (or a real store): a
remember-me restore, a replayed remember-me cookie, the account page's two
forms, and a store outage and recovery. A listener records what it hears.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from gateway.observe.events import Event, Events, StoreDown, StoreRecovered, TheftSuspected, hash_id
from gateway.state.remember import RememberMe
from gateway.state.revocation import RevocationCache
from gateway.store import SQLiteStore
from gateway.types import Identity
from tests.conftest import GatewayFactory, RunningGateway
from tests.servers import UvicornThread
from tests.signin_steps import sign_in
from tests.state.test_revocation import run  # its own thread: Playwright may hold this thread's event loop

KEYS = ["k" * 40]


def heard(gateway: RunningGateway) -> list[Event]:
    events: list[Event] = []
    gateway.app.runtime.events.subscribe(events.append)
    return events


def token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def test_remember_me_restore_and_the_account_page_are_heard(gateway_factory: GatewayFactory,
                                                             provider: UvicornThread) -> None:
    gateway = gateway_factory()
    events = heard(gateway)
    user = f"{provider.url}/id/sam"
    with httpx.Client(follow_redirects=True, timeout=15) as one, httpx.Client(follow_redirects=True) as two:
        sign_in(one, gateway.url, user, "sam", remember=True)
        one.cookies.delete(gateway.settings.session_cookie)  # a browser restart: only remember-me is left
        assert one.get(gateway.url + "/echo").url.path == "/echo"
        sign_in(two, gateway.url, user, "sam")
        page = one.get(gateway.url + "/_gateway/account")
        other = re.search(r'name="session_id" value="([^"]+)"', page.text)
        assert other
        one.post(gateway.url + "/_gateway/account/revoke", data={"csrf_token": token(page),
                                                                  "session_id": other.group(1)})
        page = one.get(gateway.url + "/_gateway/account")
        one.post(gateway.url + "/_gateway/account/signout-everywhere", data={"csrf_token": token(page)})
    names = [e.name for e in events]
    assert "remember_restored" in names
    restored = next(e for e in events if e.name == "remember_restored")
    assert restored.fields() == {"user": user, "client": "127.0.0.1"}
    ended = next(e for e in events if e.name == "session_ended")
    assert ended.fields() == {"user": user, "session": hash_id(other.group(1)), "client": "127.0.0.1"}
    everywhere = next(e for e in events if e.name == "signed_out_everywhere")
    assert everywhere.fields()["user"] == user and int(str(everywhere.fields()["sessions"])) >= 1
    for event in events:  # session ids only hashed
        assert other.group(1) not in repr(event)


def test_a_replayed_remember_me_cookie_is_heard_as_theft(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "gateway.sqlite3")
    events = Events()
    seen: list[Event] = []
    events.subscribe(seen.append)
    remember = RememberMe(store, KEYS, lifetime=3600, grace=0, events=events)
    series_id, cookie = remember.issue(Identity("https://op.example/id/x", "x", ""), "test", time.time())
    assert remember.restore(cookie, time.time() + 1) is not None  # rotates the token
    assert remember.restore(cookie, time.time() + 2) is None  # the old one, replayed: theft
    assert seen == [TheftSuspected("https://op.example/id/x", hash_id(series_id))]
    store.close()


def test_a_store_outage_and_its_recovery_are_heard_once_each(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "gateway.sqlite3")
    events = Events()
    seen: list[Event] = []
    events.subscribe(seen.append)
    cache = RevocationCache(store, 0.2, events=events)
    run(cache.refresh())
    store.path.rename(tmp_path / "away")
    for _ in range(3):
        run(cache.refresh())
    (tmp_path / "away").rename(store.path)
    run(cache.refresh())
    run(cache.refresh())
    run(cache.stop())
    assert seen == [StoreDown("revocation"), StoreRecovered()]
    store.close()
