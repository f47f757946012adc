"""``openid-gateway health`` (the container's HEALTHCHECK) against real servers on loopback."""

from __future__ import annotations

import dataclasses

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from gateway.cli import health, main
from gateway.paths import DEFAULT
from tests.conftest import RunningGateway
from tests.servers import UvicornThread, free_port


def test_a_running_gateway_is_healthy(gateway: RunningGateway) -> None:
    settings = dataclasses.replace(gateway.settings, port=gateway.server.port)
    assert health.run(settings) == 0


def test_the_command_finds_the_gateway_where_its_settings_say_it_listens(
        gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in {"GATEWAY_PUBLIC_URL": "https://gateway.example", "GATEWAY_SECRET_KEYS": "s" * 40,
                        "GATEWAY_PROOF_KEY": "p" * 40, "GATEWAY_PORT": str(gateway.server.port)}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        main(["health"])
    assert exited.value.code == 0, capsys.readouterr().err


def test_nothing_listening_is_unhealthy_with_one_line(gateway: RunningGateway,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert health.run(dataclasses.replace(gateway.settings, port=port), timeout=2) == health.EXIT_UNHEALTHY
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"openid-gateway: unhealthy: http://127.0.0.1:{port}/_gateway/health")


def test_an_answer_other_than_200_is_unhealthy(gateway: RunningGateway, capsys: pytest.CaptureFixture[str]) -> None:
    async def failing(request: Request) -> PlainTextResponse:
        return PlainTextResponse("no\n", status_code=503)

    with UvicornThread(Starlette(routes=[Route(DEFAULT.health, failing)])) as server:
        assert health.run(dataclasses.replace(gateway.settings, port=server.port)) == health.EXIT_UNHEALTHY
    assert "answered 503" in capsys.readouterr().err


def test_a_wildcard_host_is_probed_on_loopback(gateway: RunningGateway) -> None:
    for host, probed in (("0.0.0.0", "127.0.0.1"), ("::", "::1"), ("10.1.2.3", "10.1.2.3")):
        assert health.probe_address(dataclasses.replace(gateway.settings, host=host, port=9)) == (probed, 9)
