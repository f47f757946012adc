"""Shared fixtures: real servers on loopback (provider, upstream app, gateway)."""

from __future__ import annotations

import dataclasses
import logging
import re
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

pytest_plugins = ["tests.redis_fixtures"]  # redis_server, redis_url, redis_server_factory

PROOF_KEY = "test-proof-key-" + "p" * 32

# Never in a log line (issue 13): a cookie of the gateway's with its value, an identity proof, a JWT,
# or a key the tests gave a gateway. Checked on every record of the run and every *.log file it left.
LEAK_PATTERNS = re.compile(
    r"(?:gw_session|gw_remember|gw_csrf|gw_state_[A-Za-z0-9_-]+)=[A-Za-z0-9._~-]{16,}"  # a cookie and its value
    r"|\bv2\.[1-9][0-9]{0,11}\.[A-Za-z0-9_-]{43}"  # an identity proof (gateway.proof)
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."  # a JWT (the identity assertion)
)
# Keys handed to gateways by make_settings (each run makes new ones).
KEYS_IN_USE: set[str] = {PROOF_KEY}


def leaked_secret(line: str) -> str | None:
    """The secret in a log line, or None."""
    found = LEAK_PATTERNS.search(line)
    if found:
        return found.group(0)
    return next((key for key in KEYS_IN_USE if key in line), None)


class _LeakCheck(logging.Handler):
    """Sees every log record of the run (the gateway's loggers at INFO) and keeps the ones with a secret."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = record.getMessage() + (logging.Formatter().formatException(record.exc_info)
                                          if record.exc_info else "")
        except Exception:  # a broken record is not this check's business
            return
        if leaked_secret(line) is not None:
            self.leaks.append(f"{record.name}: {line[:300]}")


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log_line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fail the run if any log line (in this process, or in the stacks' log files) holds a secret."""
    check = _LeakCheck()
    gateway_logger = logging.getLogger("gateway")
    level = gateway_logger.level
    gateway_logger.setLevel(logging.INFO)  # the audit and sign-in lines are INFO: check them too
    logging.getLogger().addHandler(check)
    yield
    logging.getLogger().removeHandler(check)
    gateway_logger.setLevel(level)
    leaks = list(check.leaks)
    for path in tmp_path_factory.getbasetemp().rglob("*.log"):
        with open(path, encoding="utf-8", errors="replace") as lines:
            leaks += [f"{path.name}: {line[:300]}" for line in lines if leaked_secret(line) is not None]
    assert not leaks, "secrets in log lines:\n" + "\n".join(leaks[:20])


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
    KEYS_IN_USE.add(env["GATEWAY_SECRET_KEYS"])
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
