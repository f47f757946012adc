"""route_prefix: the gateway's pages move under it, and the app keeps its own /login (real uvicorn, mode 2)."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx

from gateway.settings import load_settings
from tests import upstream_app
from tests.conftest import GatewayFactory
from tests.htmlforms import submit
from tests.servers import UvicornThread
from tests.signin_steps import consent, follow_autopost


def test_the_login_page_and_its_redirect_live_under_the_prefix(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(route_prefix="/sso")
    assert httpx.get(gateway.url + "/sso/login").status_code == 200
    response = httpx.get(gateway.url + "/echo?a=1")
    assert response.status_code == 302
    assert response.headers["location"] == "/sso/login?" + urlencode({"next": "/echo?a=1"})


def test_with_a_prefix_the_apps_own_login_and_logout_reach_the_app(gateway_factory: GatewayFactory) -> None:
    """Grafana, Jenkins, Nextcloud have a /login of their own: the gateway no longer shadows it."""
    gateway = gateway_factory(route_prefix="/sso", public_paths=("/login", "/logout", "/_gateway/"))
    for path in ("/login", "/logout", "/_gateway/callback"):
        upstream_app.paths_seen.clear()
        httpx.get(gateway.url + path)
        assert list(upstream_app.paths_seen) == [path]  # the app answered, not the gateway


def test_a_sign_in_under_a_prefix_comes_back_to_the_prefixed_callback(
        gateway_factory: GatewayFactory, provider: UvicornThread) -> None:
    gateway = gateway_factory(route_prefix="/sso")
    with httpx.Client(timeout=15, follow_redirects=True) as client:
        page = client.get(gateway.url + "/sso/login", params={"next": "/echo"})
        consent_page = follow_autopost(client, submit(client, page, {"identifier": f"{provider.url}/id/alice"}))
        started = consent_page.history[0]
        state_cookies = [c for c in started.headers.get_list("set-cookie") if c.startswith("gw_state_")]
        assert state_cookies and all("Path=/sso/callback" in c for c in state_cookies)
        final = consent(client, consent_page, "alice")
        assert "/sso/callback" in {r.url.path for r in final.history}
        assert final.status_code == 200 and final.url.path == "/echo", final.text[:300]


def test_the_prefix_is_checked_at_start_up() -> None:
    try:
        load_settings(None, {"GATEWAY_DEV_MODE": "true", "GATEWAY_ROUTE_PREFIX": "sso/"})
    except Exception as exc:  # ConfigError: one line that says what to fix
        assert "route_prefix must be empty or a path such as /sso" in str(exc)
    else:
        raise AssertionError("a route_prefix without a leading / was accepted")
