"""Every spelling an app routes, through real nginx in both modes (issue 26): the rule of the route holds.

The echo app (tests/upstream_app.py) stands for the app; ``default_policy`` is
``public``, so every request below that reaches the app (200) got past a
``deny`` rule. Each class was seen reaching the app before the fix:

1. the request line names another host than ``Host`` (nginx routes by the
   request line's), or there is no Host at all: refused with 400 by nginx;
2. format suffixes (Rails' ``/admin(.:format)``): ``/admin.json`` is ``/admin``;
3. a trailing slash against ``path_regex = "^/reports$"``;
4. a rule written with capitals (``/Settings``) against ``/settings``;
5. method override: a POST an app turns into a DELETE (``_method``,
   ``X-HTTP-Method-Override``); the override headers never reach the app.

Forward auth from a peer outside ``trusted_proxies`` (class 6) is in tests/test_caddy.py.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from devtools.stack import MODES, Stack
from tests.stack_fixtures import ECHO_APP, start_stack

pytestmark = pytest.mark.nginx

RULES = [
    {"name": "admin-site", "hosts": ["admin.example.com"], "policy": "deny"},
    {"name": "admin", "paths": ["/echo/admin"], "policy": "deny"},
    {"name": "reports", "path_regex": "^/echo/reports$", "policy": "deny"},
    {"name": "settings", "paths": ["/echo/Settings"], "policy": "deny"},
    {"name": "read-only", "paths": ["/echo/posts"], "methods": ["DELETE", "PUT"], "policy": "deny"},
]
OVERRIDE_HEADERS = {"X-HTTP-Method-Override": "DELETE", "X-HTTP-Method": "DELETE", "X-Method-Override": "DELETE"}


@pytest.fixture(scope="module", params=MODES, name="stack")
def spellings_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"GATEWAY_RULES": json.dumps(RULES), "GATEWAY_DEFAULT_POLICY": "public"}
    yield from start_stack(tmp_path_factory, request.param, ECHO_APP, env)


def raw(stack: Stack, head: str, port: int | None = None) -> tuple[int, bytes]:
    """Send a request head exactly as written (absolute-form, HTTP/1.0, odd Host values); the status and body."""
    with socket.create_connection(("127.0.0.1", port or stack.ports.nginx), timeout=15) as conn:
        conn.sendall(head.encode("latin-1"))
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def ask(stack: Stack, method: str, raw_path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    with httpx.Client(timeout=15) as client:
        request = client.build_request(method, stack.url + "/", headers=headers)
        request.url = request.url.copy_with(raw_path=raw_path.encode("ascii"))
        return client.send(request)


def context(stack: Stack, what: str, status: int, body: bytes | str = b"") -> str:
    return f"{stack.mode} {what}: {status} {body[:200]!r}\n{stack.logs(8)}"


# --- 1. The host nginx routed is the host the gateway judges ------------------------------------------------


def test_a_request_line_naming_another_host_than_host_is_refused(stack: Stack) -> None:
    here = f"127.0.0.1:{stack.ports.nginx}"
    status, body = raw(stack, f"GET http://admin.example.com/echo/x HTTP/1.1\r\nHost: {here}\r\n"
                              "Connection: close\r\n\r\n")
    assert status == 400, context(stack, "absolute-form admin.example.com, Host www", status, body)
    status, body = raw(stack, f"GET http://{here}/echo/x HTTP/1.1\r\nHost: {here}\r\nConnection: close\r\n\r\n")
    assert status == 200, context(stack, "absolute-form naming the Host's own name", status, body)


def test_a_request_without_host_is_refused(stack: Stack) -> None:
    status, body = raw(stack, "GET /echo/x HTTP/1.0\r\n\r\n")
    assert status == 400, context(stack, "HTTP/1.0 without Host", status, body)
    if stack.mode == "proxy":  # the gateway itself, reached without nginx, refuses it too
        status, body = raw(stack, "GET /echo/x HTTP/1.0\r\n\r\n", stack.ports.gateway)
        assert status == 400, context(stack, "HTTP/1.0 without Host, to the gateway", status, body)


@pytest.mark.parametrize("host", ["admin.example.com", "admin.example.com.", "ADMIN.Example.COM",
                                  "admin.example.com.:8080"])
def test_a_host_rule_holds_for_every_spelling_of_the_host(stack: Stack, host: str) -> None:
    status, body = raw(stack, f"GET /echo/x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    assert status == 403, context(stack, f"Host: {host}", status, body)


# --- 2-4. Paths: format suffixes, trailing slashes, case ---------------------------------------------------

REFUSED = [
    "/echo/admin.json", "/echo/admin.html", "/echo/ADMIN.JSON",  # 2: Rails' (.:format)
    "/echo/reports/", "/echo/reports.csv",  # 3: the slash Express and Rails ignore, against a path_regex
    "/echo/settings", "/echo/SETTINGS/x", "/echo/settings.json",  # 4: a rule written with capitals
    "/echo/ADMIN;x", "/echo/about/..%2fADMIN", "/echo/about/%2e%2e/ADMIN",  # ambiguous, in upper case
]


@pytest.mark.parametrize("path", REFUSED)
def test_every_spelling_of_a_denied_route_is_refused(stack: Stack, path: str) -> None:
    response = ask(stack, "GET", path)
    assert response.status_code == 403, context(stack, path, response.status_code, response.text)


@pytest.mark.parametrize("path", ["/echo/reportsx", "/echo/administrator.json", "/echo/x.json", "/echo/x/"])
def test_other_paths_stay_open(stack: Stack, path: str) -> None:
    response = ask(stack, "GET", path)
    assert response.status_code == 200, context(stack, path, response.status_code, response.text)


# --- 5. Method override ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/echo/posts/1", "/echo/posts/1?_method=DELETE"])
def test_a_post_an_app_could_turn_into_a_delete_is_refused(stack: Stack, path: str) -> None:
    response = ask(stack, "POST", path, {"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 403, context(stack, f"POST {path}", response.status_code, response.text)


def test_method_override_headers_never_reach_the_app(stack: Stack) -> None:
    response = ask(stack, "POST", "/echo/other", {**OVERRIDE_HEADERS, "X_HTTP_Method_Override": "DELETE"})
    assert response.status_code == 200, context(stack, "POST /echo/other", response.status_code, response.text)
    seen = {name for name, _ in response.json()["headers"]}
    assert not seen & {"x-http-method-override", "x-http-method", "x-method-override", "x_http_method_override"}, seen
