"""Real servers for the migration, linking and userinfo tests: two OpenID 2.0 providers, one OIDC provider, a gateway.

``op2`` is the OpenID 2.0 provider the OIDC provider is moving from (its claimed
identifiers answer ``Accept: application/json`` with the OIDC issuer);
``foreign`` is another OpenID 2.0 provider, moving to some other issuer: an
``openid2_id`` of its users is one the OIDC provider must not be believed on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.datastructures import Secret

from devtools.oidc_provider import Client
from devtools.oidc_provider import create_app as create_oidc_provider
from devtools.openid_provider import create_app as create_openid2_provider
from devtools.stack import local_claimed_id
from gateway.app import GatewayApp
from gateway.settings import Provider
from gateway.store import Store
from tests.conftest import RunningGateway, make_settings
from tests.devtools.oidc_relying_party import decide
from tests.htmlforms import submit
from tests.servers import UvicornThread, free_port

CLIENT_ID = "gateway"
SECRET = "gateway-oidc-secret"
OIDC_NAME = "Local OpenID Connect"
OPENID2_NAME = "Local OpenID 2.0"
ELSEWHERE = "https://elsewhere.invalid"  # the issuer the foreign OpenID 2.0 provider moves to


@dataclasses.dataclass
class Servers:
    op2_url: str
    foreign_url: str
    oidc_url: str
    gateway: RunningGateway
    http: httpx.Client

    @property
    def store(self) -> Store:
        return self.gateway.app.runtime.store

    def op2_id(self, username: str) -> str:
        return local_claimed_id(self.op2_url, username)

    def foreign_id(self, username: str) -> str:
        return local_claimed_id(self.foreign_url, username)

    def misbehave(self, mode: str) -> None:
        assert self.http.post(f"{self.oidc_url}/_dev/misbehave", json={"mode": mode}).json()["mode"] == mode

    def vouch_for(self, openid2_provider: str | None) -> None:
        """Whose OpenID 2.0 identifiers the OIDC provider puts in ``openid2_id`` (None: none)."""
        answer = self.http.post(f"{self.oidc_url}/_dev/openid2", json={"provider": openid2_provider})
        assert answer.json()["provider"] == openid2_provider

    def reset(self) -> None:
        self.misbehave("none")
        self.vouch_for(self.op2_url)

    def oidc_consent(self, browser: httpx.Client) -> httpx.Response:
        page = browser.get(f"{self.gateway.url}/login")
        consent = submit(browser, page, button=("provider", self.oidc_url))
        assert consent.status_code == 200 and consent.url.port != self.gateway.server.port, consent.text[:500]
        return consent

    def oidc_sign_in(self, browser: httpx.Client, username: str, **fields: str | None) -> httpx.Response:
        """The login page's OIDC button, the consent page as ``username``, back to the gateway."""
        return decide(browser, self.oidc_consent(browser), "allow", username=username, **fields)


def serve(tmp_path: Path, upstream: UvicornThread, **settings: object) -> Iterator[Servers]:
    """Start everything; the gateway's OIDC provider has ``openid2_migration = true``."""
    op2_port, foreign_port, oidc_port, gateway_port = free_port(), free_port(), free_port(), free_port()
    op2_url, foreign_url, oidc_url = (f"http://127.0.0.1:{p}" for p in (op2_port, foreign_port, oidc_port))
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    oidc_app = create_oidc_provider(oidc_url, [Client(CLIENT_ID, SECRET, (gateway_url + "/_gateway/callback",))],
                                    openid2_provider=op2_url)
    providers = (Provider(OPENID2_NAME, op2_url + "/openid"),
                 Provider(OIDC_NAME, oidc_url, "oidc", CLIENT_ID, Secret(SECRET), groups_claim="groups",
                          openid2_migration=True))
    config = make_settings(tmp_path, gateway_port, mode="proxy", upstream_url=upstream.url, providers=providers,
                           login_rate_limit=1000, failure_rate_limit=1000, **settings)
    app = GatewayApp(config)
    with (UvicornThread(create_openid2_provider(op2_url, oidc_issuer=oidc_url), port=op2_port),
          UvicornThread(create_openid2_provider(foreign_url, oidc_issuer=ELSEWHERE), port=foreign_port),
          UvicornThread(oidc_app, port=oidc_port), UvicornThread(app, port=gateway_port) as server,
          httpx.Client(trust_env=False, timeout=10) as http):
        yield Servers(op2_url, foreign_url, oidc_url, RunningGateway(server, app, config), http)


@pytest.fixture(scope="module", name="servers")
def servers_fixture(tmp_path_factory: pytest.TempPathFactory, upstream: UvicornThread) -> Iterator[Servers]:
    """The servers, once per test module (import this fixture, and ``stack`` or ``unvouched_stack``)."""
    yield from serve(tmp_path_factory.mktemp("migration-servers"), upstream)


@pytest.fixture(name="stack")
def stack_fixture(servers: Servers) -> Iterator[Servers]:
    """The servers as they start: the OIDC provider vouches for ``op2``'s identifiers (``openid2_id``)."""
    servers.reset()
    yield servers
    servers.reset()


@pytest.fixture(name="stack")
def unvouched_stack_fixture(servers: Servers) -> Iterator[Servers]:
    """The servers with no migration claims: the OIDC provider sends no ``openid2_id`` (only links join accounts)."""
    servers.reset()
    servers.vouch_for(None)
    yield servers
    servers.reset()


__all__ = ["CLIENT_ID", "ELSEWHERE", "OIDC_NAME", "OPENID2_NAME", "SECRET", "Servers", "serve", "servers_fixture",
           "stack_fixture", "unvouched_stack_fixture"]
