"""nginx.conf's TLS blocks and deploy/nginx/tls.conf, served by real nginx with a certificate of a local CA.

The stack uncomments the marked TLS blocks of the checked-in nginx.conf (:func:`devtools.stack.with_tls`),
points them at a CA made here with openssl, and runs the gateway with an https public_url: plain http only
redirects, every answer carries HSTS, and the gateway's cookies are ``__Host-`` cookies.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.stack import Stack, TLSFiles
from tests.front.proxy.test_tls import make_pki
from tests.signin_steps import sign_in
from tests.stack_fixtures import start_stack

pytestmark = pytest.mark.nginx
HSTS = "max-age=63072000"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tls-pki")
    directory.chmod(0o755)  # nginx's workers (unprivileged when run as root) read the certificate
    return make_pki(directory)


@pytest.fixture(scope="module", params=["auth_request", "proxy"], name="stack")
def tls_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pki: Path) -> Iterator[Stack]:
    (pki / "server.key").chmod(0o644)
    yield from start_stack(tmp_path_factory, request.param, tls=TLSFiles(pki / "server.pem", pki / "server.key"))


@pytest.fixture
def verify(pki: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki / "ca.pem"))


def test_plain_http_only_redirects_to_https(stack: Stack) -> None:
    response = httpx.get(f"http://127.0.0.1:{stack.tls_http_port}/about?x=1", headers={"Host": "localhost"},
                         timeout=15)
    assert response.status_code == 301, stack.logs()
    assert response.headers["location"] == "https://localhost/about?x=1"
    assert "set-cookie" not in response.headers


def test_every_https_answer_carries_hsts(stack: Stack, verify: ssl.SSLContext) -> None:
    with httpx.Client(verify=verify, timeout=15) as client:
        redirect = client.get(stack.url + "/about")  # protect.conf / the proxy: to the login page
        login = client.get(stack.url + "/login")
    assert redirect.status_code == 302 and redirect.headers["strict-transport-security"] == HSTS
    assert login.status_code == 200 and login.headers["strict-transport-security"] == HSTS


def test_over_https_the_gateways_cookies_are_host_prefixed_and_secure(stack: Stack, verify: ssl.SSLContext) -> None:
    with httpx.Client(verify=verify, follow_redirects=True, timeout=15) as browser:
        final = sign_in(browser, stack.url, stack.provider_identifier, "alice", next_target="/about")
        assert final.status_code == 200 and final.url.path == "/about", stack.logs()
        set_cookies = [c for r in [*final.history, final] for c in r.headers.get_list("set-cookie")]
        session = [c for c in set_cookies if c.startswith("__Host-gw_session=")]
        assert session, set_cookies
        assert all("Secure" in c and "Path=/" in c and "Domain" not in c for c in session)
        assert not [c for c in set_cookies if c.startswith("gw_session=")]
        page = browser.get(stack.url + "/about")
        assert page.status_code == 200 and page.headers["strict-transport-security"] == HSTS
