"""The Caddy recipe (deploy/caddy/Caddyfile) with a real Caddy in front of a real gateway and the echo app.

Caddy's ``forward_auth`` asks ``/_gateway/auth`` with ``X-Forwarded-*``
headers and passes any non-2xx answer straight to the browser
(gateway.front.forward_auth). The recipe is used as it is, imported by a test
Caddyfile that only adds the global options a test needs (no admin API, no
automatic HTTPS) and sets the three addresses through the environment.

A missing ``caddy`` is an error, never a skip (``make system-deps`` installs it).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.datastructures import Secret

from devtools.oidc_provider import Client, create_app
from gateway.gate.access import parse_rule
from gateway.proof import ProofVerifier
from gateway.signin.provider import Provider
from tests.cli.test_serve_socket import serve, wait_healthy
from tests.conftest import PROOF_KEY, GatewayFactory, RunningGateway
from tests.servers import Process, UvicornThread, free_port
from tests.signin_steps import sign_in

ROOT = Path(__file__).parents[1]
RECIPE = ROOT / "deploy" / "caddy" / "Caddyfile"
MFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"  # PAPE's: an OpenID 2.0 provider's acr
RULES = (
    parse_rule(0, {"name": "open", "paths": ["/echo/public"], "policy": "public"}),
    parse_rule(1, {"name": "admins-only", "paths": ["/echo/admin"], "policy": "deny"}),
    parse_rule(2, {"name": "multi-factor", "paths": ["/echo/mfa"], "policy": "signed_in", "acr_values": [MFA]}),
)
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
METHOD_OVERRIDES = {"X-HTTP-Method-Override": "DELETE", "X-HTTP-Method": "DELETE", "X-Method-Override": "DELETE"}
FORGED = {"X-Gateway-User": "https://evil.example/id/mallory", "X-Gateway-Email": "mallory@evil.example",
          "X-Gateway-Proof": "v2.1.forged", "X-Gateway-Groups": "admins", "X-Gateway-Auth-Time": "9999999999",
          "X-Gateway-Acr": MFA}


@dataclass
class CaddyStack:
    url: str
    gateway: RunningGateway
    provider: UvicornThread


def caddy_binary() -> str:
    found = shutil.which("caddy")
    assert found, "caddy is missing: apt-get install caddy (make system-deps)"
    return found


@contextlib.contextmanager
def caddy(port: int, gateway: str, upstream: UvicornThread, tmp_path: Path, route_prefix: str | None = None
          ) -> Iterator[Process]:
    """Caddy with the recipe on ``port``: the gateway at ``gateway`` (``host:port``, ``unix//path``), the echo app."""
    config = tmp_path / f"Caddyfile-{port}"
    config.write_text(f"{{\n\tadmin off\n\tauto_https off\n}}\nimport {RECIPE}\n")
    env = {"SITE_ADDRESS": f"http://127.0.0.1:{port}", "GATEWAY": gateway,
           **({"GATEWAY_ROUTE_PREFIX": route_prefix} if route_prefix is not None else {}),
           "APP": upstream.url.removeprefix("http://"), "HOME": str(tmp_path),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    process = Process([caddy_binary(), "run", "--config", str(config), "--adapter", "caddyfile"], env=env,
                      log_path=tmp_path / f"caddy-{port}.log", name="caddy")
    process.start(wait_port=port)
    try:
        yield process
    finally:
        process.stop()


@contextlib.contextmanager
def caddy_in_front(gateway_factory: GatewayFactory, upstream: UvicornThread, provider: UvicornThread,
                   tmp_path: Path, **settings: Any) -> Iterator[CaddyStack]:
    """Caddy with the recipe on a free port, in front of a new mode-1 gateway (``settings``) and the echo app."""
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    gateway = gateway_factory(mode="auth_request", public_url=site, rules=RULES, **settings)
    with caddy(port, gateway.url.removeprefix("http://"), upstream, tmp_path, settings.get("route_prefix")):
        yield CaddyStack(site, gateway, provider)


@pytest.fixture(name="caddy")
def caddy_fixture(gateway_factory: GatewayFactory, upstream: UvicornThread, provider: UvicornThread,
                  tmp_path: Path) -> Iterator[CaddyStack]:
    with caddy_in_front(gateway_factory, upstream, provider, tmp_path) as stack:
        yield stack


def echoed(response: httpx.Response) -> dict[str, list[str]]:
    assert response.status_code == 200 and response.url.path.startswith("/echo"), (response.url, response.text[:300])
    headers: dict[str, list[str]] = {}
    for name, value in response.json()["headers"]:
        headers.setdefault(name, []).append(value)
    return headers


def test_sign_in_through_caddy_lands_on_next_with_a_proven_identity(caddy: CaddyStack) -> None:
    identifier = f"{caddy.provider.url}/id/erin"
    with httpx.Client(timeout=15) as anonymous:
        asked = anonymous.get(caddy.url + "/echo/deep?q=1", headers={"Accept": "text/html"})
        assert asked.status_code == 302
        login = urlsplit(asked.headers["location"])
        assert f"{login.scheme}://{login.netloc}" == caddy.url and login.path == "/login"
        assert parse_qs(login.query)["next"] == ["/echo/deep?q=1"]
        api = anonymous.get(caddy.url + "/echo/deep", headers={"Accept": "application/json"})
        assert api.status_code == 401 and api.headers["content-type"].startswith("application/json")

    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        landed = sign_in(browser, caddy.url, identifier, "erin", next_target="/echo/deep?q=1")
        assert landed.url.path == "/echo/deep" and landed.url.query == b"q=1"
        headers = echoed(landed)
        assert headers["x-gateway-user"] == [identifier]
        assert ProofVerifier(PROOF_KEY).verify(httpx.Headers({k: v[0] for k, v in headers.items()}), "GET",
                                               urlsplit(caddy.url).netloc, "/echo/deep?q=1") is not None
        assert "gw_session" not in " ".join(headers.get("cookie", []))  # the app never sees the session cookie
        assert len(headers.get("x-request-id", [])) == 1
        browser.cookies.set("theme", "dark", domain="127.0.0.1")
        assert echoed(browser.get(caddy.url + "/echo/page"))["cookie"] == ["theme=dark"]  # the app's own, only

        forbidden = browser.get(caddy.url + "/echo/admin")
        assert forbidden.status_code == 403 and "<html" in forbidden.text.lower()

        browser.get(caddy.url + "/logout", headers=SAME_ORIGIN)
        after = browser.get(caddy.url + "/echo/deep")
        assert after.url.path == "/login"


def test_forged_identity_headers_never_reach_the_app(caddy: CaddyStack) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        public = echoed(browser.get(caddy.url + "/echo/public", headers={**FORGED, **METHOD_OVERRIDES}))
        assert not {"x-gateway-user", "x-gateway-email", "x-gateway-proof", "x-gateway-groups", "x-gateway-auth-time",
                    "x-gateway-acr"} & public.keys(), public
        assert not {name.lower() for name in METHOD_OVERRIDES} & public.keys(), public
        sign_in(browser, caddy.url, f"{caddy.provider.url}/id/erin", "erin")
        signed = echoed(browser.get(caddy.url + "/echo/page", headers=FORGED))
        assert signed["x-gateway-user"] == [f"{caddy.provider.url}/id/erin"]
        assert "x-gateway-groups" not in signed or signed["x-gateway-groups"] != ["admins"]
        assert signed["x-gateway-proof"] != ["v2.1.forged"]
        assert signed["x-gateway-auth-time"] != ["9999999999"] and signed.get("x-gateway-acr") != [MFA]


def test_a_step_up_through_caddy_goes_back_to_the_provider_asking_through_pape(caddy: CaddyStack) -> None:
    """Forward auth only translates the verdict: a session short of a rule is sent to the login page with what
    the rule asks, and from there straight to the session's provider (no chooser)."""
    identifier = f"{caddy.provider.url}/id/erin"
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        sign_in(browser, caddy.url, identifier, "erin")
        asked = browser.get(caddy.url + "/echo/mfa/x", headers={"Accept": "text/html"}, follow_redirects=False)
        assert asked.status_code == 302, (asked.status_code, asked.headers)
        login = urlsplit(asked.headers["location"])
        assert login.path == "/login" and parse_qs(login.query) == {"next": ["/echo/mfa/x"], "acr_values": [MFA]}
        onward = browser.get(asked.headers["location"], follow_redirects=False)
        assert onward.status_code in (200, 302, 303), onward.status_code
        request = onward.headers.get("location", "") + onward.text
        assert caddy.provider.url in request and "preferred_auth_policies" in request, request[:500]


def test_the_auth_check_is_not_reachable_through_caddy(caddy: CaddyStack) -> None:
    """A browser asking /_gateway/auth itself (and naming its own X-Forwarded-Uri) gets a 404, as through nginx."""
    with httpx.Client(timeout=15) as client:
        for path in ("/_gateway/auth", "/_gateway/auth/x"):
            response = client.get(caddy.url + path, headers={"X-Forwarded-Uri": "/echo/admin"})
            assert response.status_code == 404


def test_an_auth_request_from_an_untrusted_address_is_refused_not_judged_as_the_root(
        gateway_factory: GatewayFactory, caplog: pytest.LogCaptureFixture) -> None:
    """A client that is not a trusted proxy cannot choose the request it is judged for, nor get "/" judged instead."""
    gateway = gateway_factory(mode="auth_request", rules=RULES, trusted_proxies=("10.9.0.0/16",))
    with caplog.at_level(logging.WARNING, logger="gateway.access"):
        for headers in ({"X-Forwarded-Uri": "/echo/public"}, {}):
            answer = httpx.get(gateway.url + "/_gateway/auth", headers={**headers, "Accept": "text/html"})
            assert answer.status_code == 400, answer.text[:300]
            assert not any(name.startswith("x-gateway-") for name in answer.headers)
    refusals = [r.getMessage() for r in caplog.records if "auth request refused" in r.getMessage()]
    assert len(refusals) == 2 and all("trusted_proxies" in line for line in refusals), refusals


def test_caddy_outside_trusted_proxies_lets_nobody_through(gateway_factory: GatewayFactory, upstream: UvicornThread,
                                                          provider: UvicornThread, tmp_path: Path) -> None:
    """Caddy on a container network while trusted_proxies keeps its default: every request is refused (400).

    Here trusted_proxies names 10.9.0.0/16 only, so Caddy on loopback is the peer outside it. Judged as
    "GET /" instead, every rule would be void: a signed-in person got 200 and identity headers for /echo/admin.
    """
    with caddy_in_front(gateway_factory, upstream, provider, tmp_path, trusted_proxies=("10.9.0.0/16",)) as stack, \
            httpx.Client(follow_redirects=True, timeout=15) as browser:
        sign_in(browser, stack.url, f"{provider.url}/id/erin", "erin")
        assert browser.cookies.get("gw_session")
        for path in ("/echo/admin", "/echo/page", "/echo/public"):
            answer = browser.get(stack.url + path)
            assert answer.status_code == 400, (path, answer.status_code, answer.text[:300])
            assert "x-gateway-user" not in answer.text


def test_a_clients_x_original_uri_cannot_choose_the_decision(caddy: CaddyStack) -> None:
    """nginx's header, sent by a client through Caddy, must not make the gateway judge another path."""
    lie = {"X-Original-URI": "/echo/public", "X-Original-Method": "GET", "Accept": "text/html"}
    with httpx.Client(timeout=15) as anonymous:
        assert anonymous.get(caddy.url + "/echo/page", headers=lie).status_code == 302
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        sign_in(browser, caddy.url, f"{caddy.provider.url}/id/erin", "erin")
        assert browser.get(caddy.url + "/echo/admin", headers=lie).status_code == 403


def test_the_renewed_session_cookie_reaches_the_browser(gateway_factory: GatewayFactory, upstream: UvicornThread,
                                                        provider: UvicornThread, tmp_path: Path) -> None:
    """The idle-timeout renewal (Set-Cookie on the auth check's 200) is passed on by the recipe."""
    with caddy_in_front(gateway_factory, upstream, provider, tmp_path, session_idle_timeout=10) as stack, \
            httpx.Client(follow_redirects=True, timeout=15) as browser:
        sign_in(browser, stack.url, f"{provider.url}/id/erin", "erin")
        deadline = time.monotonic() + 15  # renewed once the cookie is refresh_after (1 s here) old
        renewed = None
        while renewed is None and time.monotonic() < deadline:
            response = browser.get(stack.url + "/echo/page")
            assert response.url.path == "/echo/page"
            renewed = next((v for v in response.headers.get_list("set-cookie") if v.startswith("gw_session=")), None)
            time.sleep(0.1)
        assert renewed is not None and "HttpOnly" in renewed
        assert "x-gateway-refresh" not in echoed(browser.get(stack.url + "/echo/page"))  # never the app's to see


def test_with_a_route_prefix_caddy_sends_the_prefixed_pages_to_the_gateway_and_login_to_the_app(
        gateway_factory: GatewayFactory, upstream: UvicornThread, provider: UvicornThread, tmp_path: Path) -> None:
    with caddy_in_front(gateway_factory, upstream, provider, tmp_path, route_prefix="/sso") as stack, \
            httpx.Client(follow_redirects=True, timeout=15) as browser:
        asked = httpx.get(stack.url + "/login", headers={"Accept": "text/html"}, timeout=15)
        assert asked.status_code == 302  # the app's /login, protected like any of its paths
        assert urlsplit(asked.headers["location"]).path == "/sso/login"
        identifier = f"{stack.provider.url}/id/erin"
        landed = sign_in(browser, stack.url, identifier, "erin", next_target="/echo/deep", login_path="/sso/login")
        assert echoed(landed)["x-gateway-user"] == [identifier]
        assert httpx.get(stack.url + "/sso/auth", timeout=15).status_code == 404


def test_a_providers_bearer_token_passes_caddy_and_a_bad_one_gets_rfc_6750s_answer(
        gateway_factory: GatewayFactory, upstream: UvicornThread, provider: UvicornThread, tmp_path: Path) -> None:
    """The same check as nginx's (gateway.gate.authenticate.check_bearer), said in forward auth's dialect."""
    op_port = free_port()
    op_url = f"http://127.0.0.1:{op_port}"
    audience = "https://api.example.test"
    sso = Provider("SSO", op_url, "oidc", "gateway", Secret("s"), groups_claim="groups",
                   bearer_audiences=(audience,))
    with (UvicornThread(create_app(op_url, [Client("gateway", "s", (f"{op_url}/cb",))],
                                   access_token_audience=audience), port=op_port),
          caddy_in_front(gateway_factory, upstream, provider, tmp_path, providers=(sso,), api_paths=("/echo/api",),
                         allow_private_addresses=True) as caddy,
          httpx.Client(timeout=15) as client):
        minted = client.post(f"{op_url}/_dev/access-token", json={"username": "alice"}).json()
        headers = echoed(client.get(caddy.url + "/echo/api/me",
                                    headers={"Authorization": f"Bearer {minted['access_token']}"}))
        assert headers["x-gateway-user"] == [f"{op_url}#{minted['sub']}"]
        refused = client.get(caddy.url + "/echo/api/me", headers={"Authorization": "Bearer not-a-jwt"})
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
        assert refused.headers["www-authenticate"].startswith('Bearer realm="openid-gateway", error="invalid_token"')


def test_caddy_reaches_a_gateway_on_its_unix_socket(upstream: UvicornThread, tmp_path: Path) -> None:
    """The recipe with GATEWAY=unix//path: forward_auth and the gateway's pages over the socket (Caddy's user in
    uds_group; here both run as the same user)."""
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    socket_dir = Path(tempfile.mkdtemp(prefix="gw-caddy-"))
    sock = socket_dir / "gateway.sock"
    try:
        with serve(sock, tmp_path / "state", GATEWAY_PUBLIC_URL=site) as gateway, \
                caddy(port, f"unix/{sock}", upstream, tmp_path):
            wait_healthy(gateway, sock)
            with httpx.Client(timeout=15) as anonymous:
                asked = anonymous.get(site + "/echo/deep", headers={"Accept": "text/html"})
                assert asked.status_code == 302 and urlsplit(asked.headers["location"]).path == "/login"
                assert anonymous.get(site + "/echo/deep", headers={"Accept": "application/json"}).status_code == 401
                login = anonymous.get(site + "/login")
                assert login.status_code == 200 and "<form" in login.text
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
