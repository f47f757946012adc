"""Step-up rules (``max_age``, ``acr_values``): parsed, decided under every reading, and challenged (RFC 9470)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.gate.access import AccessPolicy, Person, RuleError, parse_rule
from gateway.gate.bearer import step_up_challenge
from gateway.types import Assurance, StepUp

ALICE = Person("https://openid.example/alice")
NOW = 1_800_000_000.0
MFA = "urn:example:mfa"


def policy(*rules: dict[str, Any]) -> AccessPolicy:
    return AccessPolicy(tuple(parse_rule(i, r) for i, r in enumerate(rules)))


ADMIN = policy({"name": "admin", "paths": ["/admin"], "policy": "signed_in", "max_age": 120},
               {"name": "pay", "paths": ["/pay"], "policy": "signed_in", "acr_values": [MFA, "urn:example:hw"]})


def signed_in(seconds_ago: float, acr: str = "") -> Assurance:
    return Assurance(NOW - seconds_ago, acr)


def test_a_sign_in_within_max_age_passes_and_an_older_one_must_step_up() -> None:
    assert ADMIN.decide(ALICE, "GET", "a.example", "/admin", signed_in(120), NOW).outcome == "allow"
    decision = ADMIN.decide(ALICE, "GET", "a.example", "/admin/users", signed_in(121), NOW)
    assert (decision.outcome, decision.rule, decision.step_up) == ("step_up", "admin", StepUp(120))


def test_acr_values_need_one_of_the_listed_levels() -> None:
    assert ADMIN.decide(ALICE, "GET", "a.example", "/pay", signed_in(10**6, MFA), NOW).outcome == "allow"
    for acr in ("", "urn:example:pwd"):
        decision = ADMIN.decide(ALICE, "GET", "a.example", "/pay", signed_in(0, acr), NOW)
        assert decision.step_up == StepUp(None, (MFA, "urn:example:hw"))


def test_an_unknown_assurance_never_meets_a_step_up_rule() -> None:
    assert ADMIN.decide(ALICE, "GET", "a.example", "/admin", None, NOW).outcome == "step_up"


def test_anonymous_visitors_sign_in_first_and_paths_without_step_up_ignore_the_assurance() -> None:
    assert ADMIN.decide(None, "GET", "a.example", "/admin", None, NOW).outcome == "sign_in"
    assert ADMIN.decide(ALICE, "GET", "a.example", "/posts", None, NOW).outcome == "allow"


def test_a_spelling_of_a_step_up_path_is_judged_as_that_path() -> None:
    """``/posts/..%2fadmin`` is /admin to some apps: its step-up applies."""
    for path in ("/posts/..%2fadmin", "/ADMIN", "/admin.json", "/admin/"):
        assert ADMIN.decide(ALICE, "GET", "a.example", path, signed_in(500), NOW).outcome == "step_up", path


def test_the_step_ups_of_several_readings_are_joined_and_forbidden_still_wins() -> None:
    rules = policy({"name": "a", "paths": ["/a"], "policy": "signed_in", "max_age": 600, "acr_values": [MFA, "x"]},
                   {"name": "b", "paths": ["/b"], "policy": "signed_in", "max_age": 60, "acr_values": ["x", "y"]},
                   {"name": "c", "paths": ["/c"], "policy": "signed_in", "acr_values": ["z"]},
                   {"name": "d", "paths": ["/d"], "policy": "deny"})
    decision = rules.decide(ALICE, "GET", "h", "/a/..%2fb", signed_in(0), NOW)
    assert (decision.outcome, decision.rule, decision.step_up) == ("step_up", "a", StepUp(60, ("x",)))
    assert rules.decide(ALICE, "GET", "h", "/a/..%2fb", signed_in(0, "x"), NOW).outcome == "allow"
    # No level meets both: no sign-in could ever pass.
    assert rules.decide(ALICE, "GET", "h", "/c/..%2fb", signed_in(0), NOW).outcome == "forbidden"
    assert rules.decide(ALICE, "GET", "h", "/b/..%2fd", signed_in(10**6), NOW).outcome == "forbidden"


@pytest.mark.parametrize(("raw", "message"), [
    ({"policy": "public", "max_age": 60}, "a public rule asks for none"),
    ({"policy": "deny", "acr_values": [MFA]}, "a deny rule asks for none"),
    ({"policy": "signed_in", "max_age": 0}, "max_age must be a positive whole number of seconds, got 0"),
    ({"policy": "signed_in", "max_age": -5}, "got -5"),
    ({"policy": "signed_in", "max_age": 1.5}, "got 1.5"),
    ({"policy": "signed_in", "max_age": True}, "got True"),
    ({"policy": "signed_in", "max_age": "300"}, "got '300'"),
    ({"policy": "signed_in", "acr_values": []}, "acr_values must be a non-empty list"),
    ({"policy": "signed_in", "acr_values": "urn:x"}, "acr_values must be a list of strings"),
    ({"policy": "signed_in", "acr_values": ["two words"]}, "without spaces"),
    ({"policy": "signed_in", "acr_values": ['a"b']}, "quotes"),
])
def test_a_bad_step_up_is_a_one_line_error_naming_the_rule(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError, match=r"^rules\[2\] \(x\): ") as refused:
        parse_rule(2, {"name": "x", "paths": ["/x"], **raw})
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_a_step_up_rule_keeps_what_it_asks() -> None:
    rule = parse_rule(0, {"policy": "allow", "subjects": ["group:staff"], "max_age": 300, "acr_values": [MFA]})
    assert rule.step_up == StepUp(300, (MFA,))
    assert parse_rule(0, {"policy": "signed_in"}).step_up is None


def test_the_rfc_9470_challenge_says_what_to_get() -> None:
    assert step_up_challenge(StepUp(120, (MFA, "urn:example:hw"))) == (
        b'Bearer realm="openid-gateway", error="insufficient_user_authentication", error_description="a more recent'
        b' or stronger sign-in is required", max_age=120, acr_values="urn:example:mfa urn:example:hw"')
    assert b"max_age" not in step_up_challenge(StepUp(None, (MFA,)))
