"""The development OpenID Connect provider's step-up, driven over real HTTP (devtools/stepup.py).

"Stay signed in at this provider" lets a later request skip the form with the original
``auth_time``, ``acr`` and ``amr``; ``prompt=login``, ``max_age`` and ``acr_values`` (or an
essential ``acr`` in ``claims``) bring the form back; the one-time code makes the sign-in
multi-factor; ``--ignore-step-up`` disregards all of it while still telling the truth.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jwt

from devtools.stack import PROJECT_ROOT
from tests.devtools.oidc_relying_party import (
    CLIENT_ID,
    OP,
    OTHER_CLIENT_ID,
    SECRET,
    Flow,
    answer,
    authorize,
    consent_form,
    decide,
    exchange,
    serve_provider,
    verify_id_token,
)
from tests.servers import Process, free_port

PWD = "urn:openid-gateway:dev:acr:pwd"
MFA = "urn:openid-gateway:dev:acr:mfa"
AUDIENCE = "https://api.example"


@pytest.fixture(scope="module")
def op() -> Iterator[OP]:
    with serve_provider(access_token_audience=AUDIENCE) as provider:
        yield provider


@pytest.fixture(scope="module")
def ignoring_op() -> Iterator[OP]:
    """Started as operators and devtools/stack.py start it: ``python -m devtools.oidc_provider --ignore-step-up``."""
    port = free_port()
    op = OP(f"http://127.0.0.1:{port}", receiver=None)  # type: ignore[arg-type]  # no back-channel logout here
    clients = json.dumps([{"client_id": CLIENT_ID, "client_secret": SECRET, "redirect_uris": [op.redirect_uri]}])
    command = [sys.executable, "-m", "devtools.oidc_provider", "--port", str(port), "--base-url", op.url,
               "--clients", clients, "--ignore-step-up", "--log-level", "warning"]
    process = Process(command, cwd=str(PROJECT_ROOT)).start(wait_port=port)
    with op.http:
        yield op
    process.close()


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    """A person's browser: keeps the provider's cookies, follows no redirects."""
    with httpx.Client(trust_env=False, follow_redirects=False, timeout=10) as client:
        yield client


def tokens(op: OP, flow: Flow, response: httpx.Response) -> tuple[dict[str, Any], dict[str, Any]]:
    """The verified ID token's claims and the access token's (unverified: its signature is another test's)."""
    params = answer(response)
    assert params["state"] == flow.state, params
    body = exchange(op, flow, params["code"]).json()
    access = jwt.decode(body["access_token"], op.key_set()).claims if body["access_token"].count(".") == 2 else {}
    return verify_id_token(op, body["id_token"], flow), dict(access)


def sign_in(op: OP, browser: httpx.Client, flow: Flow | None = None, **fields: str | None) -> dict[str, Any]:
    """Through the form; the ID token's claims."""
    flow = flow or Flow()
    page = authorize(op, browser, flow)
    assert page.status_code == 200 and consent_form(page)
    return tokens(op, flow, decide(browser, page, "allow", **fields))[0]


def again(op: OP, browser: httpx.Client, **extra: str) -> tuple[Flow, httpx.Response]:
    flow = Flow()
    return flow, authorize(op, browser, flow, **extra)


def shows_the_form(response: httpx.Response) -> bool:
    return response.status_code == 200 and "token" in consent_form(response)


# Discovery and the claims of a sign-in


def test_discovery_announces_the_two_assurance_levels_and_the_claims_parameter(op: OP) -> None:
    document = op.discovery()
    assert document["acr_values_supported"] == [PWD, MFA]
    assert document["claims_parameter_supported"] is True
    assert {"auth_time", "acr", "amr"} <= set(document["claims_supported"])


def test_the_form_alone_is_the_password_level(op: OP, browser: httpx.Client) -> None:
    before = int(time.time())
    claims = sign_in(op, browser)
    assert claims["acr"] == PWD and claims["amr"] == ["pwd"] and claims["auth_time"] >= before


def test_the_one_time_code_makes_the_sign_in_multi_factor(op: OP, browser: httpx.Client) -> None:
    claims = sign_in(op, browser, otp="123456")
    assert claims["acr"] == MFA and claims["amr"] == ["pwd", "otp"]


def test_a_wrong_one_time_code_is_an_error_on_the_form(op: OP, browser: httpx.Client) -> None:
    flow = Flow()
    page = decide(browser, authorize(op, browser, flow), otp="654321")
    assert page.status_code == 400 and "Wrong one-time code" in page.text
    assert "token" in consent_form(page)  # the form again, to correct the code


def test_access_tokens_of_the_code_flow_say_how_the_person_signed_in(op: OP, browser: httpx.Client) -> None:
    flow = Flow()
    id_claims, access = tokens(op, flow, decide(browser, authorize(op, browser, flow), otp="123456"))
    assert access["aud"] == AUDIENCE
    assert (access["auth_time"], access["acr"], access["amr"]) == (id_claims["auth_time"], MFA, ["pwd", "otp"])


def test_client_credentials_access_tokens_name_no_sign_in(op: OP) -> None:
    body = op.http.post(f"{op.url}/token", data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, SECRET)).json()
    claims = jwt.decode(body["access_token"], op.key_set()).claims
    assert not {"auth_time", "acr", "amr"} & claims.keys()


def test_minted_access_tokens_carry_the_sign_in_they_are_told(op: OP) -> None:
    minted = op.http.post(f"{op.url}/_dev/access-token",
                          json={"username": "alice", "auth_time": 1_700_000_000, "acr": MFA}).json()
    claims = jwt.decode(minted["access_token"], op.key_set()).claims
    assert (claims["auth_time"], claims["acr"], claims["amr"]) == (1_700_000_000, MFA, ["pwd", "otp"])
    refused = op.http.post(f"{op.url}/_dev/access-token", json={"username": "alice", "acr": "urn:other"})
    assert refused.status_code == 400


# Staying signed in


def test_without_stay_signed_in_every_request_shows_the_form(op: OP, browser: httpx.Client) -> None:
    sign_in(op, browser)
    assert not browser.cookies
    assert shows_the_form(again(op, browser)[1])


def test_stay_signed_in_answers_later_requests_with_the_original_sign_in(op: OP, browser: httpx.Client) -> None:
    first = sign_in(op, browser, stay="yes", otp="123456")
    flow, response = again(op, browser)
    assert response.status_code == 303, response.text  # no form
    claims = tokens(op, flow, response)[0]
    assert claims["sid"] == first["sid"] and claims["nonce"] == flow.nonce
    assert (claims["auth_time"], claims["acr"], claims["amr"]) == (first["auth_time"], MFA, ["pwd", "otp"])


def test_stay_signed_in_is_for_the_client_signed_in_to(op: OP, browser: httpx.Client) -> None:
    sign_in(op, browser, stay="yes")
    other = Flow(client_id=OTHER_CLIENT_ID, redirect_uri="http://other.example/callback")
    assert shows_the_form(authorize(op, browser, other))


def test_prompt_none_is_answered_from_the_provider_session_else_login_required(op: OP, browser: httpx.Client) -> None:
    assert answer(again(op, browser, prompt="none")[1])["error"] == "login_required"
    sign_in(op, browser, stay="yes")
    assert "code" in answer(again(op, browser, prompt="none")[1])


def test_prompt_login_asks_again_and_records_a_new_authentication(op: OP, browser: httpx.Client) -> None:
    first = sign_in(op, browser, stay="yes")
    flow, response = again(op, browser, prompt="login")
    assert shows_the_form(response)
    claims = tokens(op, flow, decide(browser, response))[0]
    assert claims["sid"] != first["sid"]


def test_max_age_asks_again_once_the_sign_in_is_older(op: OP, browser: httpx.Client) -> None:
    sign_in(op, browser, stay="yes")
    assert again(op, browser, max_age="3600")[1].status_code == 303
    assert shows_the_form(again(op, browser, max_age="0")[1])  # Core §3.1.2.1: prompt=login
    time.sleep(2.1)  # ages the sign-in past max_age=1; nothing here measures time
    assert shows_the_form(again(op, browser, max_age="1")[1])


@pytest.mark.parametrize("ask", [{"acr_values": MFA},
                                 {"claims": json.dumps({"id_token": {"acr": {"essential": True, "values": [MFA]}}})},
                                 {"claims": json.dumps({"id_token": {"acr": {"essential": True, "value": MFA}}})}])
def test_asking_for_the_multi_factor_level_asks_again_and_requires_the_code(
        op: OP, browser: httpx.Client, ask: dict[str, str]) -> None:
    sign_in(op, browser, stay="yes")
    flow, page = again(op, browser, **ask)
    assert shows_the_form(page) and "The site asks for a second factor" in page.text
    without = decide(browser, page)
    assert without.status_code == 400 and "enter the one-time code" in without.text
    claims = tokens(op, flow, decide(browser, without, otp="123456"))[0]
    assert claims["acr"] == MFA and claims["amr"] == ["pwd", "otp"]


def test_a_level_the_session_has_is_answered_without_the_form(op: OP, browser: httpx.Client) -> None:
    sign_in(op, browser, stay="yes")
    assert again(op, browser, acr_values=f"{MFA} {PWD}")[1].status_code == 303
    assert again(op, browser, acr_values="urn:unknown:level")[1].status_code == 303  # unknown values are ignored


def test_a_password_only_request_does_not_insist_on_the_code(op: OP, browser: httpx.Client) -> None:
    flow, page = again(op, browser, acr_values=f"{PWD} {MFA}")
    assert tokens(op, flow, decide(browser, page))[0]["acr"] == PWD


@pytest.mark.parametrize(("extra", "message"), [({"max_age": "soon"}, "max_age"), ({"claims": "{"}, "claims"),
                                                ({"claims": '{"id_token": 1}'}, "claims"),
                                                ({"prompt": "none login"}, "prompt")])
def test_malformed_step_up_parameters_go_back_as_invalid_request(
        op: OP, browser: httpx.Client, extra: dict[str, str], message: str) -> None:
    params = answer(again(op, browser, **extra)[1])
    assert params["error"] == "invalid_request" and message in params["error_description"]


# The ignore switch


def test_ignoring_step_up_answers_from_the_session_and_tells_the_truth(ignoring_op: OP, browser: httpx.Client) -> None:
    op = ignoring_op
    first = sign_in(op, browser, stay="yes")
    for ask in ({"prompt": "login"}, {"max_age": "0"}, {"acr_values": MFA},
                {"claims": json.dumps({"id_token": {"acr": {"essential": True, "values": [MFA]}}})}):
        flow, response = again(op, browser, **ask)
        assert response.status_code == 303, ask
        claims = tokens(op, flow, response)[0]
        assert (claims["sid"], claims["auth_time"], claims["acr"], claims["amr"]) == \
            (first["sid"], first["auth_time"], PWD, ["pwd"])


def test_ignoring_step_up_never_insists_on_the_code(ignoring_op: OP, browser: httpx.Client) -> None:
    flow, page = again(ignoring_op, browser, acr_values=MFA)
    assert "The site asks for a second factor" not in page.text
    assert tokens(ignoring_op, flow, decide(browser, page))[0]["acr"] == PWD
