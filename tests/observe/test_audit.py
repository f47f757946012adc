"""The audit log (gateway.observe.audit): a scripted session's security events as JSON lines, and the request id.

A real gateway (proxy mode, the echo app behind) is driven by a browser-like
client; the ``gateway.observe.audit`` logger's records are formatted by the JSON
formatter the gateway installs with ``log_format = "json"``.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.stack import MODES, Stack
from gateway.gate.access import parse_rule
from gateway.observe.audit import AUDIT_LOGGER, AuditLog, JsonFormatter, RequestIdFilter, configure_logging
from gateway.observe.events import Event, Events, SignedIn
from tests.conftest import GatewayFactory, make_settings
from tests.htmlforms import submit
from tests.servers import UvicornThread
from tests.signin_steps import consent, sign_in, start_login
from tests.stack_fixtures import ECHO_APP, start_stack

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


class JsonLines(logging.Handler):
    """Keeps what the gateway's JSON formatter makes of each audit record."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.addFilter(RequestIdFilter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def events(self, name: str) -> list[dict[str, object]]:
        parsed = [json.loads(line) for line in self.lines]
        return [line for line in parsed if line.get("event") == name]


@pytest.fixture
def audit_lines() -> Iterator[JsonLines]:
    logger = logging.getLogger(AUDIT_LOGGER)
    handler = JsonLines()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def echoed(response: httpx.Response, name: str) -> list[str]:
    return [value for key, value in response.json()["headers"] if key == name]


def test_a_scripted_session_has_every_event_as_json(gateway_factory: GatewayFactory, provider: UvicornThread,
                                                   audit_lines: JsonLines) -> None:
    rules = (parse_rule(0, {"name": "admins-only", "paths": ["/echo/admin"], "policy": "deny"}),)
    gateway = gateway_factory(rules=rules, login_rate_limit=3, login_rate_window=600)
    identifier = f"{provider.url}/id/erin"
    with httpx.Client(follow_redirects=False, timeout=15) as client:
        asked = client.get(gateway.url + "/echo/page", headers={"X-Request-ID": "rid-anonymous-1"})
        assert asked.status_code == 302
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        sign_in(browser, gateway.url, identifier, "erin", remember=True)
        assert browser.get(gateway.url + "/echo/admin").status_code == 403
        logout = browser.get(gateway.url + "/logout", headers=SAME_ORIGIN)
        assert logout.status_code == 200
        refused_consent = consent(browser, start_login(browser, gateway.url, identifier), "erin", "deny")
        assert refused_consent.status_code == 200
        statuses = [submit(browser, browser.get(gateway.url + "/login"), {"identifier": identifier}).status_code
                    for _ in range(3)]
        assert statuses[-1] == 429, statuses

    client_addr = "127.0.0.1"
    required = audit_lines.events("sign_in_required")
    assert {"rule": "default_policy", "method": "GET", "path": "/echo/page",
            "request_id": "rid-anonymous-1"}.items() <= required[0].items()
    started = audit_lines.events("sign_in_started")[0]
    assert started["client"] == client_addr and started["provider"] == provider.url.removeprefix("http://")
    signed_in = audit_lines.events("signed_in")[0]
    assert signed_in["user"] == identifier and signed_in["remember"] is True and signed_in["client"] == client_addr
    assert signed_in["provider"] == started["provider"]
    forbidden = audit_lines.events("forbidden")[0]
    assert {"rule": "admins-only", "user": identifier, "path": "/echo/admin"}.items() <= forbidden.items()
    failed = audit_lines.events("sign_in_failed")[0]
    assert failed == {**failed, "reason": "cancelled", "client": client_addr, "provider": started["provider"]}
    signed_out = audit_lines.events("signed_out")[0]
    assert signed_out["user"] == identifier and signed_out["sessions"] == 1
    assert audit_lines.events("rate_limited")[0] == {**audit_lines.events("rate_limited")[0],
                                                     "limiter": "login", "client": client_addr}
    for line in map(json.loads, audit_lines.lines):
        assert {"time", "level", "logger", "request_id", "event"} <= line.keys()
        assert line["request_id"] != "-", line  # every audit line names its request


def test_a_trusted_proxys_request_id_reaches_the_app_and_the_log(gateway_factory: GatewayFactory,
                                                                 provider: UvicornThread) -> None:
    gateway = gateway_factory()
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        sign_in(browser, gateway.url, f"{provider.url}/id/erin", "erin")
        seen = browser.get(gateway.url + "/echo", headers={"X-Request-ID": "f00dfeed-1234"})
        assert echoed(seen, "x-request-id") == ["f00dfeed-1234"]
        made = echoed(browser.get(gateway.url + "/echo"), "x-request-id")
        assert len(made) == 1 and len(made[0]) == 32  # none sent: the gateway makes one


@pytest.mark.parametrize("forged", ["attacker-chosen", "bad id\nlevel=critical"])
def test_an_untrusted_clients_request_id_is_replaced(gateway_factory: GatewayFactory, forged: str) -> None:
    """A client that is not a trusted proxy cannot choose the id the app and the logs see (nor inject lines)."""
    trusted = ("10.99.0.0/16",) if forged == "attacker-chosen" else ("127.0.0.1/32",)
    gateway = gateway_factory(trusted_proxies=trusted, rules=(
        parse_rule(0, {"name": "open", "paths": ["/echo"], "policy": "public"}),))
    headers = [("X-Request-ID", forged.replace("\n", "%0A"))] if "\n" in forged else [("X-Request-ID", forged)]
    seen = httpx.get(gateway.url + "/echo", headers=headers)
    ids = echoed(seen, "x-request-id")
    assert len(ids) == 1 and ids[0] != forged and ids[0] != headers[0][1] and len(ids[0]) == 32


def test_a_listener_that_fails_never_breaks_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    heard: list[Event] = []
    events = Events()

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    events.subscribe(broken)
    events.subscribe(heard.append)
    with caplog.at_level(logging.ERROR, logger="gateway.events"):
        events.emit(SignedIn("https://op.example/", "https://op.example/id/x", "192.0.2.1", False))
    assert [e.name for e in heard] == ["signed_in"] and "listener bug" in caplog.text


def test_audit_log_file_gets_json_lines(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, 8080, audit_log=str(tmp_path / "audit.log"), log_level="warning")
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        configure_logging(settings.log_format, settings.log_level, settings.audit_log)
        AuditLog()(SignedIn("https://op.example/", "https://op.example/id/x", "192.0.2.1", True))
    finally:
        for handler in [h for h in root.handlers if h not in before[0]]:
            root.removeHandler(handler)
        root.setLevel(before[1])
        audit = logging.getLogger(AUDIT_LOGGER)
        for handler in list(audit.handlers):
            audit.removeHandler(handler)
            handler.close()
        audit.propagate = True
        audit.setLevel(logging.NOTSET)
    line = json.loads((tmp_path / "audit.log").read_text().splitlines()[0])
    assert line["event"] == "signed_in" and line["remember"] is True and line["request_id"] == "-"


@pytest.mark.parametrize("line", [
    "cookie: gw_session=eyJ1IjoiYWxpY2UifQ.ZmFrZS1zaWduYXR1cmU.aGVsbG8",
    "Cookie: __Host-gw_remember=c2VyaWVzOnRva2Vu.Zm9vYmFyYmF6cXV4",
    "proof v2.1764460000.abcdefghijABCDEFGHIJabcdefghijABCDEFGHIJabc",
    "token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln",
    "key test-proof-key-" + "p" * 32,
])
def test_the_log_check_sees_each_kind_of_secret(line: str) -> None:
    from tests.conftest import leaked_secret

    assert leaked_secret(line) is not None


def test_the_log_check_lets_ordinary_lines_through() -> None:
    from tests.conftest import leaked_secret

    for line in ('signed_in provider="op.example" user="https://op.example/id/erin" remember=True',
                 "login state missing: no gw_state_* cookie came back", "forbidden by admins-only: GET /v2.1/x"):
        assert leaked_secret(line) is None


@pytest.fixture(scope="module", params=MODES)
def json_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """nginx + gateway (``openid-gateway serve``, log_format = "json") + the echo app, in each mode."""
    yield from start_stack(tmp_path_factory, request.param, upstream=ECHO_APP,
                           gateway_env={"GATEWAY_LOG_FORMAT": "json"})


def gateway_json_lines(stack: Stack) -> list[dict[str, object]]:
    """Every line of the gateway process's log (uvicorn's included), each of which must be a JSON object."""
    lines = (stack.log_dir / "gateway.log").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_through_nginx_every_line_is_json_and_the_request_id_is_nginxs(json_stack: Stack) -> None:
    """A client's X-Request-ID is replaced by nginx's $request_id, in the gateway's log and at the app."""
    chosen = {"X-Request-ID": "client-chosen-id"}
    with httpx.Client(timeout=15) as anonymous:
        assert anonymous.get(json_stack.url + "/echo/page", headers=chosen).status_code == 302
    deadline = time.monotonic() + 10
    required: list[dict[str, object]] = []
    while not required and time.monotonic() < deadline:
        required = [line for line in gateway_json_lines(json_stack) if line.get("event") == "sign_in_required"
                    and line.get("path") == "/echo/page"]
        time.sleep(0.05)
    assert required and re.fullmatch(r"[0-9a-f]{32}", str(required[-1]["request_id"])), required
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        sign_in(browser, json_stack.url, json_stack.provider_identifier, "alice")
        ids = echoed(browser.get(json_stack.url + "/echo/page", headers=chosen), "x-request-id")
        assert len(ids) == 1 and re.fullmatch(r"[0-9a-f]{32}", ids[0]), ids
    signed = [line for line in gateway_json_lines(json_stack) if line.get("event") == "signed_in"]
    assert signed and signed[-1]["request_id"] != "-"
    text = (json_stack.log_dir / "gateway.log").read_text()
    assert "client-chosen-id" not in text


def test_with_metrics_every_line_of_serve_is_json_the_supervisors_too(tmp_path: Path) -> None:
    """``metrics_address`` runs the workers under uvicorn's supervisor, which logs too ("Started parent process").

    Those lines come from the serving process, not a worker: they must be JSON as well, or a SIEM that
    reads the gateway's stderr line by line chokes on them.
    """
    from devtools.processes import free_port
    from tests.cli.test_main import ROOT, SCRIPT

    port, metrics_port = free_port(), free_port()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "GATEWAY_PUBLIC_URL": "https://a.example",
           "GATEWAY_SECRET_KEYS": "s" * 40, "GATEWAY_PROOF_KEY": "p" * 40, "GATEWAY_STATE_DIR": str(tmp_path),
           "GATEWAY_PORT": str(port), "GATEWAY_LOG_FORMAT": "json",
           "GATEWAY_METRICS_ADDRESS": f"127.0.0.1:{metrics_port}"}
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen([str(SCRIPT), "serve"], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_gateway/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail(f"the gateway did not start: {log.read_text()}")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert any("parent process" in line for line in lines), lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line
