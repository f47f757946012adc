"""The whole stack (provider, app, gateway, nginx) as module-scoped fixtures, once per mode.

A test module imports the fixture functions it uses and names the fixtures as
arguments (``from tests.stack_fixtures import stack_fixture  # noqa: F401``,
then ``def test_x(stack: Stack)``): the functions are named ``*_fixture`` so
that the argument does not shadow the import.
Each stack runs the project's own nginx.conf and deploy/nginx/ snippets
(:mod:`devtools.stack`); its processes' logs are kept under pytest's
temporary directory (the path is in every failure message). A missing nginx
is an error, never a skip: CI installs it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from devtools.stack import MODES, Mode, Stack

# Fast revocation refresh: a store outage shows as 503 after 5 s instead of 6.
# No login rate limit to trip over: every sign-in of a module comes from 127.0.0.1.
TEST_GATEWAY_ENV = {
    "GATEWAY_REVOCATION_REFRESH": "0.2",
    "GATEWAY_LOGIN_RATE_LIMIT": "10000",
    "GATEWAY_FETCH_CONNECT_TIMEOUT": "1",
    "GATEWAY_FETCH_READ_TIMEOUT": "3",
}
ECHO_APP = "tests.upstream_app:app"


def start_stack(
    tmp_path_factory: pytest.TempPathFactory, mode: Mode, upstream: str | None = None,
    gateway_env: Mapping[str, str] | None = None, **options: Any,
) -> Iterator[Stack]:
    """A started :class:`Stack` with the test settings; ``options`` go to ``Stack`` as they are."""
    base = tmp_path_factory.mktemp(f"stack-{mode}-{'microblog' if upstream is None else 'echo'}")
    stack = Stack(mode, upstream=upstream, state_dir=base / "state", log_dir=base / "logs",
                  gateway_env={**TEST_GATEWAY_ENV, **(gateway_env or {})}, **options)
    with stack:
        yield stack


@pytest.fixture(scope="module", params=MODES, name="stack")
def stack_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """nginx + gateway + the microblog + the development provider, in each mode."""
    yield from start_stack(tmp_path_factory, request.param)


@pytest.fixture(scope="module", params=MODES, name="echo_stack")
def echo_stack_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The same with tests/upstream_app.py behind it, which echoes the headers it receives.

    Sessions idle out after 10 s, so the gateway refreshes the cookie after 1 s.
    """
    yield from start_stack(tmp_path_factory, request.param, ECHO_APP, {"GATEWAY_SESSION_IDLE_TIMEOUT": "10"})
