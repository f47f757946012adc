"""The callback's step-up judgement (SignInMethods.assured) and what each protocol asks of its provider."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest

from gateway.errors import LoginFailed, StepUpRefused
from gateway.signin.loginstate import step_up_data, step_up_of
from gateway.signin.methods import STEP_UP_LEEWAY, SignInMethods
from gateway.signin.oidc.exchange import step_up_params, token_assurance
from gateway.types import Assurance, Identity, StepUp

NOW = 1_800_000_000.0
MFA = "urn:example:mfa"
ALICE = Identity("https://op.example#alice", "alice", provider="SSO")


def answered(auth_time: float | None, acr: str = "") -> Identity:
    return Identity(ALICE.user_id, ALICE.nickname, provider="SSO",
                    assurance=None if auth_time is None else Assurance(auth_time, acr))


def test_an_answer_that_meets_the_step_up_passes_with_its_own_assurance() -> None:
    identity = SignInMethods.assured(answered(NOW - 5, MFA), StepUp(60, (MFA,)), NOW)
    assert identity.assurance == Assurance(NOW - 5, MFA)


@pytest.mark.parametrize(("answer", "asked", "why"), [
    (answered(NOW - 3600), StepUp(60), "authenticated 3600s ago, more than max_age 60s"),  # ignored max_age
    (answered(NOW - 61), StepUp(60), "more than max_age 60s"),  # judged exactly as the gate will: no loop
    (answered(NOW, "urn:example:pwd"), StepUp(None, (MFA,)), "is not one of"),  # ignored acr_values
    (answered(None), StepUp(60), "did not say when the person authenticated"),  # Core §3.1.2.1: required
    (answered(None), StepUp(None, (MFA,)), "acr '(none)'"),
    (answered(NOW + STEP_UP_LEEWAY + 5), StepUp(60), "in the future"),
])
def test_an_answer_that_ignored_the_step_up_is_refused(answer: Identity, asked: StepUp, why: str) -> None:
    with pytest.raises(StepUpRefused, match=r"ignored|did not say|future") as refused:
        SignInMethods.assured(answer, asked, NOW)
    assert why in refused.value.reason and refused.value.code == "step-up-refused"


def test_without_a_step_up_a_provider_that_says_nothing_counts_as_now() -> None:
    assert SignInMethods.assured(answered(None), None, NOW).assurance == Assurance(NOW)
    assert SignInMethods.assured(answered(NOW - 10**6), None, NOW).assurance == Assurance(NOW - 10**6)


def test_the_login_state_records_what_was_asked() -> None:
    assert step_up_of(step_up_data(StepUp(120, (MFA, "x")))) == StepUp(120, (MFA, "x"))
    assert step_up_of(step_up_data(None)) is None
    assert json.loads(json.dumps(step_up_data(StepUp(None, (MFA,))))) == {"step_up": {"max_age": None,
                                                                                       "acr_values": [MFA]}}


def test_openid_connect_asks_with_max_age_prompt_acr_values_and_an_essential_acr() -> None:
    params = step_up_params(StepUp(120, (MFA, "x")), claims_parameter=True)
    assert params["prompt"] == "login" and params["max_age"] == "120" and params["acr_values"] == f"{MFA} x"
    assert json.loads(params["claims"]) == {"id_token": {"acr": {"essential": True, "values": [MFA, "x"]}}}
    assert "claims" not in step_up_params(StepUp(None, (MFA,)), claims_parameter=False)
    assert step_up_params(StepUp(30), claims_parameter=True) == {"prompt": "login", "max_age": "30"}
    assert parse_qs("max_age=" + params["max_age"]) == {"max_age": ["120"]}


def test_a_tokens_auth_time_acr_and_amr_are_its_assurance() -> None:
    claims = {"auth_time": 1_700_000_000, "acr": MFA, "amr": ["pwd", "otp"]}
    assert token_assurance(claims, "SSO") == Assurance(1_700_000_000.0, MFA, ("pwd", "otp"))
    assert token_assurance({}, "SSO") is None
    for bad in ({"auth_time": "yesterday"}, {"auth_time": True}, {"auth_time": 1, "acr": 5},
                {"auth_time": 1, "amr": "pwd"}):
        with pytest.raises(LoginFailed):
            token_assurance(bad, "SSO")
