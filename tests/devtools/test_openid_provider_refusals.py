"""The development OpenID provider refuses what it cannot answer, and never with a 500."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openid.consumer.consumer import SUCCESS

from tests.devtools.relying_party import (
    BANNER,
    IDENTIFIER_SELECT,
    OPENID2_NS,
    REALM,
    RETURN_TO,
    Forms,
    RelyingParty,
    checkid,
    consent_token,
    decide,
    returned,
)


@pytest.mark.parametrize("username", ["", "a" * 65, "two words", "<script>", "..", "ünïcode", "a/b", "tab\t"])
def test_bad_user_names_are_refused(op: str, person: httpx.Client, username: str) -> None:
    rp = RelyingParty()
    page = person.get(rp.begin(f"{op}/openid").redirectURL(REALM, RETURN_TO))
    token = consent_token(page)
    refused = decide(person, op, token, "allow", username)
    assert refused.status_code == 400
    assert "Not a valid user name" in refused.text and BANNER in refused.text
    assert "<script>" not in refused.text
    assert Forms(refused.text).inputs[0]["token"] == token  # the same request, still pending
    assert returned(rp, decide(person, op, token, "allow", "a" * 64)).status == SUCCESS


def test_a_consent_token_answers_once(op: str, person: httpx.Client) -> None:
    page = person.get(RelyingParty().begin(f"{op}/openid").redirectURL(REALM, RETURN_TO))
    token = consent_token(page)
    assert decide(person, op, token, "deny").status_code == 302
    again = decide(person, op, token, "allow", "alice")
    assert again.status_code == 400 and "Start again" in again.text
    assert decide(person, op, "made-up", "allow", "alice").status_code == 400


def test_identifiers_of_other_providers_are_refused(op: str, person: httpx.Client) -> None:
    answer = person.get(f"{op}/endpoint", params=checkid(f"{op}/sreg-only/id/alice"))
    query = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
    assert query["openid.mode"] == "error" and "does not serve" in query["openid.error"]


GARBAGE = [
    {},
    {"openid.mode": "checkid_setup"},
    {"openid.ns": "http://example.com/not-openid", "openid.mode": "checkid_setup"},
    {"openid.ns": OPENID2_NS, "openid.mode": "bogus"},
    checkid(IDENTIFIER_SELECT, return_to="not a url"),
    checkid(IDENTIFIER_SELECT, return_to="http://evil.test/", realm=REALM),
    checkid(IDENTIFIER_SELECT, realm="http://*.*.*/"),
    {**checkid(IDENTIFIER_SELECT), "openid.return_to": ""},
    {**checkid(IDENTIFIER_SELECT), "openid.ns.ax": "http://openid.net/srv/ax/1.0", "openid.ax.mode": "nonsense"},
    {**checkid(IDENTIFIER_SELECT), "openid.ns.sreg": "http://example.com/other", "openid.sreg.required": "x"},
    {"openid.ns": OPENID2_NS, "openid.mode": "associate", "openid.assoc_type": "HMAC-SHA1",
     "openid.session_type": "DH-SHA1", "openid.dh_consumer_public": "!!not base64!!"},
    {"openid.ns": OPENID2_NS, "openid.mode": "check_authentication", "openid.assoc_handle": "x",
     "openid.sig": "%%%", "openid.signed": "mode,missing"},
    {"openid.mode": "checkid_setup", "openid.identity": "http://x/", "openid.return_to": "http://rp.test/"},
]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("args", GARBAGE)
def test_garbage_on_the_endpoint_is_refused_without_a_server_error(op: str, person: httpx.Client, method: str,
                                                   args: dict[str, str]) -> None:
    if method == "GET":
        answer = person.get(f"{op}/endpoint", params=args)
    else:
        answer = person.post(f"{op}/endpoint", data=args)
    assert answer.status_code in (200, 302, 400), answer.text
    if answer.status_code == 302:  # told to the relying party
        assert dict(parse_qsl(urlsplit(answer.headers["location"]).query))["openid.mode"] == "error"
    elif answer.status_code == 200:  # a signature that does not verify
        assert "is_valid:false" in answer.text


def test_malformed_bodies_are_client_errors(op: str, person: httpx.Client) -> None:
    broken = person.post(f"{op}/endpoint", content=b"--x\r\nnonsense",
                          headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert 400 <= broken.status_code < 500
    assert person.post(f"{op}/consent", content=b"\xff\xfe", headers={
        "Content-Type": "application/x-www-form-urlencoded"}).status_code == 400
    assert person.get(f"{op}/id/%2E%2E").status_code == 404


KEYS = st.sampled_from(["openid.ns", "openid.mode", "openid.identity", "openid.claimed_id", "openid.return_to",
                        "openid.realm", "openid.assoc_handle", "openid.signed", "openid.sig", "openid.session_type",
                        "openid.assoc_type", "openid.dh_consumer_public", "openid.ns.sreg", "openid.sreg.required",
                        "openid.ns.ax", "openid.ax.mode", "openid.ax.type.a", "openid.ax.required"])
VALUES = st.one_of(st.sampled_from([OPENID2_NS, "checkid_setup", "checkid_immediate", "associate",
                                    "check_authentication", IDENTIFIER_SELECT, RETURN_TO, REALM, "fetch_request",
                                    "DH-SHA256", "HMAC-SHA256", "no-encryption", "a", "mode,identity"]),
                   st.text(max_size=30))


@settings(max_examples=150, deadline=None)
@given(args=st.dictionaries(KEYS, VALUES, max_size=8))
def test_no_request_makes_the_endpoint_fail(op: str, args: dict[str, str]) -> None:
    with httpx.Client(trust_env=False) as client:
        assert client.post(f"{op}/endpoint", data=args).status_code < 500


@pytest.mark.parametrize("return_to", ["::", "A:0", "javascript:alert(1)//", "/relative/path"])
def test_an_error_is_never_redirected_to_a_return_to_that_is_not_an_absolute_http_url(op: str, return_to: str) -> None:
    with httpx.Client(trust_env=False) as client:
        answer = client.post(f"{op}/endpoint", data={"openid.return_to": return_to})
    assert answer.status_code == 400 and "location" not in answer.headers
