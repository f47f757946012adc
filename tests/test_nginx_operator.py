"""The nginx snippets against an operator's mistakes and an app's expectations.

Real processes on loopback (:mod:`devtools.stack`): the development provider,
the echo app of tests/upstream_app.py (it answers with the headers it
received), the gateway and nginx running the project's own nginx.conf and
deploy/nginx/ snippets, sometimes with one deliberate change to nginx.conf,
as an operator might make it.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.processes import free_port
from devtools.stack import (
    MODE1_END,
    MODES,
    NGINX_CONF,
    Mode,
    Ports,
    Stack,
    find_nginx,
    render_nginx_conf,
    write_nginx_prefix,
)
from gateway.proof import ProofVerifier
from tests.signin_steps import sign_in
from tests.stack_fixtures import ECHO_APP, start_stack

pytestmark = pytest.mark.nginx

GATEWAY_LOCATIONS = "        include deploy/nginx/gateway-locations.conf;\n"
GATEWAY_HTTP = "    include deploy/nginx/gateway-http.conf;\n"
PUBLIC_ECHO = "/echo/public/"
# A public location of the echo app, next to nginx.conf's /static/.
PUBLIC_LOCATION = f"location {PUBLIC_ECHO} {{ include deploy/nginx/public.conf; proxy_pass http://app; }}\n        "
# Headers some frameworks take as the request path; nothing may pass them to the app.
PATH_OVERRIDES = [
    ("X-Original-URL", "/admin"), ("X-Rewrite-URL", "/admin"),
    ("X-Original-URI", "/admin"), ("X-Original-Method", "DELETE"),
]


def conf_with_public_echo() -> str:
    text = NGINX_CONF.read_text()
    assert text.count(MODE1_END) == 1
    return text.replace(MODE1_END, PUBLIC_LOCATION + MODE1_END)


def without(line: str) -> str:
    text = NGINX_CONF.read_text()
    assert text.count(line) == 1, line
    return text.replace(line, "")


def nginx_t(tmp_path: Path, template: str) -> subprocess.CompletedProcess[str]:
    ports = Ports(nginx=18080, gateway=19000, app=18000, provider=18001)
    conf = write_nginx_prefix(tmp_path, render_nginx_conf("auth_request", ports, template))
    return subprocess.run([find_nginx(), "-t", "-p", f"{tmp_path}/", "-c", str(conf), "-e", "stderr"],
                          capture_output=True, text=True, timeout=30)


def echo(response: httpx.Response) -> httpx.Headers:
    assert response.status_code == 200, response.text[:500]
    return httpx.Headers(response.json()["headers"])


@pytest.fixture(scope="module", params=MODES, name="site")
def site_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The echo app behind nginx (a public location: /echo/public/), in each mode."""
    yield from start_stack(tmp_path_factory, request.param, ECHO_APP, public_paths=(PUBLIC_ECHO,),
                           nginx_template=conf_with_public_echo())


def signed_in(stack: Stack, username: str) -> httpx.Client:
    browser = httpx.Client(follow_redirects=True, timeout=15)
    sign_in(browser, stack.url, stack.provider_identifier, username)
    client = httpx.Client(timeout=15, cookies=browser.cookies)
    browser.close()
    assert client.cookies.get("gw_session"), f"no session after sign-in\n{stack.logs()}"
    return client


# -- 1. a forgotten include fails closed ---------------------------------------------------------


def test_protect_conf_without_gateway_locations_conf_fails_nginx_t_naming_it(tmp_path: Path) -> None:
    result = nginx_t(tmp_path, without(GATEWAY_LOCATIONS))
    assert result.returncode != 0, "nginx -t accepted protect.conf without gateway-locations.conf"
    assert 'unknown "include_gateway_locations_conf_in_this_server" variable' in result.stderr, result.stderr


def test_public_conf_without_gateway_http_conf_fails_nginx_t_naming_it(tmp_path: Path) -> None:
    result = nginx_t(tmp_path, without(GATEWAY_HTTP))
    assert result.returncode != 0, "nginx -t accepted public.conf without gateway-http.conf"
    # The first variable of gateway-http.conf nginx meets: $gw_hsts in gateway-locations.conf's redirect to
    # the login page (mode 2, without it: $gw_connection_upgrade).
    assert 'unknown "gw_hsts" variable' in result.stderr, result.stderr


def test_a_server_without_gateway_locations_never_lets_the_app_answer_the_auth_check(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """gateway-locations.conf in one server block, protect.conf in another: nginx -t cannot tell.

    There, nginx would send the auth check through ``location /`` to the app;
    this app answers 200 to every path (proxy_pass with a URI part maps all to
    /echo/...), which would count as "signed in". Every request is refused instead.
    """
    port = free_port()
    second = (f"    server {{\n        listen 127.0.0.1:{port};\n"
              "        location / { include deploy/nginx/protect.conf; proxy_pass http://app/echo/; }\n"
              "        location /static/ { include deploy/nginx/public.conf; proxy_pass http://app/echo/; }\n"
              "    }\n}\n")
    text = NGINX_CONF.read_text().rstrip()
    assert text.endswith("}")
    template = text[:-1] + second
    stack_iter = start_stack(tmp_path_factory, "auth_request", ECHO_APP, nginx_template=template)
    stack = next(stack_iter)
    try:
        token = secrets.token_hex(8)
        for path in (f"/secret-{token}", f"/static/secret-{token}"):
            response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=15)
            assert response.status_code == 503, (path, response.status_code, response.text[:300])
            assert token not in response.text
        # The app was never asked: neither the auth check nor the page reached it.
        assert token not in stack.log("app", tail=None), stack.log("app")
        assert "/echo/_gateway/auth" not in stack.log("app", tail=None)
    finally:
        next(stack_iter, None)


# -- 2. the app never receives the gateway's cookies ----------------------------------------------


GATEWAY_COOKIE_COPIES = "gw_csrf=c; gw_state_abc=s; __Host-gw_session=h; gw_remember=r; __Secure-gw_state_x=y"


def cookie_header(session: str) -> str:
    return f"app_a=1; gw_session={session}; {GATEWAY_COOKIE_COPIES}; app_b=two; xgw_session=kept"


def test_the_app_sees_its_own_cookies_and_none_of_the_gateways(site: Stack) -> None:
    with signed_in(site, "carol") as carol:
        session = carol.cookies["gw_session"]
    cookies = cookie_header(session)
    for path in ("/echo/private", PUBLIC_ECHO + "page"):
        received = echo(httpx.get(site.url + path, headers={"Cookie": cookies}, timeout=15))
        assert received.get_list("cookie") == ["app_a=1; app_b=two; xgw_session=kept"], (path, received)
    # Only gateway cookies: no Cookie header at all.
    received = echo(httpx.get(site.url + "/echo/private", headers={"Cookie": f"gw_session={session}"}, timeout=15))
    assert "cookie" not in received
    received = echo(httpx.get(site.url + PUBLIC_ECHO, headers={"Cookie": GATEWAY_COOKIE_COPIES}, timeout=15))
    assert "cookie" not in received


def test_a_public_path_drops_every_cookie_rather_than_pass_a_gateway_cookie(site: Stack) -> None:
    """More gateway cookies than nginx's maps remove one by one: the app gets none at all."""
    many = "; ".join(f"gw_state_{i}=v{i}" for i in range(10))
    received = echo(httpx.get(site.url + PUBLIC_ECHO, headers={"Cookie": f"app=1; {many}; app2=2"}, timeout=15))
    if site.mode == "auth_request":  # nginx's maps remove eight
        assert "cookie" not in received, received
    else:  # the gateway removes them all
        assert received.get_list("cookie") == ["app=1; app2=2"]


def test_pass_gateway_cookies_keeps_them_for_the_app_that_wants_them(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    stack_iter = start_stack(tmp_path_factory, "auth_request", ECHO_APP, {"GATEWAY_PASS_GATEWAY_COOKIES": "true"})
    stack = next(stack_iter)
    try:
        with signed_in(stack, "gina") as gina:
            session = gina.cookies["gw_session"]
        cookies = cookie_header(session)
        received = echo(httpx.get(stack.url + "/echo/private", headers={"Cookie": cookies}, timeout=15))
        assert received.get_list("cookie") == [cookies]
    finally:
        next(stack_iter, None)


# -- 3. Host with its port; 4. no path override headers --------------------------------------------


def test_the_app_gets_the_host_with_its_port_and_a_proof_bound_to_it(site: Stack) -> None:
    host = f"127.0.0.1:{site.ports.nginx}"
    with signed_in(site, "dave") as dave:
        protected = dave.get(site.url + "/echo/here?x=1")
    received = echo(protected)
    assert received.get_list("host") == [host]
    assert received["x-forwarded-host"] == host
    assert received["x-forwarded-port"] == str(site.ports.nginx)
    body = protected.json()
    uri = body["raw_path"] + "?" + body["query_string"]
    assert ProofVerifier(site.proof_key).verify(received, "GET", host, uri) is not None
    public = echo(httpx.get(site.url + PUBLIC_ECHO, timeout=15))
    assert public.get_list("host") == [host] and public["x-forwarded-host"] == host


def test_path_override_headers_never_reach_the_app(site: Stack) -> None:
    with signed_in(site, "erin") as erin:
        protected = echo(erin.get(site.url + "/echo/x", headers=PATH_OVERRIDES))
    public = echo(httpx.get(site.url + PUBLIC_ECHO, headers=PATH_OVERRIDES, timeout=15))
    for received in (protected, public):
        for name, _ in PATH_OVERRIDES:
            assert name.lower() not in received, (name, received)


# -- 6. uploads ----------------------------------------------------------------------------------


def test_uploads_up_to_the_documented_client_max_body_size_pass(site: Stack) -> None:
    with signed_in(site, "frank") as frank:
        body = b"u" * (5 * 1024 * 1024)
        upload = frank.post(site.url + "/upload", content=body)
        assert upload.status_code == 200 and upload.json()["bytes"] == len(body), upload.text[:300]
        too_big = frank.post(site.url + "/upload", content=b"u" * (11 * 1024 * 1024))
        assert too_big.status_code == 413


# -- 5. the gateway stopped ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_sign_in_pages_show_the_unavailable_page_while_the_gateway_is_down(
    tmp_path_factory: pytest.TempPathFactory, mode: Mode,
) -> None:
    stack_iter = start_stack(tmp_path_factory, mode, ECHO_APP)
    stack = next(stack_iter)
    try:
        stack.processes["gateway"].close()
        for path in ("/login", "/login?next=%2Fx", "/logout", "/_gateway/static/gateway.css", "/echo/x"):
            response = httpx.get(stack.url + path, timeout=15)
            assert response.status_code == 503, (path, response.status_code, response.text[:300])
            assert "Temporarily unavailable" in response.text, path
            assert response.headers["cache-control"] == "no-store"
            assert response.headers["retry-after"] == "10"
        form = httpx.post(stack.url + "/login", data={"identifier": "x"}, timeout=15)
        assert form.status_code == 503 and "Temporarily unavailable" in form.text
    finally:
        next(stack_iter, None)
