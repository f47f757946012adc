"""Access rules through nginx, both modes, from ONE table of cases: both modes must answer alike.

The echo app (tests/upstream_app.py) stands for the protected app; the
gateway runs with a small rule set: a public page, an admin area for the
group ``admins``, an API path (JSON answers), and no DELETE anywhere. Every
case is run in mode 1 (nginx ``auth_request``) and mode 2 (the gateway
proxies), and the answers are the same: status, where a redirect goes, the
kind of body, and what identity the app received.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from devtools.stack import MODES, Stack
from gateway.proof import ProofVerifier
from tests.signin_steps import sign_in
from tests.stack_fixtures import ECHO_APP, start_stack

pytestmark = pytest.mark.nginx

PROOF_KEY_ENV = "GATEWAY_PROOF_KEY"
RULES = [
    {"name": "about", "paths": ["/echo/about"], "policy": "public"},
    {"name": "admin-area", "paths": ["/echo/admin"], "policy": "allow", "subjects": ["group:admins"]},
    {"name": "no-deletes", "methods": ["DELETE"], "policy": "deny"},
    {"name": "dev-provider-only", "paths": ["/echo/dev"], "policy": "allow",
     "subjects": ["provider:Local dev provider"]},
    {"name": "steam-only", "paths": ["/echo/steam"], "policy": "allow", "subjects": ["provider:steam"]},
]
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Sec-Fetch-Mode": "navigate"}
XHR = {"Accept": "application/json", "X-Requested-With": "XMLHttpRequest"}


@pytest.fixture(scope="module", params=MODES, name="stack")
def rules_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # The admin's identifier is the local provider's claimed identifier for the user name "admin":
    # known only once the stack has its ports, so the groups table names it through a placeholder
    # the stack fills in (see Stack.gateway_environ).
    env = {
        "GATEWAY_RULES": json.dumps(RULES),
        "GATEWAY_API_PATHS": "/echo/api/",
        "GATEWAY_GROUPS": json.dumps({"admins": ["{provider}/id/admin"]}),
    }
    yield from start_stack(tmp_path_factory, request.param, ECHO_APP, env)


@pytest.fixture(scope="module")
def people(stack: Stack) -> Iterator[dict[str, httpx.Client]]:
    clients: dict[str, httpx.Client] = {"anonymous": httpx.Client(timeout=15)}
    for name in ("alice", "admin"):
        browser = httpx.Client(follow_redirects=True, timeout=15)
        sign_in(browser, stack.url, stack.provider_identifier, name)
        clients[name] = httpx.Client(timeout=15, cookies=browser.cookies)
        browser.close()
        assert clients[name].cookies.get("gw_session"), stack.logs()
    yield clients
    for client in clients.values():
        client.close()


# (who, method, raw path, request headers, expected answer)
# Answers: "app" (the app answered; identity checked separately), "app-anonymous" (the app answered and
# received no identity), "login" (302 to /login?next=<path>), "login-home" (302 to /login), "json-401",
# "json-403", "page-403".
CASES: list[tuple[str, str, str, dict[str, str], str]] = [
    ("anonymous", "GET", "/echo/about", BROWSER, "app-anonymous"),
    ("alice", "GET", "/echo/about", BROWSER, "app-anonymous"),  # public: no identity even when signed in
    ("anonymous", "GET", "/echo/x?page=2", BROWSER, "login"),
    ("anonymous", "GET", "/echo/x", XHR, "json-401"),
    ("anonymous", "GET", "/echo/x", {"Accept": "application/json"}, "json-401"),
    ("anonymous", "GET", "/echo/x", {"Sec-Fetch-Mode": "cors"}, "json-401"),
    ("anonymous", "GET", "/echo/api/posts", BROWSER, "json-401"),
    ("alice", "GET", "/echo/x", BROWSER, "app"),
    ("alice", "GET", "/echo/admin", BROWSER, "page-403"),
    ("alice", "GET", "/echo/admin/users?x=1", BROWSER, "page-403"),
    ("alice", "GET", "/echo/admin", XHR, "json-403"),
    ("alice", "GET", "/echo/api/admin-stats", BROWSER, "app"),
    ("admin", "GET", "/echo/admin", BROWSER, "app"),
    ("admin", "GET", "/echo/admin/users", BROWSER, "app"),
    ("anonymous", "GET", "/echo/admin", BROWSER, "login"),
    ("alice", "DELETE", "/echo/x", BROWSER, "page-403"),
    ("admin", "DELETE", "/echo/x", XHR, "json-403"),
    ("admin", "DELETE", "/echo/admin", XHR, "app"),  # the first matching rule decides: admin-area, any method
    ("anonymous", "DELETE", "/echo/posts/1", XHR, "json-403"),  # deny: nobody, signed in or not
    # Who vouched for the sign-in: the local provider's button name (remembered in the session).
    ("alice", "GET", "/echo/dev/x", BROWSER, "app"),
    ("alice", "GET", "/echo/steam", BROWSER, "page-403"),
    # The query string never matches a rule.
    ("alice", "GET", "/echo/x?next=/echo/admin", BROWSER, "app"),
    ("anonymous", "GET", "/echo/x?/echo/about", BROWSER, "login"),
    # Spellings of the admin area: never judged by a looser rule.
    ("alice", "GET", "/echo/ADMIN", BROWSER, "page-403"),
    ("alice", "GET", "/echo/%61dmin", BROWSER, "page-403"),
    ("alice", "GET", "/echo/admin%2fusers", BROWSER, "page-403"),
    ("alice", "GET", "/echo/admin;x", BROWSER, "page-403"),
    ("alice", "GET", "/echo/admin.", BROWSER, "page-403"),
    ("alice", "GET", "/echo//admin", BROWSER, "page-403"),
    ("alice", "GET", "/echo/about/..%2fadmin", BROWSER, "page-403"),
    ("alice", "GET", "/echo/about/%2e%2e/admin", BROWSER, "page-403"),
    ("alice", "GET", "/echo/about/..;/admin", BROWSER, "page-403"),
    ("alice", "GET", "/echo/about/..%5cadmin", BROWSER, "page-403"),
    # Sign in first; such a path is no `next` the gateway will go back to (gateway/gate/redirects.py): home after.
    ("anonymous", "GET", "/echo/about/..%2fadmin", BROWSER, "login-home"),
    ("anonymous", "GET", "/echo/about%2f..%2fx", BROWSER, "login-home"),
]


def ask(stack: Stack, client: httpx.Client, method: str, raw_path: str, headers: dict[str, str]) -> httpx.Response:
    """Send the path exactly as written (httpx would otherwise resolve dot segments)."""
    request = client.build_request(method, stack.url + "/", headers=headers)
    path, _, query = raw_path.partition("?")
    request.url = request.url.copy_with(raw_path=raw_path.encode("ascii"))
    assert request.url.raw_path.decode() == raw_path, (path, query)
    return client.send(request)


def identity_seen(response: httpx.Response) -> dict[str, str]:
    echo = response.json()
    return {name: value for name, value in echo["headers"] if name.startswith("x-gateway-")}


@pytest.mark.parametrize(("who", "method", "path", "headers", "expected"), CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}-{'xhr' if c[3] is XHR else 'nav'}" for c in CASES])
def test_both_modes_decide_alike(stack: Stack, people: dict[str, httpx.Client], who: str, method: str, path: str,
                                 headers: dict[str, str], expected: str) -> None:
    response = ask(stack, people[who], method, path, headers)
    context = f"{stack.mode} {who} {method} {path}: {response.status_code} {response.text[:300]}\n{stack.logs(10)}"
    if expected == "app-anonymous":
        assert response.status_code == 200, context
        assert identity_seen(response) == {}, context
    elif expected == "app":
        assert response.status_code == 200, context
        echo = response.json()
        seen = httpx.Headers([tuple(pair) for pair in echo["headers"]])
        uri = echo["raw_path"] + ("?" + echo["query_string"] if echo["query_string"] else "")
        identity = ProofVerifier(stack.gateway_environ()[PROOF_KEY_ENV]).verify(seen, method, seen["host"], uri)
        assert identity is not None, context
        assert identity.user_id.endswith("/id/" + who), context
        assert identity.groups == (("admins",) if who == "admin" else ()), context
    elif expected in ("login", "login-home"):
        assert response.status_code == 302, context
        target = "/login?" + urlencode({"next": path}) if expected == "login" else "/login"
        assert response.headers["location"] == target, context
    elif expected in ("json-401", "json-403"):
        status = int(expected[-3:])
        assert response.status_code == status, context
        assert response.headers["content-type"].startswith("application/json"), context
        body: dict[str, Any] = response.json()
        assert body["error"] == ("unauthorized" if status == 401 else "forbidden"), context
        if status == 401:
            assert body["login_url"] == "/login?" + urlencode({"next": path}), context
            assert response.headers["www-authenticate"].startswith("Cookie"), context
    else:
        assert expected == "page-403"
        assert response.status_code == 403, context
        assert response.headers["content-type"].startswith("text/html"), context
        assert "This page is not open to you" in response.text, context
        assert "Sign in as someone else" in response.text and who in response.text, context


def test_a_refusal_is_logged_with_the_rule_that_decided(stack: Stack, people: dict[str, httpx.Client]) -> None:
    ask(stack, people["alice"], "GET", "/echo/admin/secret-report", BROWSER)
    log = stack.log("gateway", tail=200)
    assert "forbidden by admin-area" in log and "/echo/admin/secret-report" in log, log


def test_sign_in_as_someone_else_comes_back_to_the_refused_page(stack: Stack) -> None:
    browser = httpx.Client(follow_redirects=True, timeout=15)
    sign_in(browser, stack.url, stack.provider_identifier, "alice")
    page = browser.get(stack.url + "/echo/admin?tab=2")
    assert page.status_code == 403
    from tests.htmlforms import submit

    after = submit(browser, page)  # "Sign in as someone else": signs out, then the login page with next
    assert after.url.path == "/login", after.url
    assert after.url.params["next"] == "/echo/admin?tab=2"
    assert not browser.cookies.get("gw_session")
    sign_in(browser, stack.url, stack.provider_identifier, "admin", next_target=after.url.params["next"])
    final = browser.get(stack.url + "/echo/admin?tab=2")
    assert final.status_code == 200
    browser.close()
