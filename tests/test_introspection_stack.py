"""Opaque bearer tokens introspected at the local OpenID Connect provider (RFC 7662), through nginx in both modes.

The gateway has ``bearer_introspection`` on the provider (its client credentials, the guarded
fetcher) and remembers an answer ``bearer_introspection_cache`` seconds (1 here, so a revocation
at the provider is seen within the test). The provider mints an opaque token for a user name
(``/_dev/access-token`` ``{"opaque": true}``), revokes it (RFC 7009), and breaks its
introspection answers on demand (``/_dev/misbehave``). Without ``bearer_introspection`` an
opaque token keeps its clear refusal (tests/test_bearer_stack.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from devtools.stack import LOCAL_OIDC_CLIENT, Stack
from tests.stack_fixtures import ECHO_APP, start_stack
from tests.test_bearer_stack import AUDIENCE, GATEWAY_ENV, assert_invalid_token, call, echoed, sub_of

pytestmark = pytest.mark.nginx

CACHE_SECONDS = 1


@pytest.fixture(scope="module", params=["auth_request", "proxy"], name="stack")
def stack_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory, request.param, ECHO_APP, GATEWAY_ENV, bearer_audience=AUDIENCE,
                           bearer_introspection=CACHE_SECONDS)


def opaque(stack: Stack, username: str = "alice", groups: tuple[str, ...] = ()) -> str:
    """An opaque access token for ``username``, as the provider's code flow would hand a client."""
    response = httpx.post(f"{stack.oidc_url}/_dev/access-token", timeout=10,
                          json={"username": username, "groups": list(groups), "opaque": True})
    response.raise_for_status()
    token = str(response.json()["access_token"])
    assert "." not in token
    return token


def misbehave(stack: Stack, mode: str) -> None:
    httpx.post(f"{stack.oidc_url}/_dev/misbehave", json={"mode": mode}, timeout=10).raise_for_status()


def revoke(stack: Stack, token: str) -> None:
    """RFC 7009 revocation at the provider, by the client the token was issued to."""
    httpx.post(f"{stack.oidc_url}/revoke", data={"token": token}, auth=LOCAL_OIDC_CLIENT, timeout=10) \
        .raise_for_status()


def test_an_opaque_token_reaches_the_app_as_its_user_with_its_groups(stack: Stack) -> None:
    token = opaque(stack, "dave", groups=("admins",))
    user, headers = echoed(call(stack, "/echo/admin/report", token), stack)  # a group: rule decides
    assert user == f"{stack.oidc_url}#{sub_of(stack, 'dave')}"  # the same account as dave's browser sign-in
    assert "authorization" not in headers
    assert echoed(call(stack, "/echo/api/again", token), stack)[0] == user


def test_a_token_revoked_at_the_provider_is_refused(stack: Stack) -> None:
    token = opaque(stack)
    revoke(stack, token)
    challenge = assert_invalid_token(call(stack, "/echo/api/me", token), stack)
    assert "not active" in challenge


def test_a_revocation_is_seen_once_the_remembered_answer_is_older_than_the_cache_time(stack: Stack) -> None:
    token = opaque(stack)
    echoed(call(stack, "/echo/api/me", token), stack)
    revoke(stack, token)
    time.sleep(CACHE_SECONDS + 0.5)  # lets the remembered answer age; nothing here measures time
    assert_invalid_token(call(stack, "/echo/api/me", token), stack)


@pytest.mark.parametrize("mode", ["wrong-aud", "wrong-iss", "expired"])
def test_an_answer_for_another_audience_issuer_or_a_past_exp_is_refused(stack: Stack, mode: str) -> None:
    token = opaque(stack)
    misbehave(stack, mode)
    try:
        response = call(stack, "/echo/api/me", token)
    finally:
        misbehave(stack, "none")
    assert "not acceptable" in assert_invalid_token(response, stack)


def test_a_token_of_characters_rfc_6750_does_not_allow_is_never_sent_to_the_provider(stack: Stack) -> None:
    assert "b64token" in assert_invalid_token(call(stack, "/echo/api/me", "not,a;token"), stack)


def test_the_provider_down_is_503_never_a_pass(stack: Stack) -> None:
    token = opaque(stack)
    provider = stack.processes["oidc"]
    provider.close()
    try:
        response = call(stack, "/echo/api/me", token)
    finally:
        provider.start(wait_port=stack.ports.oidc)
    assert response.status_code == 503, (response.status_code, response.headers, stack.logs())
    assert "introspection cannot be reached" in stack.log("gateway")
