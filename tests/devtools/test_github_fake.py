"""The GitHub-style OAuth 2.0 fake (``/github`` on the development OpenID Connect provider): GitHub's shapes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx
import pytest

from tests.devtools.oidc_relying_party import (
    CLIENT_ID,
    GITHUB_BANNER,
    OP,
    SECRET,
    consent_form,
    s256,
    serve_provider,
)
from tests.htmlforms import forms


@pytest.fixture(scope="module")
def op() -> Iterator[OP]:
    with serve_provider() as provider:
        yield provider


VERIFIER = "v" * 50


def authorize(op: OP, person: httpx.Client, **params: str) -> httpx.Response:
    query = {"client_id": CLIENT_ID, "redirect_uri": op.redirect_uri, "scope": "read:user user:email read:org",
             "state": "st", "code_challenge": s256(VERIFIER), "code_challenge_method": "S256"} | params
    return person.get(f"{op.url}/github/login/oauth/authorize?{urlencode(query)}")


def consent(op: OP, decision: str = "allow", **fields: str | None) -> dict[str, str]:
    """Sign in on the fake's consent page; the redirect's query parameters."""
    with httpx.Client(trust_env=False) as person:
        page = authorize(op, person, **{key: value for key, value in fields.items()
                                        if key in ("scope", "redirect_uri") and value is not None})
        values = consent_form(page) | {"login": "octocat", "name": "The Octocat", "email": "octo@example.test",
                                       "orgs": "acme", "teams": "acme/admins, widgets/devs"}
        for name, value in fields.items():
            if name not in ("scope", "redirect_uri"):
                if value is None:
                    values.pop(name, None)
                else:
                    values[name] = value
        answer = person.post(urljoin(str(page.url), forms(page.text)[0].action), data={**values, "decision": decision})
    assert answer.status_code == 302
    assert answer.headers["location"].startswith(op.redirect_uri + "?")
    return dict(parse_qsl(urlsplit(answer.headers["location"]).query))


def token(op: OP, code: str, *, json: bool = True, **changes: str) -> httpx.Response:
    data = {"client_id": CLIENT_ID, "client_secret": SECRET, "code": code, "redirect_uri": op.redirect_uri,
            "code_verifier": VERIFIER} | changes
    headers = {"Accept": "application/json"} if json else {}
    return op.http.post(f"{op.url}/github/login/oauth/access_token", data=data, headers=headers)


def api(op: OP, path: str, access_token: str, scheme: str = "Bearer") -> httpx.Response:
    return op.http.get(f"{op.url}/github/api/v3{path}", headers={"Authorization": f"{scheme} {access_token}",
                                                                 "Accept": "application/vnd.github+json"})


def access_token(op: OP, **fields: str | None) -> str:
    body = token(op, consent(op, **fields)["code"]).json()
    return str(body["access_token"])


def test_sign_in_gives_a_bearer_token_as_json_with_the_granted_scopes(op: OP) -> None:
    params = consent(op)
    assert params["state"] == "st"
    body = token(op, params["code"]).json()
    assert body["token_type"] == "bearer" and body["access_token"].startswith("gho_")
    assert body["scope"] == "read:user,user:email,read:org"


def test_token_endpoint_answers_form_encoded_without_accept_json(op: OP) -> None:
    response = token(op, consent(op)["code"], json=False)
    assert response.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert dict(parse_qsl(response.text))["token_type"] == "bearer"


@pytest.mark.parametrize(("changes", "error"), [
    ({"client_secret": "guess"}, "incorrect_client_credentials"),
    ({"code_verifier": "w" * 50}, "bad_verification_code"),
    ({"redirect_uri": "http://rp.example/other-callback"}, "redirect_uri_mismatch"),
])
def test_token_errors_come_with_status_200_as_at_github(op: OP, changes: dict[str, str], error: str) -> None:
    response = token(op, consent(op)["code"], **changes)
    assert response.status_code == 200 and response.json()["error"] == error
    assert "access_token" not in response.json()


def test_code_is_single_use(op: OP) -> None:
    code = consent(op)["code"]
    assert "access_token" in token(op, code).json()
    assert token(op, code).json()["error"] == "bad_verification_code"


def test_user_has_github_shape_and_no_email(op: OP) -> None:
    response = api(op, "/user", access_token(op))
    user: dict[str, Any] = response.json()
    assert response.status_code == 200
    assert (user["login"], user["name"], user["type"], user["email"]) == ("octocat", "The Octocat", "User", None)
    assert isinstance(user["id"], int) and user["node_id"] and user["html_url"].endswith("/octocat")
    assert "user:email" in response.headers["x-oauth-scopes"]


def test_user_id_is_stable_per_login(op: OP) -> None:
    def user_id() -> int:
        return int(api(op, "/user", access_token(op)).json()["id"])
    assert user_id() == user_id()


def test_emails_list_the_primary_with_its_verified_flag(op: OP) -> None:
    emails = api(op, "/user/emails", access_token(op, verified=None, other_email="old@example.test")).json()
    assert emails == [
        {"email": "octo@example.test", "primary": True, "verified": False, "visibility": "private"},
        {"email": "old@example.test", "primary": False, "verified": False, "visibility": None},
    ]
    verified = api(op, "/user/emails", access_token(op)).json()
    assert verified == [{"email": "octo@example.test", "primary": True, "verified": True, "visibility": "private"}]


def test_orgs_and_teams_need_read_org(op: OP) -> None:
    granted = access_token(op)
    orgs = api(op, "/user/orgs", granted).json()
    assert [org["login"] for org in orgs] == ["acme", "widgets"]
    assert all(isinstance(org["id"], int) and org["url"].endswith(f"/orgs/{org['login']}") for org in orgs)
    teams = api(op, "/user/teams", granted, scheme="token").json()
    assert [(team["organization"]["login"], team["slug"]) for team in teams] == [("acme", "admins"),
                                                                                ("widgets", "devs")]
    narrow = access_token(op, scope="read:user")
    for path in ("/user/orgs", "/user/teams", "/user/emails"):
        refused = api(op, path, narrow)
        assert refused.status_code == 404 and refused.json()["message"] == "Not Found"


@pytest.mark.parametrize("authorization", ["", "Bearer gho_nope", "Basic Zm9vOmJhcg=="])
def test_api_refuses_without_a_valid_token(op: OP, authorization: str) -> None:
    response = op.http.get(f"{op.url}/github/api/v3/user", headers={"Authorization": authorization})
    assert response.status_code == 401 and response.json()["message"] == "Requires authentication"


def test_cancel_answers_access_denied(op: OP) -> None:
    params = consent(op, "deny")
    assert (params["error"], params["state"]) == ("access_denied", "st") and "code" not in params


def test_unregistered_redirect_uri_gets_a_page(op: OP) -> None:
    with httpx.Client(trust_env=False) as person:
        page = authorize(op, person, redirect_uri="http://evil.example/cb")
    assert page.status_code == 400 and GITHUB_BANNER in page.text and "location" not in page.headers


def test_plain_pkce_is_refused(op: OP) -> None:
    with httpx.Client(trust_env=False) as person:
        response = authorize(op, person, code_challenge_method="plain")
    assert dict(parse_qsl(urlsplit(response.headers["location"]).query))["error"] == "invalid_request"


def test_bad_login_is_shown_again(op: OP) -> None:
    with httpx.Client(trust_env=False) as person:
        page = authorize(op, person)
        values = consent_form(page) | {"login": "no spaces", "decision": "allow"}
        again = person.post(urljoin(str(page.url), forms(page.text)[0].action), data=values)
    assert again.status_code == 400 and GITHUB_BANNER in again.text and "Not a valid login" in again.text
