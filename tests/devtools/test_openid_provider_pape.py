"""The development OpenID 2.0 provider's PAPE 1.0 answers and step-up, driven over real HTTP (devtools/stepup.py).

python3-openid's consumer asks (``max_auth_age``, the multi-factor policy) and reads the PAPE
response; the person is an httpx client that keeps the provider's cookie.
"""

from __future__ import annotations

import calendar
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from openid.consumer.consumer import SUCCESS, Response
from openid.extensions.draft import pape5

from devtools.stack import PROJECT_ROOT
from tests.devtools.relying_party import REALM, RelyingParty, consent_token, returned
from tests.servers import Process, free_port

OTHER_REALM = "http://other.test/"


@pytest.fixture(scope="module")
def ignoring_op() -> Iterator[str]:
    """Started as devtools/stack.py starts it: ``python -m devtools.openid_provider --ignore-step-up``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "devtools.openid_provider", "--port", str(port), "--base-url", url,
               "--ignore-step-up", "--log-level", "warning"]
    process = Process(command, cwd=str(PROJECT_ROOT)).start(wait_port=port)
    yield url
    process.close()


def ask(person: httpx.Client, identifier: str, *, max_auth_age: int | None = None, multi_factor: bool = False,
        realm: str = REALM) -> tuple[RelyingParty, httpx.Response]:
    """A checkid_setup request with a PAPE request when anything is asked; the provider's first answer."""
    rp = RelyingParty()
    auth_request = rp.begin(identifier)
    policies = [pape5.AUTH_MULTI_FACTOR] if multi_factor else []
    if max_auth_age is not None or policies:
        auth_request.addExtension(pape5.Request(policies, max_auth_age))
    return rp, person.get(auth_request.redirectURL(realm, realm + "callback"))


def allow(person: httpx.Client, op: str, page: httpx.Response, **fields: str) -> httpx.Response:
    data = {"token": consent_token(page), "decision": "allow", "username": "alice", **fields}
    return person.post(f"{op}/consent", data=data)


class Pape:
    """The assertion's signed PAPE response: ``auth_time`` as sent, ``auth_policies`` as sent (the "none"
    policy included, which python3-openid's parser turns into an empty list)."""

    def __init__(self, result: Response) -> None:
        parsed = pape5.Response.fromSuccessResponse(result)
        assert parsed is not None, "the assertion carries a signed PAPE response"
        self.auth_time: str = parsed.auth_time
        self.auth_policies = result.getSigned(pape5.ns_uri, "auth_policies").split()


def pape_of(rp: RelyingParty, answer: httpx.Response) -> tuple[Response, Pape]:
    result = returned(rp, answer)
    assert result.status == SUCCESS, getattr(result, "message", result)
    return result, Pape(result)


def auth_time(pape: Pape) -> int:
    return calendar.timegm(time.strptime(pape.auth_time, "%Y-%m-%dT%H:%M:%SZ"))


def is_form(page: httpx.Response) -> bool:
    return page.status_code == 200 and bool(consent_token(page))


def test_every_assertion_says_when_and_with_which_policies(op: str, person: httpx.Client) -> None:
    before = int(time.time())
    rp, page = ask(person, f"{op}/id/alice")
    _, pape = pape_of(rp, allow(person, op, page))
    assert pape.auth_policies == [pape5.AUTH_NONE] and auth_time(pape) >= before


def test_the_one_time_code_meets_the_multi_factor_policy(op: str, person: httpx.Client) -> None:
    rp, page = ask(person, f"{op}/openid")
    _, pape = pape_of(rp, allow(person, op, page, otp="123456"))
    assert pape.auth_policies == [pape5.AUTH_MULTI_FACTOR]


def test_a_preferred_multi_factor_policy_requires_the_code(op: str, person: httpx.Client) -> None:
    rp, page = ask(person, f"{op}/openid", multi_factor=True)
    assert "The site asks for a multi-factor sign-in" in page.text
    for otp, message in (("", "enter the one-time code"), ("000000", "Wrong one-time code")):
        refused = allow(person, op, page, otp=otp)
        assert refused.status_code == 400 and message in refused.text
    assert pape_of(rp, allow(person, op, page, otp="123456"))[1].auth_policies == [pape5.AUTH_MULTI_FACTOR]


def test_without_stay_signed_in_every_request_shows_the_form(op: str, person: httpx.Client) -> None:
    rp, page = ask(person, f"{op}/id/alice")
    pape_of(rp, allow(person, op, page))
    assert not person.cookies
    assert is_form(ask(person, f"{op}/id/alice")[1])


def test_stay_signed_in_answers_later_requests_with_the_original_sign_in(op: str, person: httpx.Client) -> None:
    rp, page = ask(person, f"{op}/openid")
    result, first = pape_of(rp, allow(person, op, page, stay="yes", otp="123456"))
    for identifier in (f"{op}/openid", f"{op}/id/alice"):  # identifier_select, and the same person's identifier
        rp, answer = ask(person, identifier)
        assert answer.status_code == 302, answer.text  # no form
        again, pape = pape_of(rp, answer)
        assert again.identity_url == result.identity_url
        assert (pape.auth_time, pape.auth_policies) == (first.auth_time, [pape5.AUTH_MULTI_FACTOR])


def test_stay_signed_in_is_for_the_realm_and_the_person_signed_in(op: str, person: httpx.Client) -> None:
    rp, page = ask(person, f"{op}/id/alice")
    pape_of(rp, allow(person, op, page, stay="yes"))
    assert is_form(ask(person, f"{op}/id/alice", realm=OTHER_REALM)[1])
    assert is_form(ask(person, f"{op}/id/bob")[1])
    assert is_form(ask(person, f"{op}/sreg-only/openid")[1])  # another profile


def test_max_auth_age_asks_again_once_the_sign_in_is_older(op: str, person: httpx.Client) -> None:
    rp, page = ask(person, f"{op}/id/alice")
    _, first = pape_of(rp, allow(person, op, page, stay="yes"))
    assert ask(person, f"{op}/id/alice", max_auth_age=3600)[1].status_code == 302
    time.sleep(2.1)  # ages the sign-in past max_auth_age=1; nothing here measures time
    rp, page = ask(person, f"{op}/id/alice", max_auth_age=1)
    assert is_form(page)
    assert auth_time(pape_of(rp, allow(person, op, page))[1]) > auth_time(first)


def test_a_preferred_multi_factor_policy_asks_a_password_sign_in_again(op: str, person: httpx.Client) -> None:
    rp, page = ask(person, f"{op}/id/alice")
    pape_of(rp, allow(person, op, page, stay="yes"))
    assert is_form(ask(person, f"{op}/id/alice", multi_factor=True)[1])


def test_ignoring_step_up_answers_from_the_session_and_tells_the_truth(ignoring_op: str, person: httpx.Client) -> None:
    op = ignoring_op
    rp, page = ask(person, f"{op}/id/alice")
    _, first = pape_of(rp, allow(person, op, page, stay="yes"))
    time.sleep(1.1)  # so that max_auth_age=0 is exceeded
    rp, answer = ask(person, f"{op}/id/alice", max_auth_age=0, multi_factor=True)
    assert answer.status_code == 302, answer.text
    pape = pape_of(rp, answer)[1]
    assert (pape.auth_time, pape.auth_policies) == (first.auth_time, [pape5.AUTH_NONE])


def test_ignoring_step_up_never_insists_on_the_code(ignoring_op: str, person: httpx.Client) -> None:
    rp, page = ask(person, f"{ignoring_op}/openid", multi_factor=True)
    assert "multi-factor sign-in" not in page.text
    assert pape_of(rp, allow(person, ignoring_op, page))[1].auth_policies == [pape5.AUTH_NONE]
