"""Pytest fixtures for a real redis-server (registered in tests/conftest.py).

``redis_server``: one server for the whole run (debug commands allowed from
loopback, for ``DEBUG SLEEP``); ``redis_url``: its URL with database 0
emptied before the test, so each test starts clean; ``redis_server_factory``:
servers of a test's own (stopped, restarted, given a password) in its tmp_path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from devtools.redis_server import RedisServer

TEST_CONFIG = {"enable-debug-command": "local"}

RedisServerFactory = Callable[..., RedisServer]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The run's shared redis-server."""
    with RedisServer(tmp_path_factory.mktemp("redis"), extra_config=TEST_CONFIG) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The shared server's URL, its database emptied (and its settings put back) for this test."""
    with redis_server.client() as client:
        client.config_set("maxmemory-policy", "noeviction")  # a test may have changed it
        client.flushdb()
    return redis_server.url


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[RedisServerFactory]:
    """Start servers of this test's own: ``factory(appendonly=True, extra_config={...})``."""
    started: list[RedisServer] = []

    def start(appendonly: bool = False, extra_config: Mapping[str, str] | None = None) -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(started)}", appendonly=appendonly,
                             extra_config={**TEST_CONFIG, **(extra_config or {})})
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
