"""Bearer tokens from the local OpenID Connect provider, through nginx in both modes (RFC 6750, RFC 9068).

The stack's provider issues RFC 9068 access tokens for ``AUDIENCE`` (its ``/_dev/access-token``
mints one for a user name, as the code flow would; the misbehaviour switch breaks one check at a
time); the gateway accepts that audience from that provider on ``api_paths`` and on a rule with
``bearer = true``. Every refusal is RFC 6750's: 401 (or 403) with ``WWW-Authenticate: Bearer
error=...``, never a redirect, and the app never sees the request.

The same stack shows the provider's groups surviving a browser restart: a remember-me restore
answers a ``group:`` rule as the sign-in did.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from devtools.stack import PROJECT_ROOT, Stack
from gateway.proof import ProofVerifier
from tests.stack_fixtures import ECHO_APP, start_stack
from tests.test_oidc_stack import oidc_sign_in

pytestmark = pytest.mark.nginx

AUDIENCE = "https://api.example.test"
RULES = [{"name": "admin-api", "paths": ["/echo/admin"], "policy": "allow", "subjects": ["group:admins"],
          "bearer": True}]
GATEWAY_ENV = {
    "GATEWAY_API_PATHS": json.dumps(["/echo/api"]),
    "GATEWAY_RULES": json.dumps(RULES),
    "GATEWAY_GROUPS": json.dumps({"admins": ["{provider}/id/nobody-yet"]}),  # the provider's groups add members
}


@pytest.fixture(scope="module", params=["auth_request", "proxy"], name="stack")
def stack_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory, request.param, ECHO_APP, GATEWAY_ENV, bearer_audience=AUDIENCE)


def mint(stack: Stack, username: str = "alice", groups: tuple[str, ...] = (), misbehave: str = "none") -> str:
    """An access token for ``username`` from the provider, broken as ``misbehave`` says."""
    with httpx.Client(base_url=stack.oidc_url, timeout=10) as provider:
        provider.post("/_dev/misbehave", json={"mode": misbehave}).raise_for_status()
        try:
            response = provider.post("/_dev/access-token", json={"username": username, "groups": list(groups)})
            response.raise_for_status()
        finally:
            provider.post("/_dev/misbehave", json={"mode": "none"}).raise_for_status()
    return str(response.json()["access_token"])


def call(stack: Stack, path: str, token: str | None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.get(stack.url + path, headers=headers, follow_redirects=False, timeout=15)


def echoed(response: httpx.Response, stack: Stack) -> tuple[str, httpx.Headers]:
    """The user the app received (its proof checked) and the headers it saw."""
    assert response.status_code == 200, (response.status_code, response.text[:300], stack.logs())
    echo = response.json()
    headers = httpx.Headers([tuple(pair) for pair in echo["headers"]])
    uri = echo["raw_path"] + ("?" + echo["query_string"] if echo["query_string"] else "")
    verified = ProofVerifier(stack.proof_key).verify(headers, echo["method"], headers.get("host", ""), uri)
    assert verified is not None
    return verified.user_id, headers


def sub_of(stack: Stack, username: str) -> str:
    with httpx.Client(base_url=stack.oidc_url, timeout=10) as provider:
        return str(provider.post("/_dev/access-token", json={"username": username}).json()["sub"])


def assert_invalid_token(response: httpx.Response, stack: Stack) -> str:
    """A 401 of RFC 6750 §3.1 (never a redirect to the login page); its error_description."""
    assert response.status_code == 401, (response.status_code, response.headers, stack.logs())
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="openid-gateway", error="invalid_token"'), challenge
    assert response.json()["error"] == "invalid_token"
    return challenge


def test_an_access_token_reaches_the_app_as_its_user_with_a_proof_and_without_the_token(stack: Stack) -> None:
    token = mint(stack, "alice")
    user, headers = echoed(call(stack, "/echo/api/me", token), stack)
    assert user == f"{stack.oidc_url}#{sub_of(stack, 'alice')}"  # the same account as alice's browser sign-in
    assert "authorization" not in headers  # pass_bearer_token is off: the app gets the identity, not the token
    assert echoed(call(stack, "/echo/api/again", token), stack)[0] == user  # remembered: the same answer


@pytest.mark.parametrize("misbehave", ["wrong-iss", "wrong-aud", "expired", "issued-in-future", "alg-none",
                                       "hs256-public-key", "bad-signature", "unknown-kid"])
def test_a_broken_token_is_refused_with_invalid_token(stack: Stack, misbehave: str) -> None:
    assert_invalid_token(call(stack, "/echo/api/me", mint(stack, "alice", misbehave=misbehave)), stack)


def test_an_opaque_token_is_refused_as_not_supported(stack: Stack) -> None:
    challenge = assert_invalid_token(call(stack, "/echo/api/me", "an-opaque-token-0123456789"), stack)
    assert "opaque tokens are not supported" in challenge


def test_a_token_without_the_group_a_rule_needs_gets_insufficient_scope(stack: Stack) -> None:
    refused = call(stack, "/echo/admin/report", mint(stack, "carol"))
    assert refused.status_code == 403, (refused.status_code, refused.headers, stack.logs())
    assert refused.headers["www-authenticate"].startswith('Bearer realm="openid-gateway", error="insufficient_scope"')
    assert refused.json()["error"] == "insufficient_scope"
    assert echoed(call(stack, "/echo/admin/report", mint(stack, "dave", groups=("admins",))), stack)[0].endswith(
        "#" + sub_of(stack, "dave"))


def test_a_path_that_takes_no_tokens_leaves_the_header_to_the_app_and_asks_for_the_cookie(stack: Stack) -> None:
    response = call(stack, "/echo/page", mint(stack, "alice"), Accept="application/json")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Cookie ")  # the cookie's answer, as without a token


def revoke_user(stack: Stack, user: str) -> None:
    """``openid-gateway sessions revoke --user`` on the stack's own store and configuration."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}, **stack.gateway_environ()}
    result = subprocess.run([sys.executable, "-m", "gateway", "sessions", "revoke", "--user", user], env=env,
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_revoking_a_user_refuses_their_tokens_issued_before_and_accepts_later_ones(stack: Stack) -> None:
    before = mint(stack, "erin")
    user = echoed(call(stack, "/echo/api/me", before), stack)[0]
    revoke_user(stack, user)
    deadline = time.monotonic() + 10  # the gateway reads the revocation log every 0.2 s
    while call(stack, "/echo/api/me", before).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    challenge = assert_invalid_token(call(stack, "/echo/api/me", before), stack)
    assert "signed out everywhere" in challenge
    time.sleep(1.1)  # iat is in whole seconds: a token of the next second is issued after the cutoff
    assert echoed(call(stack, "/echo/api/me", mint(stack, "erin")), stack)[0] == user


def test_the_providers_groups_survive_a_browser_restart(stack: Stack) -> None:
    """The remember-me series keeps the groups of the sign-in (the consent page gives alice "staff, admins")."""
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        landed = oidc_sign_in(browser, stack, "/echo/admin/report", remember=True)
        assert landed.url.path == "/echo/admin/report", (landed.url, stack.logs())
        name = next(c.name for c in browser.cookies.jar if c.expires and c.name.endswith("remember"))
        kept = browser.cookies[name]
    with httpx.Client(follow_redirects=True, timeout=15) as restarted:
        restarted.cookies.set(name, kept)
        response = restarted.get(stack.url + "/echo/admin/report")
        assert response.url.path == "/echo/admin/report", (response.url, stack.logs())
        user, headers = echoed(response, stack)
        assert "admins" in headers["x-gateway-groups"].split(",") and user.startswith(stack.oidc_url + "#")
