"""The microblog believing the gateway's JWT, through nginx in both modes (real processes on loopback).

Mode 1 runs the gateway with ``identity_assertion = "jwt"`` (no HMAC proof
at all), mode 2 with ``"both"``; the microblog has no proof key, only the
JWKS URL (fetched through nginx, as an app elsewhere would) and the issuer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.stack import MODES, Ports, Stack
from gateway.gate.assertion import AssertionSigner
from gateway.gate.signing_keys import generate_key, load_signing_keys, validated, write_key_file
from gateway.paths import JWKS as JWKS_PATH
from gateway.types import Identity
from tests.signin_steps import sign_in
from tests.stack_fixtures import start_stack

pytestmark = pytest.mark.nginx

SETTING = {"auth_request": "jwt", "proxy": "both"}
MALLORY = Identity("https://evil.example/id/mallory", "mallory", "mallory@evil.example")


@pytest.fixture(scope="module", params=MODES)
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    keys = tmp_path_factory.mktemp("keys") / "assertion-keys.json"
    write_key_file(keys, validated([generate_key()]), replace=False)
    ports = Ports.free()
    url = f"http://127.0.0.1:{ports.nginx}"
    yield from start_stack(
        tmp_path_factory, request.param, ports=ports,
        gateway_env={"GATEWAY_IDENTITY_ASSERTION": SETTING[request.param], "GATEWAY_ASSERTION_KEYS_FILE": str(keys)},
        app_env={"MICROBLOG_PROOF_KEY": "", "MICROBLOG_JWKS_URL": url + JWKS_PATH, "MICROBLOG_ISSUER": url},
    )


@pytest.fixture(scope="module")
def alice(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        sign_in(browser, stack.url, stack.provider_identifier, "alice")
        assert browser.cookies.get("gw_session"), stack.logs()
        yield browser


def genuine_token(stack: Stack, identity: Identity, host: str) -> str:
    """A token the stack's own key really signed (as if captured from an app's log): valid for ``host``."""
    path = stack.gateway_environ()["GATEWAY_ASSERTION_KEYS_FILE"]
    return AssertionSigner(load_signing_keys(path), stack.url, "s" * 40).sign(identity, host, "captured")


def test_the_microblog_knows_alice_from_the_jwt(stack: Stack, alice: httpx.Client) -> None:
    response = alice.get(stack.url + "/api/whoami")
    assert response.status_code == 200, stack.logs()
    assert response.json()["user"].endswith("/alice"), response.text


def test_a_client_cannot_bring_its_own_assertion(stack: Stack, alice: httpx.Client) -> None:
    """Alice sends a genuine token for mallory: nginx (mode 1) or the gateway (mode 2) replaces it with hers."""
    host = f"127.0.0.1:{stack.ports.nginx}"
    forged = genuine_token(stack, MALLORY, host)
    for name in ("X-Gateway-Assertion", "x-gateway-assertion", "X-GATEWAY-ASSERTION"):
        response = alice.get(stack.url + "/api/whoami", headers={name: forged})
        assert response.status_code == 200, (name, response.status_code, stack.logs())
        assert response.json()["user"].endswith("/alice"), (name, response.text)


def test_the_app_refuses_a_token_made_for_another_host(stack: Stack) -> None:
    """Straight to the app (no nginx): a genuine token for another site is refused; one for this Host passes."""
    elsewhere = genuine_token(stack, MALLORY, "wiki.example")
    refused = httpx.get(stack.app_url + "/api/whoami", headers={"Host": "blog.example",
                                                                "X-Gateway-Assertion": elsewhere})
    assert refused.status_code == 401
    here = genuine_token(stack, MALLORY, "blog.example")
    accepted = httpx.get(stack.app_url + "/api/whoami", headers={"Host": "blog.example", "X-Gateway-Assertion": here})
    assert accepted.json()["user"] == MALLORY.user_id  # why the app must be reachable through the gateway only


def test_the_jwks_passes_through_nginx_with_its_etag(stack: Stack) -> None:
    response = httpx.get(stack.url + JWKS_PATH)
    assert response.status_code == 200, stack.logs()
    assert response.headers["cache-control"] == "public, max-age=60"
    path = Path(stack.gateway_environ()["GATEWAY_ASSERTION_KEYS_FILE"])
    assert [key["kid"] for key in response.json()["keys"]] == [load_signing_keys(path).current.kid]
    again = httpx.get(stack.url + JWKS_PATH, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
