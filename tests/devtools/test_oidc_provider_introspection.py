"""The development OpenID Connect provider's opaque access tokens, introspection (RFC 7662) and revocation (RFC 7009).

Driven over real HTTP as a resource server would: the client authenticates with its secret,
an active token is described (who, for which audience, until when, and how the person signed
in), and anything unknown, expired or revoked is ``{"active": false}`` and nothing more.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from devtools.oidc_provider.misbehaviour import WRONG_AUDIENCE, WRONG_ISSUER
from devtools.stack import PROJECT_ROOT
from tests.devtools.oidc_relying_party import (
    CLIENT_ID,
    OP,
    OTHER_CLIENT_ID,
    SECRET,
    Flow,
    answer,
    authorize,
    decide,
    exchange,
    serve_provider,
)
from tests.servers import Process, free_port

AUDIENCE = "https://api.example"


@pytest.fixture(scope="module")
def op() -> Iterator[OP]:
    """JWT access tokens for AUDIENCE from the code flow (introspectable too); opaque ones minted on demand."""
    with serve_provider(access_token_audience=AUDIENCE) as provider:
        yield provider


@pytest.fixture(autouse=True)
def behaves(op: OP) -> Iterator[None]:
    yield
    op.misbehave("none")


def mint(op: OP, username: str = "alice", **extra: object) -> str:
    body = {"username": username, "groups": ["staff"], "opaque": True, **extra}
    return str(op.http.post(f"{op.url}/_dev/access-token", json=body).json()["access_token"])


def introspect(op: OP, token: str, auth: tuple[str, str] = (CLIENT_ID, SECRET)) -> httpx.Response:
    return op.http.post(f"{op.url}/introspect", data={"token": token, "token_type_hint": "access_token"}, auth=auth)


def test_discovery_announces_introspection_and_revocation(op: OP) -> None:
    document = op.discovery()
    assert document["introspection_endpoint"] == f"{op.url}/introspect"
    assert document["revocation_endpoint"] == f"{op.url}/revoke"
    assert "client_secret_basic" in document["introspection_endpoint_auth_methods_supported"]


def test_an_opaque_token_is_described_to_an_authenticated_client(op: OP) -> None:
    before = int(time.time())
    token = mint(op, acr="urn:openid-gateway:dev:acr:mfa")
    assert token.count(".") == 0
    described = introspect(op, token)
    assert described.status_code == 200 and described.headers["cache-control"] == "no-store"
    claims = described.json()
    assert claims["active"] is True and claims["iss"] == op.url and claims["aud"] == AUDIENCE
    assert claims["client_id"] == CLIENT_ID and claims["token_type"] == "Bearer"
    assert claims["exp"] > claims["iat"] >= before and claims["scope"] == "openid profile email"
    assert claims["username"] == claims["preferred_username"] == "alice" and claims["groups"] == ["staff"]
    assert claims["acr"] == "urn:openid-gateway:dev:acr:mfa" and claims["amr"] == ["pwd", "otp"]
    assert claims["sub"] == op.http.post(f"{op.url}/_dev/access-token", json={"username": "alice"}).json()["sub"]


def test_the_code_flow_and_client_credentials_tokens_are_introspectable(op: OP) -> None:
    with httpx.Client(trust_env=False, follow_redirects=False, timeout=10) as browser:
        flow = Flow()
        code = answer(decide(browser, authorize(op, browser, flow)))["code"]
    from_code = exchange(op, flow, code).json()["access_token"]
    assert introspect(op, from_code).json()["auth_time"] > 0
    own = op.http.post(f"{op.url}/token", data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, SECRET))
    claims = introspect(op, own.json()["access_token"]).json()
    assert claims["active"] is True and claims["sub"] == CLIENT_ID and "auth_time" not in claims


@pytest.mark.parametrize("token", ["", "never-issued", "a" * 43])
def test_an_unknown_token_is_inactive_and_nothing_more(op: OP, token: str) -> None:
    assert introspect(op, token).json() == {"active": False}


def test_introspection_needs_the_clients_secret(op: OP) -> None:
    token = mint(op)
    refused = introspect(op, token, (CLIENT_ID, "wrong"))
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert "active" not in refused.json()


def test_a_revoked_token_is_inactive(op: OP) -> None:
    token = mint(op)
    assert op.http.post(f"{op.url}/revoke", data={"token": token}, auth=(CLIENT_ID, SECRET)).status_code == 200
    assert introspect(op, token).json() == {"active": False}
    assert op.http.post(f"{op.url}/revoke", data={"token": token}, auth=(CLIENT_ID, SECRET)).status_code == 200


def test_only_the_client_a_token_was_issued_to_revokes_it(op: OP) -> None:
    token = mint(op)
    refused = op.http.post(f"{op.url}/revoke", data={"token": token}, auth=(OTHER_CLIENT_ID, "other-secret"))
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"
    assert introspect(op, token).json()["active"] is True


@pytest.mark.parametrize(("mode", "claim", "wrong"), [("wrong-aud", "aud", WRONG_AUDIENCE),
                                                      ("wrong-iss", "iss", WRONG_ISSUER)])
def test_misbehaviour_breaks_the_answer_for_a_resource_servers_checks(op: OP, mode: str, claim: str,
                                                                      wrong: str) -> None:
    token = mint(op)
    op.misbehave(mode)
    assert introspect(op, token).json()[claim] == wrong


def test_expired_misbehaviour_says_active_with_a_past_exp(op: OP) -> None:
    token = mint(op)
    op.misbehave("expired")
    claims = introspect(op, token).json()
    assert claims["active"] is True and claims["exp"] < time.time()


def test_opaque_access_tokens_switch_makes_the_code_flow_tokens_opaque() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "devtools.oidc_provider", "--port", str(port), "--base-url", url,
               "--gateway-url", "http://127.0.0.1:9", "--access-token-audience", AUDIENCE, "--opaque-access-tokens",
               "--log-level", "warning"]
    process = Process(command, cwd=str(PROJECT_ROOT)).start(wait_port=port)
    try:
        token = httpx.post(f"{url}/token", data={"grant_type": "client_credentials"}, auth=("gateway", "dev-secret"),
                           trust_env=False).json()["access_token"]
        described = httpx.post(f"{url}/introspect", data={"token": token}, auth=("gateway", "dev-secret"),
                               trust_env=False).json()
    finally:
        process.close()
    assert "." not in token and described["active"] is True and described["aud"] == AUDIENCE
