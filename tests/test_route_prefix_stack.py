"""route_prefix through real nginx, in both modes: the snippets, redirects, cookies and the app follow it.

The stack renders deploy/nginx/ for the prefix exactly as docs/customising.md tells operators
(:func:`devtools.stack.prefixed_snippet`), the gateway runs with ``route_prefix = "/sso"`` and the
microblog links to the prefixed pages (MICROBLOG_GATEWAY_PREFIX).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from devtools.stack import MODES, NGINX_SNIPPETS, Stack, prefixed_snippet
from tests.signin_steps import sign_in
from tests.stack_fixtures import start_stack

pytestmark = pytest.mark.nginx
PREFIX = "/sso"


@pytest.fixture(scope="module", params=MODES, name="stack")
def prefixed_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory, request.param, route_prefix=PREFIX)


def test_anonymous_visitors_are_sent_to_the_prefixed_login_page(stack: Stack) -> None:
    response = httpx.get(stack.url + "/about?x=1", timeout=15)
    assert response.status_code == 302, stack.logs()
    assert response.headers["location"] == f"{PREFIX}/login?" + urlencode({"next": "/about?x=1"})


def test_the_apps_own_login_path_is_the_apps_not_the_gateways(stack: Stack) -> None:
    """/login is an ordinary (protected) path of the app now: the gateway's page is at /sso/login."""
    for path in ("/login", "/logout", "/_gateway/account"):
        response = httpx.get(stack.url + path, timeout=15)
        assert response.status_code == 302, (path, response.text[:200])
        assert response.headers["location"] == f"{PREFIX}/login?" + urlencode({"next": path})


def test_a_whole_sign_in_runs_under_the_prefix_and_the_app_links_to_it(stack: Stack) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        final = sign_in(browser, stack.url, stack.provider_identifier, "alice", next_target="/about",
                        login_path=f"{PREFIX}/login")
        assert final.status_code == 200 and final.url.path == "/about", stack.logs()
        assert any(r.url.path == f"{PREFIX}/callback" for r in final.history)
        home = browser.get(stack.url + "/")
        assert f'href="{PREFIX}/logout"' in home.text and f'href="{PREFIX}/account"' in home.text
        account = browser.get(stack.url + f"{PREFIX}/account")
        assert account.status_code == 200 and "alice" in account.text
        assert f'href="{PREFIX}/static/gateway.css"' in account.text
        assert browser.get(stack.url + f"{PREFIX}/static/gateway.css").status_code == 200


def test_nothing_outside_reaches_the_auth_check_under_the_prefix(stack: Stack) -> None:
    response = httpx.get(stack.url + f"{PREFIX}/auth", headers={"X-Original-URI": "/admin"}, timeout=15)
    assert response.status_code == 404


def test_the_rendered_snippets_name_no_default_path() -> None:
    for snippet in NGINX_SNIPPETS.glob("*.conf"):
        text = prefixed_snippet(snippet.name, snippet.read_text(), PREFIX)
        directives = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        assert "/_gateway/" not in directives and "= /login" not in directives, snippet.name
        assert " /login;" not in directives and 'form="/login"' not in directives, snippet.name
