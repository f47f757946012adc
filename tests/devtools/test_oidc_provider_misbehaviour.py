"""The development OpenID Connect provider's switchable misbehaviour: each mode breaks what it says.

These tests check the *provider*: that a careful relying party (joserfc's JWT validation
in tests/devtools/oidc_relying_party.py) refuses each broken token for the reason the
mode names, so the gateway's own tests can rely on the modes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    DecodeError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import RSAKey

from devtools.oidc_provider import MODES
from tests.devtools.oidc_relying_party import (
    OP,
    Flow,
    exchange,
    serve_provider,
    sign_in,
    verify_id_token,
    verify_logout_token,
)


@pytest.fixture(scope="module")
def op() -> Iterator[OP]:
    with serve_provider() as provider:
        yield provider


@pytest.fixture(autouse=True)
def behaves(op: OP) -> Iterator[None]:
    yield
    op.misbehave("none")


def tokens_while(op: OP, mode: str) -> tuple[Flow, dict[str, str], dict[str, str]]:
    """Sign in and exchange the code with ``mode`` on: the flow, the authorization response, the token response."""
    op.misbehave(mode)
    with httpx.Client(trust_env=False) as person:
        flow, params = sign_in(op, person)
    response = exchange(op, flow, params["code"])
    assert response.status_code == 200, response.text
    return flow, params, response.json()


def parts(token: str) -> tuple[dict[str, object], dict[str, object]]:
    def decode(part: str) -> dict[str, object]:
        return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))
    header, payload, _ = token.split(".")
    return decode(header), decode(payload)


@pytest.mark.parametrize(("mode", "error", "claim"), [
    ("wrong-aud", InvalidClaimError, "aud"),
    ("several-aud-no-azp", MissingClaimError, "azp"),
    ("azp-other", InvalidClaimError, "azp"),
    ("no-exp", MissingClaimError, "exp"),
    ("wrong-iss", InvalidClaimError, "iss"),
    ("wrong-nonce", InvalidClaimError, "nonce"),
    ("no-nonce", MissingClaimError, "nonce"),
    ("expired", ExpiredTokenError, None),
    ("issued-in-future", InvalidClaimError, "iat"),
    ("alg-none", UnsupportedAlgorithmError, None),
    ("unknown-kid", InvalidKeyIdError, None),
    ("hs256-public-key", UnsupportedAlgorithmError, None),
    ("bad-signature", BadSignatureError, None),
])
def test_broken_id_token_is_refused_for_the_reason_the_mode_names(
        op: OP, mode: str, error: type[JoseError], claim: str | None) -> None:
    flow, _params, body = tokens_while(op, mode)
    with pytest.raises(error) as caught:
        verify_id_token(op, body["id_token"], flow)
    if claim is not None:
        assert isinstance(caught.value, InvalidClaimError | MissingClaimError) and caught.value.claim == claim


def test_the_same_flow_without_misbehaviour_verifies(op: OP) -> None:
    flow, _params, body = tokens_while(op, "none")
    verify_id_token(op, body["id_token"], flow)


def test_several_audiences_name_us_and_another_client_with_azp_naming_us(op: OP) -> None:
    flow, _params, body = tokens_while(op, "several-aud")
    claims = verify_id_token(op, body["id_token"], flow)
    assert isinstance(claims["aud"], list) and len(claims["aud"]) == 2 and claims["azp"] == flow.client_id


def test_alg_none_token_is_unsigned(op: OP) -> None:
    _flow, _params, body = tokens_while(op, "alg-none")
    header, _claims = parts(body["id_token"])
    assert header["alg"] == "none" and body["id_token"].endswith(".")


def test_hs256_token_is_keyed_with_the_published_rsa_public_key(op: OP) -> None:
    """What a verifier that trusts the header's alg and uses the key's bytes as an HMAC secret would accept."""
    _flow, _params, body = tokens_while(op, "hs256-public-key")
    header, _claims = parts(body["id_token"])
    assert header["alg"] == "HS256"
    published = op.key_set().get_by_kid(str(header["kid"]))
    assert isinstance(published, RSAKey)
    signing_input, _, signature = body["id_token"].rpartition(".")
    expected = hmac.new(published.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(expected).rstrip(b"=").decode() == signature


def test_unknown_kid_is_not_in_the_jwks(op: OP) -> None:
    _flow, _params, body = tokens_while(op, "unknown-kid")
    kid = parts(body["id_token"])[0]["kid"]
    assert kid not in {key["kid"] for key in op.http.get(f"{op.url}/jwks.json").json()["keys"]}


def test_email_unverified_mode_marks_the_email_unverified_everywhere(op: OP) -> None:
    flow, _params, body = tokens_while(op, "email-unverified")
    assert verify_id_token(op, body["id_token"], flow)["email_verified"] is False
    info = op.http.get(f"{op.url}/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert info["email_verified"] is False


def test_replay_code_mode_accepts_a_code_twice(op: OP) -> None:
    flow, params, _body = tokens_while(op, "replay-code")
    again = exchange(op, flow, params["code"])
    assert again.status_code == 200
    verify_id_token(op, again.json()["id_token"], flow)


def test_no_iss_param_mode_leaves_iss_out_of_the_authorization_response(op: OP) -> None:
    _flow, params, _body = tokens_while(op, "no-iss-param")
    assert "iss" not in params and params["code"]


def test_wrong_iss_param_mode_names_another_issuer(op: OP) -> None:
    _flow, params, _body = tokens_while(op, "wrong-iss-param")
    assert params["iss"] != op.url and params["code"]


def test_wrong_iss_param_also_goes_with_errors(op: OP) -> None:
    op.misbehave("wrong-iss-param")
    with httpx.Client(trust_env=False) as person:
        response = person.get(f"{op.url}/authorize", params=Flow().params(code_challenge_method="plain"))
    assert "iss=https%3A%2F%2Fwrong-issuer.invalid" in response.headers["location"]


@pytest.mark.parametrize(("mode", "error"), [
    ("logout-unsigned", UnsupportedAlgorithmError),
    ("logout-garbage", DecodeError),
    ("logout-nonce", AssertionError),
    ("logout-no-event", AssertionError),
    ("logout-wrong-aud", InvalidClaimError),
    ("logout-jti-not-string", InvalidClaimError),
])
def test_broken_logout_token_is_refused(op: OP, mode: str, error: type[Exception]) -> None:
    _flow, _params, body = tokens_while(op, "none")
    claims = jwt.decode(body["id_token"], op.key_set()).claims
    op.misbehave(mode)
    count = len(op.receiver.tokens)
    op.http.post(f"{op.url}/_dev/backchannel-logout", json={"sid": claims["sid"]})
    [token] = op.receiver.tokens[count:]
    with pytest.raises(error):
        verify_logout_token(op, token)


def test_logout_token_without_misbehaviour_verifies(op: OP) -> None:
    _flow, _params, body = tokens_while(op, "none")
    claims = jwt.decode(body["id_token"], op.key_set()).claims
    count = len(op.receiver.tokens)
    op.http.post(f"{op.url}/_dev/backchannel-logout", json={"sid": claims["sid"]})
    assert verify_logout_token(op, op.receiver.tokens[count])["sid"] == claims["sid"]


def test_every_mode_is_switchable_and_an_unknown_one_is_refused(op: OP) -> None:
    for mode in MODES:
        op.misbehave(mode)
    assert op.http.get(f"{op.url}/_dev/misbehave").json()["mode"] == MODES[-1]
    refused = op.http.post(f"{op.url}/_dev/misbehave", json={"mode": "chaos"})
    assert refused.status_code == 400 and "chaos" in refused.json()["error"]
    assert op.http.post(f"{op.url}/_dev/misbehave", content=b"{").status_code == 400
