"""Sign-ins in flight live in the store (gateway.signin.loginstate): any instance finishes them, once.

Two gateway instances share one state directory (one SQLite file), one set of
secret keys and one public_url, as behind a load balancer; each runs under its
own uvicorn. The development OpenID provider is wrapped so the tests can count
the discovery requests it receives.
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import pytest

from devtools.openid_provider import create_app as create_provider
from gateway.app import GatewayApp
from gateway.pages.render import MESSAGES
from gateway.store import LoginStateRecord, SQLiteStore
from tests.conftest import RunningGateway, make_settings
from tests.hostile_provider import assert_refused
from tests.htmlforms import forms
from tests.pages.test_login_callback import whoami, with_param
from tests.servers import UvicornThread, free_port
from tests.signin_steps import start_login


class CountingProvider:
    """The development provider, counting the GET requests per path (discovery documents)."""

    def __init__(self) -> None:
        port = free_port()
        self.app = create_provider(f"http://127.0.0.1:{port}")
        self.server = UvicornThread(self, port=port)
        self.url = self.server.url
        self.gets: Counter[str] = Counter()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            self.gets[scope["path"]] += 1
        await self.app(scope, receive, send)

    def discoveries(self, user: str) -> int:
        """Fetches of ``user``'s claimed identifier page and its XRDS: what discovery reads."""
        return sum(n for path, n in self.gets.items() if path in (f"/id/{user}", f"/id/{user}/xrds"))


@pytest.fixture
def counting_provider() -> Iterator[CountingProvider]:
    provider = CountingProvider()
    with provider.server:
        yield provider


@pytest.fixture
def two_instances(tmp_path: Path, upstream: UvicornThread) -> Iterator[tuple[RunningGateway, RunningGateway]]:
    """Instances A and B of one site: same state directory, keys and public_url (A's address)."""
    port_a, port_b = free_port(), free_port()
    settings_a = make_settings(tmp_path / "shared-state", port_a, mode="proxy", upstream_url=upstream.url)
    settings_b = dataclasses.replace(settings_a, port=port_b)
    app_a, app_b = GatewayApp(settings_a), GatewayApp(settings_b)
    with UvicornThread(app_a, port=port_a) as server_a, UvicornThread(app_b, port=port_b) as server_b:
        yield RunningGateway(server_a, app_a, settings_a), RunningGateway(server_b, app_b, settings_b)


def on_instance(url: str, instance: RunningGateway) -> str:
    """The same URL, sent to ``instance`` (the load balancer's choice)."""
    return urlunsplit(urlsplit(url)._replace(netloc=f"127.0.0.1:{instance.server.port}"))


def provider_answer(client: httpx.Client, gateway: RunningGateway, identifier: str, *, next_target: str,
                    remember: bool = False) -> str:
    """Sign in at ``gateway`` up to the provider's answer: the callback URL, not yet opened."""
    page = start_login(client, gateway.url, identifier, next_target=next_target, remember=remember)
    form = forms(page.text)[0]
    values = {**dict(form.fields), "username": "alice", "decision": "allow"}
    answer = client.post(str(page.url.join(form.action)), data=values, follow_redirects=False)
    assert answer.status_code in (302, 303), answer.text[:300]
    return answer.headers["location"]


def state_id_in(callback_url: str) -> str:
    return parse_qs(urlsplit(callback_url).query)["gw_state"][0]


def login_query(response: httpx.Response) -> dict[str, list[str]]:
    location = response.headers["location"]
    assert location.startswith("/login?"), location
    return parse_qs(urlsplit(location).query)


def test_a_sign_in_begun_on_one_instance_finishes_on_another_without_discovering_again(
    two_instances: tuple[RunningGateway, RunningGateway], counting_provider: CountingProvider,
    browser: httpx.Client,
) -> None:
    """On the old code B had no python3-openid session and discovered the claimed identifier again."""
    a, b = two_instances
    claimed_id = f"{counting_provider.url}/id/alice"
    callback = provider_answer(browser, a, claimed_id, next_target="/echo?from=a")  # POST /login on A
    discovered_at_start = counting_provider.discoveries("alice")
    assert discovered_at_start >= 1
    final = browser.get(on_instance(callback, b))  # the provider's answer reaches B
    assert urlsplit(str(final.url)).path == "/echo" and final.json()["query_string"] == "from=a", final.text[:300]
    assert counting_provider.discoveries("alice") == discovered_at_start  # B used what A discovered
    assert whoami(browser, b)["user"] == claimed_id
    assert whoami(browser, a)["user"] == claimed_id  # one session, in the shared store


def test_a_replayed_callback_is_refused_on_every_instance(
    two_instances: tuple[RunningGateway, RunningGateway], counting_provider: CountingProvider,
    browser: httpx.Client,
) -> None:
    a, b = two_instances
    callback = provider_answer(browser, a, f"{counting_provider.url}/id/alice", next_target="/echo")
    state = {name: value for name, value in browser.cookies.items() if name.startswith("gw_state_")}
    first = browser.get(callback, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/echo", first.headers
    for instance in (a, b):
        with httpx.Client(cookies=state) as replayer:  # the state cookie put back
            assert_refused(replayer.get(on_instance(callback, instance), follow_redirects=False), "expired")
    assert a.app.runtime.store.take_login_state(state_id_in(callback), time.time()) is None


def test_next_changed_in_the_callback_does_not_change_where_the_person_is_sent(
    two_instances: tuple[RunningGateway, RunningGateway], counting_provider: CountingProvider,
    browser: httpx.Client,
) -> None:
    """``next`` is kept server-side; the answer only names the login state.

    On the old code ``next`` rode in ``return_to``: python3-openid refused the
    changed answer too, but the login page it went back to took the changed ``next``.
    """
    a, _ = two_instances
    callback = provider_answer(browser, a, f"{counting_provider.url}/id/alice", next_target="/echo?asked=1")
    return_to = parse_qs(urlsplit(callback).query)["openid.return_to"][0]
    assert set(parse_qs(urlsplit(return_to).query)) <= {"gw_state", "janrain_nonce"}, return_to
    response = browser.get(with_param(callback, "next", "/echo?elsewhere=1"), follow_redirects=False)
    assert_refused(response)  # python3-openid: a parameter that is not in the signed return_to
    assert login_query(response)["next"] == ["/echo?asked=1"]


def test_next_and_remember_are_kept_in_the_login_state_and_used_from_it(
    two_instances: tuple[RunningGateway, RunningGateway], counting_provider: CountingProvider,
    browser: httpx.Client,
) -> None:
    a, b = two_instances
    store = a.app.runtime.store
    callback = provider_answer(browser, a, f"{counting_provider.url}/id/alice", next_target="/echo?asked=1",
                               remember=True)
    record = store.take_login_state(state_id_in(callback), time.time())
    assert record is not None
    assert (record.protocol, record.next, record.remember) == ("openid2", "/echo?asked=1", True)
    assert record.provider == f"{counting_provider.url}/endpoint"
    assert record.data["claimed_id"] == f"{counting_provider.url}/id/alice"
    assert set(record.data) == {"claimed_id", "server_url", "local_id", "type_uris", "display_identifier",
                                "used_yadis"}
    store.put_login_state(record)
    final = browser.get(on_instance(callback, b))
    assert urlsplit(str(final.url)).path == "/echo" and final.json()["query_string"] == "asked=1"
    assert any(name == b.settings.remember_cookie for name in browser.cookies), dict(browser.cookies)


def test_the_login_state_is_json_in_the_store_never_a_pickle(
    two_instances: tuple[RunningGateway, RunningGateway], counting_provider: CountingProvider,
    browser: httpx.Client,
) -> None:
    a, _ = two_instances
    callback = provider_answer(browser, a, f"{counting_provider.url}/id/alice", next_target="/echo")
    with contextlib.closing(sqlite3.connect(a.settings.sqlite_path)) as db:  # `with` alone does not close it
        [(data,)] = db.execute("SELECT data FROM login_states WHERE state_id = ?", (state_id_in(callback),))
    assert json.loads(data)["server_url"] == f"{counting_provider.url}/endpoint"


def test_an_expired_login_state_is_refused_with_the_expired_message(
    two_instances: tuple[RunningGateway, RunningGateway], counting_provider: CountingProvider,
    browser: httpx.Client,
) -> None:
    a, b = two_instances
    store = a.app.runtime.store
    callback = provider_answer(browser, a, f"{counting_provider.url}/id/alice", next_target="/echo")
    record = store.take_login_state(state_id_in(callback), time.time())
    assert record is not None
    store.put_login_state(dataclasses.replace(record, expires=time.time() - 1))  # its 15 minutes are over
    response = browser.get(on_instance(callback, b), follow_redirects=False)
    assert_refused(response, "expired")
    page = browser.get(b.url + response.headers["location"])
    assert MESSAGES["expired"][1] in html.unescape(page.text)
    assert browser.get(b.url + "/echo", follow_redirects=False).status_code == 302


def test_an_answer_opened_without_the_state_cookie_does_not_use_up_the_login_state(
    two_instances: tuple[RunningGateway, RunningGateway], counting_provider: CountingProvider,
    browser: httpx.Client,
) -> None:
    """Whoever sees the answer's URL (it names the state) cannot spoil the sign-in of the person it belongs to."""
    a, b = two_instances
    callback = provider_answer(browser, a, f"{counting_provider.url}/id/alice", next_target="/echo")
    with httpx.Client() as stranger:
        assert_refused(stranger.get(on_instance(callback, b), follow_redirects=False), "expired")
    final = browser.get(callback)
    assert urlsplit(str(final.url)).path == "/echo", final.text[:300]


def test_of_takes_through_two_stores_on_one_file_exactly_one_wins(tmp_path: Path) -> None:
    """Two instances (two connections to one SQLite file) taking the same login state at once."""
    stores = [SQLiteStore(tmp_path / "gateway.sqlite3") for _ in range(2)]
    try:
        for n in range(30):
            now = time.time()
            stores[0].put_login_state(LoginStateRecord(f"s{n}", "openid2", "https://op/", "/", False, now, now + 60))
            start = threading.Barrier(4)
            won: list[LoginStateRecord | None] = []

            def take(store: SQLiteStore, state_id: str = f"s{n}") -> None:
                start.wait()
                won.append(store.take_login_state(state_id, time.time()))

            threads = [threading.Thread(target=take, args=(stores[i % 2],)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sum(record is not None for record in won) == 1, won
    finally:
        for store in stores:
            store.close()


@pytest.mark.parametrize(("change", "logged"), [
    ({"data": {"server_url": ["not", "text"], "type_uris": "x"}}, "holds no usable OpenID endpoint"),
    ({"data": {}}, "holds no usable OpenID endpoint"),
    ({"protocol": "oidc"}, "is for oidc, answered as OpenID 2.0"),
], ids=["damaged-endpoint", "no-endpoint", "another-protocol"])
def test_a_login_state_that_does_not_fit_the_answer_is_refused_cleanly(
    two_instances: tuple[RunningGateway, RunningGateway], counting_provider: CountingProvider,
    browser: httpx.Client, caplog: pytest.LogCaptureFixture, change: dict[str, Any], logged: str,
) -> None:
    a, _ = two_instances
    store = a.app.runtime.store
    callback = provider_answer(browser, a, f"{counting_provider.url}/id/alice", next_target="/echo")
    record = store.take_login_state(state_id_in(callback), time.time())
    assert record is not None
    store.put_login_state(dataclasses.replace(record, **change))
    response = browser.get(callback, follow_redirects=False)
    assert_refused(response)
    assert login_query(response)["next"] == ["/echo"]
    assert logged in caplog.text
