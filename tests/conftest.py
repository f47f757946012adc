"""Shared fixtures: real servers on loopback (provider, upstream app, gateway)."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.openid_provider import create_app as create_provider
from gateway.app import GatewayApp
from gateway.settings import Settings, load_settings
from tests.servers import UvicornThread, free_port
from tests.upstream_app import app as upstream_asgi

PROOF_KEY = "test-proof-key-" + "p" * 32


@pytest.fixture(scope="session")
def provider() -> Iterator[UvicornThread]:
    """The development OpenID provider (all profiles) on a loopback port."""
    port = free_port()
    with UvicornThread(create_provider(f"http://127.0.0.1:{port}"), port=port) as server:
        yield server


@pytest.fixture(scope="session")
def upstream() -> Iterator[UvicornThread]:
    """A small protected app (tests/upstream_app.py) that echoes what it receives."""
    with UvicornThread(upstream_asgi) as server:
        yield server


def make_settings(state_dir: Path, port: int, **overrides: Any) -> Settings:
    env = {
        "GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "GATEWAY_SECRET_KEYS": secrets.token_urlsafe(32),
        "GATEWAY_PROOF_KEY": PROOF_KEY,
        "GATEWAY_STATE_DIR": str(state_dir),
        "GATEWAY_ALLOW_PRIVATE_ADDRESSES": "true",
        "GATEWAY_FETCH_READ_TIMEOUT": "2",
        "GATEWAY_FETCH_CONNECT_TIMEOUT": "1",
        "GATEWAY_REVOCATION_REFRESH": "0.2",
    }
    settings = load_settings(None, env)
    return dataclasses.replace(settings, **overrides) if overrides else settings


@dataclasses.dataclass
class RunningGateway:
    server: UvicornThread
    app: GatewayApp
    settings: Settings

    @property
    def url(self) -> str:
        return self.server.url


GatewayFactory = Callable[..., RunningGateway]


@pytest.fixture
def gateway_factory(tmp_path: Path, upstream: UvicornThread) -> Iterator[GatewayFactory]:
    """Start gateways with settings overrides; proxy mode in front of the upstream app by default."""
    started: list[UvicornThread] = []

    def start(**overrides: Any) -> RunningGateway:
        port = free_port()
        overrides.setdefault("mode", "proxy")
        overrides.setdefault("upstream_url", upstream.url)
        settings = make_settings(tmp_path / f"state-{port}", port, **overrides)
        app = GatewayApp(settings)
        server = UvicornThread(app, port=port).start()
        started.append(server)
        return RunningGateway(server, app, settings)

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def gateway(gateway_factory: GatewayFactory) -> RunningGateway:
    return gateway_factory()


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    """An httpx client that keeps cookies and follows redirects, like a browser."""
    with httpx.Client(follow_redirects=True, timeout=15) as client:
        yield client
