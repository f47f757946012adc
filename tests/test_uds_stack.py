"""nginx reaching the gateway over its Unix socket (setting ``uds``), in both modes, as the production install does.

The stack renders the checked-in nginx.conf, whose ``upstream gateway`` names the socket, with the
gateway's socket in a directory anyone may enter and the socket given to nginx's workers' group
(:func:`devtools.stack.nginx_worker_group`), as the systemd unit gives it to ``www-data``. TCP stays
tested by every other stack test (the tests' stacks listen on ports) and by the instance template.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

import httpx
import pytest

from devtools.processes import port_is_free
from devtools.stack import MODES, NGINX_CONF, Stack
from tests.signin_steps import sign_in
from tests.stack_fixtures import ECHO_APP, start_stack

pytestmark = pytest.mark.nginx


@pytest.fixture(scope="module", params=MODES, name="uds_stack")
def uds_stack_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The echo app behind nginx and a gateway that listens only on its Unix socket."""
    yield from start_stack(tmp_path_factory, request.param, ECHO_APP, uds=True)


def signed_in(stack: Stack, username: str = "alice") -> httpx.Client:
    browser = httpx.Client(follow_redirects=True, timeout=15)
    sign_in(browser, stack.url, stack.provider_identifier, username)
    client = httpx.Client(timeout=15, cookies=browser.cookies)
    browser.close()
    assert client.cookies.get("gw_session"), f"no session after sign-in\n{stack.logs()}"
    return client


def test_the_checked_in_nginx_conf_reaches_the_gateway_on_its_socket() -> None:
    """Same machine: the default upstream is the socket the example configuration and the systemd unit make."""
    upstream = NGINX_CONF.read_text().split("upstream gateway {", 1)[1].split("}", 1)[0]
    servers = [line.strip() for line in upstream.splitlines() if line.strip().startswith("server ")]
    assert servers == ["server unix:/run/openid-gateway/gateway.sock;"]


def test_a_signed_in_request_reaches_the_app_with_its_identity_over_the_socket(uds_stack: Stack) -> None:
    sock = uds_stack.gateway_socket(1)
    assert sock is not None and stat.S_ISSOCK(sock.stat().st_mode)
    assert port_is_free(uds_stack.ports.gateway)  # no TCP listener: nginx can only have used the socket
    with signed_in(uds_stack) as client:
        echoed = client.get(uds_stack.url + "/echo/page")
    assert echoed.status_code == 200, uds_stack.logs()
    headers = {name.lower(): value for name, value in echoed.json()["headers"]}
    assert headers["x-gateway-nickname"] == "alice" and headers["x-gateway-proof"]


def test_an_anonymous_request_is_sent_to_sign_in_over_the_socket(uds_stack: Stack) -> None:
    answer = httpx.get(uds_stack.url + "/echo/page", timeout=15)
    assert answer.status_code == 302
    assert "/login?next=" in answer.headers["location"]


def test_the_socket_is_mode_0660_in_the_group_of_nginx_s_workers(uds_stack: Stack) -> None:
    sock = uds_stack.gateway_socket(1)
    assert sock is not None
    found = sock.stat()
    assert stat.S_IMODE(found.st_mode) == 0o660 and found.st_uid == os.geteuid()
