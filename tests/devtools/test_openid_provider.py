"""The development OpenID provider, driven over real HTTP: discovery and signing in.

The relying party is python3-openid's own consumer (tests/devtools/relying_party.py);
the person is an httpx client filling in the consent form.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from openid.consumer import discover
from openid.consumer.consumer import CANCEL, FAILURE, SETUP_NEEDED, SUCCESS
from openid.extensions import ax, sreg

from devtools.openid_provider import create_app
from tests.devtools.relying_party import (
    AX_EMAIL,
    AX_NICKNAME,
    BANNER,
    OPENID2_NS,
    REALM,
    RETURN_TO,
    STEAM_CLAIMED_ID,
    Forms,
    RelyingParty,
    checkid,
    consent_token,
    decide,
    returned,
    sign_in,
)
from tests.servers import Process, UvicornThread, free_port

ROOT = Path(__file__).resolve().parents[2]


# Discovery


def test_claimed_identifier_is_discovered_through_yadis(op: str, person: httpx.Client) -> None:
    page = person.get(f"{op}/id/alice")
    assert page.headers["x-xrds-location"] == f"{op}/id/alice/xrds"
    claimed_id, services = discover.discoverYadis(f"{op}/id/alice")
    assert claimed_id == f"{op}/id/alice"
    assert services and all(service.used_yadis for service in services)
    service = services[0]
    assert service.server_url == f"{op}/endpoint"
    assert service.compatibilityMode() is False and not service.isOPIdentifier()
    assert service.usesExtension(sreg.ns_uri_1_1) and service.usesExtension(ax.AXMessage.ns_uri)


def test_claimed_identifier_is_discovered_through_html_links(op: str, person: httpx.Client) -> None:
    page = person.get(f"{op}/html-id/alice")
    assert "x-xrds-location" not in page.headers
    claimed_id, services = discover.discoverURI(f"{op}/html-id/alice")
    assert claimed_id == f"{op}/html-id/alice"
    assert [(s.used_yadis, s.server_url, s.local_id) for s in services] == [
        (False, f"{op}/endpoint", f"{op}/html-id/alice"),
    ]


@pytest.mark.parametrize("accept", ["application/xrds+xml", "text/html"])
def test_op_identifier_is_discovered_for_identifier_select(op: str, person: httpx.Client, accept: str) -> None:
    page = person.get(f"{op}/sreg-only/openid", headers={"Accept": accept})
    if accept == "text/html":
        assert page.headers["x-xrds-location"] == f"{op}/sreg-only/openid/xrds"
        assert BANNER in page.text
    else:
        assert page.headers["content-type"].startswith("application/xrds+xml")
    _, services = discover.discover(f"{op}/sreg-only/openid")
    assert [(s.isOPIdentifier(), s.server_url) for s in services] == [(True, f"{op}/sreg-only/endpoint")]


def test_home_page_lists_every_profile(op: str, person: httpx.Client) -> None:
    page = person.get(f"{op}/")
    assert BANNER in page.text
    for prefix in ("", "/sreg-only", "/ax-only", "/no-email", "/steam"):
        assert f"{op}{prefix}/openid" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert "<script" not in page.text


def test_base_url_defaults_to_the_requested_host(person: httpx.Client) -> None:
    with UvicornThread(create_app()) as server:
        assert f"{server.url}/openid" in person.get(f"{server.url}/").text
        page = person.get(f"{server.url}/id/bob", headers={"Host": f"localhost:{server.port}"})
        assert page.headers["x-xrds-location"] == f"http://localhost:{server.port}/id/bob/xrds"


# Signing in


@pytest.mark.parametrize("kind", ["op_identifier", "yadis", "html"])
def test_allow_answers_success_with_signed_sreg_and_ax(op: str, person: httpx.Client, kind: str) -> None:
    identifier = {"op_identifier": f"{op}/openid", "yadis": f"{op}/id/alice",
                  "html": f"{op}/html-id/alice"}[kind]
    _, response = sign_in(person, op, identifier, "alice")
    assert response.status == SUCCESS, response.message
    assert response.identity_url == (f"{op}/html-id/alice" if kind == "html" else f"{op}/id/alice")
    assert response.endpoint.server_url == f"{op}/endpoint"
    assert dict(sreg.SRegResponse.fromSuccessResponse(response)) == {
        "nickname": "alice", "email": "alice@example.test", "fullname": "Development user alice",
    }
    fetched = ax.FetchResponse.fromSuccessResponse(response)
    assert fetched.get(AX_NICKNAME) == ["alice"] and fetched.get(AX_EMAIL) == ["alice@example.test"]


def test_consent_page_names_the_user_of_a_claimed_identifier(op: str, person: httpx.Client) -> None:
    auth_request = RelyingParty().begin(f"{op}/id/carol")
    page = person.get(auth_request.redirectURL(REALM, RETURN_TO))
    assert Forms(page.text).inputs[0]["username"] == "carol"
    assert '<input id="username" name="username" value="carol" readonly>' in page.text
    assert "nickname" in page.text and REALM in page.text


def test_a_claimed_identifier_cannot_be_answered_for_another_user(op: str, person: httpx.Client) -> None:
    _, response = sign_in(person, op, f"{op}/id/carol", username="mallory")
    assert response.status == SUCCESS
    assert response.identity_url == f"{op}/id/carol"
    assert sreg.SRegResponse.fromSuccessResponse(response)["nickname"] == "carol"


def test_deny_answers_cancel(op: str, person: httpx.Client) -> None:
    _, response = sign_in(person, op, f"{op}/openid", decision="deny")
    assert response.status == CANCEL


def test_checkid_immediate_answers_setup_needed(op: str, person: httpx.Client) -> None:
    rp = RelyingParty()
    answer = person.get(rp.begin(f"{op}/id/alice").redirectURL(REALM, RETURN_TO, immediate=True))
    assert returned(rp, answer).status == SETUP_NEEDED


@pytest.mark.parametrize(
    ("prefix", "expected_sreg", "expected_ax"),
    [
        ("/sreg-only", {"nickname": "dave", "email": "dave@example.test", "fullname": "Development user dave"}, None),
        ("/ax-only", None, {AX_NICKNAME: ["dave"], AX_EMAIL: ["dave@example.test"]}),
        ("/no-email", {"nickname": "dave", "fullname": "Development user dave"}, {AX_NICKNAME: ["dave"], AX_EMAIL: []}),
    ],
)
def test_profiles_release_only_their_attributes(op: str, person: httpx.Client, prefix: str,
                                                expected_sreg: dict[str, str] | None,
                                                expected_ax: dict[str, list[str]] | None) -> None:
    _, response = sign_in(person, op, f"{op}{prefix}/openid", "dave")
    assert response.status == SUCCESS, response.message
    assert response.identity_url == f"{op}{prefix}/id/dave"
    sreg_response = sreg.SRegResponse.fromSuccessResponse(response)
    assert (dict(sreg_response) if sreg_response is not None else None) == expected_sreg
    fetched = ax.FetchResponse.fromSuccessResponse(response)
    assert ({uri: fetched.get(uri) for uri in (AX_NICKNAME, AX_EMAIL)} if fetched else None) == expected_ax


def test_long_answer_comes_back_as_an_auto_submitted_post_form(op: str, person: httpx.Client) -> None:
    rp = RelyingParty()
    return_to = f"{RETURN_TO}?{urlencode({'next': '/' + 'x' * 2100})}"
    auth_request = rp.begin(f"{op}/openid")
    request_form = Forms(auth_request.formMarkup(REALM, return_to))
    page = person.post(request_form.forms[0]["action"], data=request_form.inputs[0])  # too long for a URL too
    answer = decide(person, op, consent_token(page), "allow", "erin")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    form = Forms(answer.text)
    assert form.forms[0]["method"] == "post" and form.forms[0]["action"].startswith(return_to)
    assert BANNER in answer.text and '<script src="/static/autosubmit.js" defer></script>' in answer.text
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert person.get(f"{op}/static/autosubmit.js").text.strip().endswith("document.forms[0].submit();")
    response = returned(rp, answer)
    assert response.status == SUCCESS, response.message
    assert response.getReturnTo().startswith(return_to)


def test_a_long_error_answer_is_posted_too(op: str, person: httpx.Client) -> None:
    return_to = f"{RETURN_TO}?{urlencode({'next': '/' + 'x' * 2100})}"
    answer = person.post(f"{op}/endpoint", data=checkid("http://elsewhere.test/", return_to=return_to))
    form = Forms(answer.text)
    assert answer.status_code == 200 and form.forms[0]["action"] == return_to
    assert form.inputs[0]["openid.mode"] == "error"



# Steam


def test_steam_signs_in_with_steam_ids_and_stateless_verification(op: str, person: httpx.Client) -> None:
    rp = RelyingParty()
    auth_request = rp.begin(f"{op}/steam/openid", extensions=False)
    assert auth_request.endpoint.isOPIdentifier()
    assert auth_request.assoc is None  # the association reply lacked assoc_type
    page = person.get(auth_request.redirectURL(REALM, RETURN_TO))
    answer = decide(person, op, consent_token(page), "allow", "gordon")
    response = returned(rp, answer)  # verified with check_authentication
    assert response.status == SUCCESS, response.message
    assert STEAM_CLAIMED_ID.match(response.identity_url)
    assert response.endpoint.server_url == f"{op}/steam/endpoint"
    assert sreg.SRegResponse.fromSuccessResponse(response) is None
    assert ax.FetchResponse.fromSuccessResponse(response) is None

    again = RelyingParty()
    replay = again.complete(dict(parse_qsl(urlsplit(answer.headers["location"]).query)), answer.headers["location"])
    assert replay.status == FAILURE  # check_authentication invalidated the handle

    _, second = sign_in(person, op, f"{op}/steam/openid", "gordon")
    assert second.identity_url == response.identity_url
    _, other = sign_in(person, op, f"{op}/steam/openid", "alyx")
    assert STEAM_CLAIMED_ID.match(other.identity_url) and other.identity_url != response.identity_url


@pytest.mark.parametrize(("prefix", "has_assoc_type"), [("", True), ("/steam", False)])
def test_steam_association_reply_lacks_assoc_type(op: str, person: httpx.Client, prefix: str,
                                                  has_assoc_type: bool) -> None:
    reply = person.post(f"{op}{prefix}/endpoint", data={
        "openid.ns": OPENID2_NS, "openid.mode": "associate",
        "openid.assoc_type": "HMAC-SHA1", "openid.session_type": "no-encryption",
    })
    assert reply.status_code == 200
    keys = {line.split(":", 1)[0] for line in reply.text.splitlines()}
    assert {"assoc_handle", "mac_key", "expires_in"} <= keys
    assert ("assoc_type" in keys) is has_assoc_type


def test_steam_refuses_anything_but_identifier_select(op: str, person: httpx.Client) -> None:
    claimed_id = f"{op}/steam/openid/id/76561197960265728"
    assert person.get(claimed_id, headers={"Accept": "application/xrds+xml"}).status_code == 200
    answer = person.get(f"{op}/steam/endpoint", params=checkid(claimed_id))
    assert answer.status_code == 302
    query = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
    assert query["openid.mode"] == "error" and "identifier_select only" in query["openid.error"]


def test_command_line_serves_the_provider_and_prints_its_url(person: httpx.Client) -> None:
    port = free_port()
    command = Process([sys.executable, "-m", "devtools.openid_provider", "--port", str(port), "--log-level", "warning"],
                      cwd=str(ROOT)).start(wait_port=port)
    try:
        page = person.get(f"http://127.0.0.1:{port}/steam/openid", headers={"Accept": "application/xrds+xml"})
        assert f"<URI>http://127.0.0.1:{port}/steam/endpoint</URI>" in page.text
    finally:
        command.stop()
    output = command.output()
    assert output.splitlines()[0] == f"Development OpenID provider (not for production): http://127.0.0.1:{port}"
