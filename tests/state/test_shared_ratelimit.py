"""Rate limits hold across gateway instances: two real gateways on one store count a client once.

Run on each store: one SQLite file (workers on one machine), one real
redis-server (instances anywhere).

Counted per process, a client got ``limit`` attempts from every worker and
instance; behind a round-robin balancer that multiplied the limit by their number.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from gateway.app import GatewayApp
from gateway.settings import Settings
from tests.conftest import make_settings
from tests.redis_fixtures import RedisServerFactory
from tests.servers import UvicornThread, free_port
from tests.test_security import csrf_token

LIMIT = 3
PROXY = "127.0.0.1/32"  # the test client is the trusted proxy: X-Forwarded-For names the client


@dataclasses.dataclass
class Instances:
    """Gateways sharing one store (and one set of keys, as one site's instances do)."""

    urls: list[str]
    settings: Settings
    outage: Callable[[], object]
    recover: Callable[[], object]


def limited_settings(tmp_path: Path, store: str) -> Settings:
    return make_settings(tmp_path / "state", free_port(), login_rate_limit=LIMIT, failure_rate_limit=LIMIT,
                         trusted_proxies=(PROXY,), mode="auth_request", store=store)


@pytest.fixture(params=["sqlite", "redis"])
def instances(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Instances]:
    outage: Callable[[], object]
    recover: Callable[[], object]
    if request.param == "redis":
        factory: RedisServerFactory = request.getfixturevalue("redis_server_factory")
        redis = factory()  # a server of its own: the outage test stops it
        settings = limited_settings(tmp_path, redis.url)
        outage, recover = redis.stop, redis.start
    else:
        settings = limited_settings(tmp_path, "")
        path = settings.sqlite_path
        outage, recover = (lambda: path.rename(tmp_path / "away")), (lambda: (tmp_path / "away").rename(path))
    servers = [UvicornThread(GatewayApp(settings)).start() for _ in range(2)]
    try:
        yield Instances([server.url for server in servers], settings, outage, recover)
    finally:
        for server in servers:
            server.stop()


def start_sign_in(client: httpx.Client, url: str, address: str) -> httpx.Response:
    """``POST /login`` as a browser behind the proxy at ``address`` (an identifier refused at once: 400)."""
    headers = {"X-Forwarded-For": address}
    token = csrf_token(client.get(url + "/login", headers=headers))
    return client.post(url + "/login", data={"csrf_token": token, "identifier": "=xri"}, headers=headers)


@pytest.mark.parametrize("last", [0, 1])
def test_sign_in_starts_are_counted_across_instances(instances: Instances, last: int) -> None:
    """Round robin over two instances: the limit + 1-th start is refused, whichever instance gets it."""
    order = [instances.urls[(last + LIMIT - i) % 2] for i in range(LIMIT + 1)]  # alternating, ending on `last`
    assert order[-1] == instances.urls[last]
    with httpx.Client(trust_env=False, timeout=10) as client:
        answers = [start_sign_in(client, url, "192.0.2.10") for url in order]
        assert [answer.status_code for answer in answers] == [400] * LIMIT + [429]
        assert "Too many attempts" in answers[-1].text and int(answers[-1].headers["retry-after"]) > 0
        assert start_sign_in(client, instances.urls[1 - last], "192.0.2.11").status_code == 400  # someone else


def test_an_ipv6_host_is_counted_as_its_64_across_instances(instances: Instances) -> None:
    with httpx.Client(trust_env=False, timeout=10) as client:
        statuses = [start_sign_in(client, url, f"2001:db8:5:6::{n:x}").status_code
                    for n, url in zip(range(1, LIMIT + 2), itertools.cycle(instances.urls), strict=False)]
        assert statuses == [400] * LIMIT + [429]
        assert start_sign_in(client, instances.urls[0], "2001:db8:5:6:ffff::1").status_code == 429
        assert start_sign_in(client, instances.urls[1], "2001:db8:5:7::1").status_code == 400  # the next /64


def test_failed_callbacks_are_counted_across_instances(instances: Instances) -> None:
    headers = {"X-Forwarded-For": "192.0.2.20"}
    with httpx.Client(trust_env=False, timeout=10) as client:
        statuses = [client.get(url + "/_gateway/callback?openid.mode=id_res", headers=headers).status_code
                    for url in itertools.islice(itertools.cycle(instances.urls), LIMIT + 1)]
        assert statuses == [303] * LIMIT + [429]


def test_with_the_store_down_a_sign_in_start_is_refused_not_let_through_uncounted(
        instances: Instances, caplog: pytest.LogCaptureFixture) -> None:
    """The limit cannot be checked: 503 from every instance (it was 400, an unlimited pass, in memory)."""
    with httpx.Client(trust_env=False, timeout=10) as client:
        tokens = [csrf_token(client.get(url + "/login")) for url in instances.urls]
        instances.outage()
        try:
            for url, token in zip(instances.urls, tokens, strict=True):
                for _ in range(LIMIT + 1):
                    answer = client.post(url + "/login", data={"csrf_token": token, "identifier": "=xri"})
                    assert answer.status_code == 503, answer.text[:300]
                    assert "Temporarily unavailable" in answer.text
                callback = client.get(url + "/_gateway/callback?openid.mode=id_res")
                assert callback.status_code == 503
                backchannel = client.post(url + "/_gateway/backchannel-logout", data={"logout_token": "x"})
                assert backchannel.status_code == 503  # a provider retries; its JSON answer, not a page
                assert backchannel.json()["reason"] == "temporarily-unavailable"
            assert "store unavailable on /login" in caplog.text
        finally:
            instances.recover()
        assert client.post(instances.urls[0] + "/login",
                           data={"csrf_token": tokens[0], "identifier": "=xri"}).status_code == 400
