"""The development providers' side of the OpenID 2.0 → OpenID Connect migration, and the bare-ID-token modes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devtools.openid_provider import create_app as create_openid2_provider
from tests.devtools.oidc_relying_party import (
    OP,
    Flow,
    answer,
    authorize,
    decide,
    exchange,
    serve_provider,
    verify_id_token,
)
from tests.servers import UvicornThread

OPENID2 = "http://127.0.0.1:8001"


@pytest.fixture(scope="module")
def op() -> Iterator[OP]:
    with serve_provider() as provider:
        yield provider


@pytest.fixture(autouse=True)
def behaves(op: OP) -> Iterator[None]:
    yield
    op.misbehave("none")
    op.http.post(f"{op.url}/_dev/openid2", json={"provider": None})


def id_token_claims(op: OP, **fields: str) -> dict[str, object]:
    flow = Flow()
    with httpx.Client(trust_env=False) as person:
        page = authorize(op, person, flow, openid2_realm="http://rp.example/")
        params = answer(decide(person, page, **fields))
    return verify_id_token(op, exchange(op, flow, params["code"]).json()["id_token"], flow)


def test_an_empty_openid2_id_field_means_the_user_names_identifier_at_the_paired_openid2_provider(op: OP) -> None:
    assert op.http.post(f"{op.url}/_dev/openid2", json={"provider": OPENID2 + "/"}).json()["provider"] == OPENID2
    assert id_token_claims(op, username="bo")["openid2_id"] == f"{OPENID2}/id/bo"
    assert id_token_claims(op, username="bo", openid2_id="http://other.example/id/x")["openid2_id"] \
        == "http://other.example/id/x"  # what the person types wins


def test_without_a_paired_provider_an_empty_field_sends_no_openid2_id(op: OP) -> None:
    assert "openid2_id" not in id_token_claims(op, username="bo")


def test_the_openid2_switch_takes_only_http_urls(op: OP) -> None:
    assert op.http.post(f"{op.url}/_dev/openid2", json={"provider": "javascript:x"}).status_code == 400


def test_misbehaviour_openid2_id_not_url(op: OP) -> None:
    op.misbehave("openid2-id-not-url")
    assert id_token_claims(op, username="bo", openid2_id="http://x.example/id/bo")["openid2_id"] == "not a URL: bo"


@pytest.mark.parametrize("mode", ["claims-in-userinfo-only", "userinfo-wrong-sub"])
def test_bare_id_token_modes_move_the_claims_to_userinfo(op: OP, mode: str) -> None:
    op.misbehave(mode)
    flow = Flow()
    with httpx.Client(trust_env=False) as person:
        params = answer(decide(person, authorize(op, person, flow)))
    tokens = exchange(op, flow, params["code"]).json()
    claims = verify_id_token(op, tokens["id_token"], flow)
    assert "email" not in claims and "preferred_username" not in claims and "groups" not in claims
    userinfo = op.http.get(f"{op.url}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()
    assert userinfo["email"] == "alice@example.test" and userinfo["preferred_username"] == "alice"
    assert (userinfo["sub"] == claims["sub"]) == (mode == "claims-in-userinfo-only")


def test_openid2_identifiers_name_the_oidc_issuer_as_json_when_paired() -> None:
    with UvicornThread(create_openid2_provider(oidc_issuer="https://op.example")) as paired, \
            UvicornThread(create_openid2_provider()) as unpaired, httpx.Client(trust_env=False) as http:
        json_accept = {"Accept": "application/json"}
        assert http.get(f"{paired.url}/id/bo", headers=json_accept).json() == {"iss": "https://op.example"}
        assert "openid2.provider" in http.get(f"{paired.url}/id/bo").text  # browsers and discovery: unchanged
        assert "openid2.provider" in http.get(f"{unpaired.url}/id/bo", headers=json_accept).text
