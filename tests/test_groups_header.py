"""The groups header (``X-Gateway-Groups``) through nginx, in both modes: a client's copy never reaches the app.

Mode 1: protect.conf sets the header from the auth check's answer (replacing
the client's), public.conf clears it. Mode 2: the gateway's proxy drops every
client-sent identity header, the groups header included, before adding its own.
The echo app (tests/upstream_app.py) shows what arrived.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from devtools.stack import MODES, NGINX_CONF, Stack
from gateway.proof import ProofVerifier
from tests.signin_steps import sign_in
from tests.stack_fixtures import ECHO_APP, start_stack

pytestmark = pytest.mark.nginx

FORGED_GROUPS = [
    ("X-Gateway-Groups", "admins"),
    ("x-gateway-groups", "root"),
    ("X-GATEWAY-GROUPS", "admins,root"),
    ("X_Gateway_Groups", "admins"),
]
FORGED_IDENTITY = [("X-Gateway-User", "https://evil.example/id/mallory"), ("X-Gateway-Proof", "v2.1.forged")]
PUBLIC = "/echo/public/"


def nginx_template_with_a_public_echo() -> str:
    """The checked-in nginx.conf plus, in its mode 1 block, a public location for ``PUBLIC`` (as README shows)."""
    text = NGINX_CONF.read_text()
    anchor = "        location /static/ {"
    assert text.count(anchor) == 1
    location = (f"        location {PUBLIC} {{\n            include deploy/nginx/public.conf;\n"
                "            proxy_pass http://app;\n        }\n")
    return text.replace(anchor, location + anchor)


@pytest.fixture(scope="module", params=MODES, name="stack")
def stack_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The echo app behind nginx and the gateway, with ``PUBLIC`` public in both modes."""
    env = {"GATEWAY_PUBLIC_PATHS": json.dumps(["/static/", PUBLIC])}
    yield from start_stack(tmp_path_factory, request.param, ECHO_APP, env,
                           nginx_template=nginx_template_with_a_public_echo())


@pytest.fixture(scope="module", name="bob")
def bob_fixture(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        sign_in(browser, stack.url, stack.provider_identifier, "bob")
        yield browser


def received(response: httpx.Response) -> list[tuple[str, str]]:
    """The headers the echo app received, names lower-cased."""
    assert response.status_code == 200, response.text[:500]
    return [(name.lower(), value) for name, value in response.json()["headers"]]


def test_signed_in_client_cannot_add_groups(stack: Stack, bob: httpx.Client) -> None:
    uri = "/echo/groups?x=1"
    headers = received(bob.get(stack.url + uri, headers=FORGED_GROUPS))
    groups = [value for name, value in headers if name == "x-gateway-groups"]
    assert groups in ([], [""]), headers  # bob is in no group: the gateway's value is empty or absent
    assert not [name for name, _ in headers if "_" in name]
    identity = ProofVerifier(stack.proof_key).verify(httpx.Headers(headers), "GET", dict(headers)["host"], uri)
    assert identity is not None
    assert (identity.user_id, identity.groups) == (stack.provider_url + "/id/bob", ())


@pytest.mark.parametrize("signed_in", [False, True])
def test_public_path_gets_no_groups_header(stack: Stack, bob: httpx.Client, signed_in: bool) -> None:
    forged = FORGED_GROUPS + FORGED_IDENTITY
    if signed_in:
        headers = received(bob.get(stack.url + PUBLIC + "page", headers=forged))
    else:
        with httpx.Client(timeout=15) as anonymous:
            headers = received(anonymous.get(stack.url + PUBLIC + "page", headers=forged))
    assert not [name for name, _ in headers if name.startswith(("x-gateway", "x_gateway"))], headers
