"""The development OpenID Connect provider, driven over real HTTP: discovery, the code flow, tokens, keys.

Every ID token is checked with joserfc's JWT validation against the published JWKS
(tests/devtools/oidc_relying_party.py), as a relying party would.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError

from devtools.oidc_provider import ClientConfigError, clients_from_json
from devtools.oidc_provider.__main__ import main as oidc_main
from tests.devtools.oidc_relying_party import (
    BANNER,
    CLIENT_ID,
    ES_CLIENT_ID,
    OP,
    SECRET,
    Flow,
    answer,
    authorize,
    decide,
    exchange,
    serve_provider,
    sign_in,
    verify_id_token,
)
from tests.servers import Process, free_port

with warnings.catch_warnings():  # Authlib 1.9.10 warns at import that it prefers httpx2 to the project's httpx
    import authlib.deprecate  # installs its own "always" filter: ours must come after it

    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def op() -> Iterator[OP]:
    with serve_provider() as provider:
        yield provider


@pytest.fixture(autouse=True)
def behaves(op: OP) -> Iterator[None]:
    yield
    op.misbehave("none")


# Discovery and keys


def test_discovery_document_announces_what_the_gateway_relies_on(op: OP) -> None:
    document = op.discovery()
    assert document["issuer"] == op.url
    for endpoint, path in [("authorization_endpoint", "/authorize"), ("token_endpoint", "/token"),
                           ("userinfo_endpoint", "/userinfo"), ("jwks_uri", "/jwks.json"),
                           ("end_session_endpoint", "/logout")]:
        assert document[endpoint] == op.url + path
    assert document["authorization_response_iss_parameter_supported"] is True
    assert document["backchannel_logout_supported"] is True
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert set(document["id_token_signing_alg_values_supported"]) == {"RS256", "ES256"}
    assert set(document["response_modes_supported"]) == {"query", "form_post"}
    assert set(document["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post"}


def test_jwks_publishes_public_keys_only(op: OP) -> None:
    keys = op.http.get(f"{op.url}/jwks.json").json()["keys"]
    assert {key["alg"] for key in keys} >= {"RS256", "ES256"}
    assert all(key["kid"] and key["use"] == "sig" for key in keys)
    assert not any("d" in key or "p" in key for key in keys)


# The code flow


def test_code_flow_gives_a_verified_id_token_with_the_consent_page_claims(op: OP) -> None:
    with httpx.Client(trust_env=False) as person:
        flow, params = sign_in(op, person, name="Alice Liddell", groups="staff, admins")
    assert params["iss"] == op.url
    tokens = exchange(op, flow, params["code"])
    assert tokens.status_code == 200 and tokens.headers["cache-control"] == "no-store"
    body = tokens.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    claims = verify_id_token(op, body["id_token"], flow)
    assert claims["azp"] == CLIENT_ID and claims["auth_time"] <= claims["iat"]
    assert claims["sid"] and claims["sub"] != "alice"
    assert (claims["preferred_username"], claims["name"], claims["email"], claims["email_verified"]) == \
           ("alice", "Alice Liddell", "alice@example.test", True)
    assert claims["groups"] == ["staff", "admins"]
    assert "openid2_id" not in claims
    assert jwt.decode(body["id_token"], op.key_set()).header["alg"] == "RS256"


def test_sub_is_stable_per_user_name(op: OP) -> None:
    def sub(username: str) -> str:
        with httpx.Client(trust_env=False) as person:
            flow, params = sign_in(op, person, username=username)
        return str(verify_id_token(op, exchange(op, flow, params["code"]).json()["id_token"], flow)["sub"])

    assert sub("bob") == sub("bob") != sub("carol")


def test_client_registered_for_es256_gets_es256_id_tokens(op: OP) -> None:
    with httpx.Client(trust_env=False) as person:
        flow, params = sign_in(op, person, Flow(client_id=ES_CLIENT_ID))
    id_token = exchange(op, flow, params["code"], secret="es-secret").json()["id_token"]
    verify_id_token(op, id_token, flow)
    assert jwt.decode(id_token, op.key_set()).header["alg"] == "ES256"


def test_unverified_email_is_sent_as_unverified(op: OP) -> None:
    with httpx.Client(trust_env=False) as person:
        flow, params = sign_in(op, person, email_verified=None)
    claims = verify_id_token(op, exchange(op, flow, params["code"]).json()["id_token"], flow)
    assert claims["email_verified"] is False


def test_openid2_id_is_sent_when_the_request_carries_openid2_realm(op: OP) -> None:
    flow = Flow()
    with httpx.Client(trust_env=False) as person:
        page = authorize(op, person, flow, openid2_realm="http://rp.example/")
        assert "OpenID 2.0 identifier (migration)" in page.text
        params = answer(decide(person, page, openid2_id="http://127.0.0.1:8001/id/alice"))
    claims = verify_id_token(op, exchange(op, flow, params["code"]).json()["id_token"], flow)
    assert claims["openid2_id"] == "http://127.0.0.1:8001/id/alice"


def test_openid2_id_is_not_sent_without_openid2_realm(op: OP) -> None:
    with httpx.Client(trust_env=False) as person:
        page = authorize(op, person, Flow())
        assert "OpenID 2.0 identifier" not in page.text
        flow, params = sign_in(op, person, openid2_id="http://127.0.0.1:8001/id/alice")
    assert "openid2_id" not in verify_id_token(op, exchange(op, flow, params["code"]).json()["id_token"], flow)


def test_form_post_response_mode_posts_the_code_from_a_page_without_inline_script(op: OP) -> None:
    flow = Flow()
    with httpx.Client(trust_env=False) as person:
        page = decide(person, authorize(op, person, flow, response_mode="form_post"))
    assert page.status_code == 200 and BANNER in page.text
    assert f'action="{flow.redirect_uri}"' in page.text
    assert '<script src="/static/autosubmit.js" defer></script>' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    params = answer(page)
    assert params["state"] == flow.state and params["iss"] == op.url
    verify_id_token(op, exchange(op, flow, params["code"]).json()["id_token"], flow)


def test_deny_answers_access_denied_with_state_and_iss(op: OP) -> None:
    flow = Flow()
    with httpx.Client(trust_env=False) as person:
        response = decide(person, authorize(op, person, flow), "deny")
    assert response.headers["location"].startswith(flow.redirect_uri + "?")
    params = answer(response)
    assert (params["error"], params["state"], params["iss"]) == ("access_denied", flow.state, op.url)
    assert "code" not in params


def test_consent_page_refuses_a_bad_user_name_and_keeps_the_request(op: OP) -> None:
    flow = Flow()
    with httpx.Client(trust_env=False) as person:
        page = authorize(op, person, flow)
        again = decide(person, page, username="no spaces")
        assert again.status_code == 400 and "Not a valid user name" in again.text
        params = answer(decide(person, again))
    verify_id_token(op, exchange(op, flow, params["code"]).json()["id_token"], flow)


@pytest.mark.parametrize(("fields", "message"), [
    ({"email": "not-an-address"}, "Not a valid e-mail address"),
    ({"groups": "ok, <script>"}, "Groups are separated by commas"),
    ({"name": "x" * 101}, "at most 100 characters"),
    ({"openid2_id": "javascript:alert(1)"}, "OpenID 2.0 identifier is an http(s) URL"),
])
def test_consent_page_refuses_bad_fields(op: OP, fields: dict[str, str], message: str) -> None:
    with httpx.Client(trust_env=False) as person:
        page = authorize(op, person, Flow(), openid2_realm="http://rp.example/")
        again = decide(person, page, **fields)
    assert again.status_code == 400 and message in again.text and "location" not in again.headers


def test_consent_is_answered_once(op: OP) -> None:
    with httpx.Client(trust_env=False) as person:
        page = authorize(op, person, Flow())
        assert decide(person, page).status_code == 303
        again = decide(person, page)
    assert again.status_code == 400 and "already answered" in again.text


# Refused authorization requests


@pytest.mark.parametrize("changes", [
    {"client_id": "nobody"},
    {"redirect_uri": "http://rp.example/_gateway/callback/"},
    {"redirect_uri": "http://rp.example/_gateway/callback?x=1"},
    {"redirect_uri": "http://evil.example/_gateway/callback"},
])
def test_unknown_client_or_redirect_uri_gets_a_page_not_a_redirect(op: OP, changes: dict[str, str]) -> None:
    with httpx.Client(trust_env=False) as person:
        page = authorize(op, person, Flow(), **changes)
    assert page.status_code == 400 and BANNER in page.text and "location" not in page.headers


@pytest.mark.parametrize(("changes", "error"), [
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge_method": None}, "invalid_request"),
    ({"code_challenge": None}, "invalid_request"),
    ({"code_challenge": "short"}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"scope": "email profile"}, "invalid_scope"),
    ({"response_mode": "fragment"}, "invalid_request"),
    ({"prompt": "none"}, "login_required"),
])
def test_bad_authorization_request_goes_back_as_an_error(op: OP, changes: dict[str, str], error: str) -> None:
    flow = Flow()
    with httpx.Client(trust_env=False) as person:
        response = authorize(op, person, flow, **changes)
    params = answer(response)
    assert (params["error"], params["state"], params["iss"]) == (error, flow.state, op.url)


def test_plain_pkce_is_refused_even_with_a_matching_verifier(op: OP) -> None:
    flow = Flow()
    with httpx.Client(trust_env=False) as person:
        response = authorize(op, person, flow, code_challenge=flow.verifier[:43], code_challenge_method="plain")
    assert answer(response)["error"] == "invalid_request"


# The token endpoint


def test_code_is_single_use(op: OP) -> None:
    with httpx.Client(trust_env=False) as person:
        flow, params = sign_in(op, person)
    assert exchange(op, flow, params["code"]).status_code == 200
    replay = exchange(op, flow, params["code"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"


def test_wrong_pkce_verifier_is_refused_and_burns_the_code(op: OP) -> None:
    with httpx.Client(trust_env=False) as person:
        flow, params = sign_in(op, person)
    wrong = exchange(op, flow, params["code"], verifier=Flow().verifier)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert exchange(op, flow, params["code"]).json()["error"] == "invalid_grant"


def test_missing_pkce_verifier_is_refused(op: OP) -> None:
    with httpx.Client(trust_env=False) as person:
        flow, params = sign_in(op, person)
    assert exchange(op, flow, params["code"], verifier="").json()["error"] == "invalid_grant"


def test_client_secret_post_works(op: OP) -> None:
    with httpx.Client(trust_env=False) as person:
        flow, params = sign_in(op, person)
    verify_id_token(op, exchange(op, flow, params["code"], how="post").json()["id_token"], flow)


@pytest.mark.parametrize("how", ["basic", "post"])
def test_wrong_client_secret_is_refused(op: OP, how: str) -> None:
    with httpx.Client(trust_env=False) as person:
        flow, params = sign_in(op, person)
    response = exchange(op, flow, params["code"], secret="guess", how=how)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert ("www-authenticate" in response.headers) == (how == "basic")


def test_unauthenticated_client_is_refused(op: OP) -> None:
    with httpx.Client(trust_env=False) as person:
        flow, params = sign_in(op, person)
    response = op.http.post(f"{op.url}/token", data={
        "grant_type": "authorization_code", "code": params["code"], "redirect_uri": flow.redirect_uri,
        "code_verifier": flow.verifier, "client_id": CLIENT_ID})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_code_of_another_client_is_refused(op: OP) -> None:
    with httpx.Client(trust_env=False) as person:
        flow, params = sign_in(op, person, Flow(client_id=ES_CLIENT_ID))
    stolen = Flow(client_id=CLIENT_ID, verifier=flow.verifier)
    assert exchange(op, stolen, params["code"]).json()["error"] == "invalid_grant"


def test_redirect_uri_must_match_the_authorization_request(op: OP) -> None:
    with httpx.Client(trust_env=False) as person:
        flow, params = sign_in(op, person)
    flow.redirect_uri = "http://rp.example/other-callback"
    assert exchange(op, flow, params["code"]).json()["error"] == "invalid_grant"


# Userinfo


def test_userinfo_answers_the_access_token_with_the_same_subject(op: OP) -> None:
    with httpx.Client(trust_env=False) as person:
        flow, params = sign_in(op, person, username="dora", email="dora@example.test", groups="ops")
    body = exchange(op, flow, params["code"]).json()
    claims = verify_id_token(op, body["id_token"], flow)
    info = op.http.get(f"{op.url}/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200
    assert info.json() == {"sub": claims["sub"], "preferred_username": "dora", "name": "dora",
                           "email": "dora@example.test", "email_verified": True, "groups": ["ops"]}


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic Zm9vOmJhcg=="])
def test_userinfo_refuses_without_a_valid_access_token(op: OP, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = op.http.get(f"{op.url}/userinfo", headers=headers)
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")


# Key rotation


def test_rotation_publishes_a_new_key_signs_with_it_and_keeps_the_old_one(op: OP) -> None:
    with httpx.Client(trust_env=False) as person:
        before_flow, before = sign_in(op, person)
        old_token = exchange(op, before_flow, before["code"]).json()["id_token"]
        old_kid = jwt.decode(old_token, op.key_set()).header["kid"]
        old_keys = op.key_set()
        new_kids = op.http.post(f"{op.url}/_dev/rotate").json()["signing_kids"]
        flow, params = sign_in(op, person)
    new_token = exchange(op, flow, params["code"]).json()["id_token"]
    new_kid = jwt.decode(new_token, op.key_set()).header["kid"]
    assert new_kid == new_kids["RS256"] != old_kid
    verify_id_token(op, old_token, before_flow)  # the old kid is still published
    verify_id_token(op, new_token, flow)
    with pytest.raises(InvalidKeyIdError):  # a relying party with only the old JWKS must refetch
        verify_id_token(op, new_token, flow, key_set=old_keys)


# Pages and the command line


@pytest.mark.parametrize("path", ["/", "/github/", "/nowhere"])
def test_every_page_says_it_is_a_development_tool_and_allows_no_script(op: OP, path: str) -> None:
    page = op.http.get(op.url + path)
    assert "not for production" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert "<script" not in page.text


def test_clients_json_is_checked_with_a_message_naming_the_client() -> None:
    with pytest.raises(ClientConfigError, match=r"client 'a'.*redirect_uris"):
        clients_from_json('[{"client_id": "a", "client_secret": "s", "redirect_uris": ["not a url"]}]')
    with pytest.raises(ClientConfigError, match="id_token_signed_response_alg"):
        clients_from_json('[{"client_id": "a", "client_secret": "s", "redirect_uris": ["http://a/cb"],'
                          ' "id_token_signed_response_alg": "HS256"}]')


def test_command_line_serves_discovery_for_its_base_url_and_gateway_client() -> None:
    port = free_port()
    base = f"http://localhost:{port}"
    command = [sys.executable, "-m", "devtools.oidc_provider", "--port", str(port), "--base-url", base,
               "--gateway-url", "http://127.0.0.1:8000", "--log-level", "warning"]
    process = Process(command, cwd=str(ROOT)).start(wait_port=port)
    try:
        document = httpx.get(f"http://127.0.0.1:{port}/.well-known/openid-configuration", trust_env=False).json()
        home = httpx.get(f"http://127.0.0.1:{port}/", trust_env=False).text
    finally:
        process.stop()
    assert document["issuer"] == base and document["token_endpoint"] == f"{base}/token"
    assert "http://127.0.0.1:8000/_gateway/callback" in home
    assert "http://127.0.0.1:8000/_gateway/backchannel-logout" in home


def test_groups_claim_name_is_configurable() -> None:
    with serve_provider(groups_claim="roles") as other, httpx.Client(trust_env=False) as person:
        flow, params = sign_in(other, person, groups="editors")
        body = exchange(other, flow, params["code"]).json()
        claims = verify_id_token(other, body["id_token"], flow)
        info = other.http.get(f"{other.url}/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert "roles" in other.discovery()["claims_supported"]
    assert claims["roles"] == info.json()["roles"] == ["editors"] and "groups" not in claims


def test_clients_are_read_from_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "clients.json"
    path.write_text('[{"client_id": "a", "client_secret": "s", "redirect_uris": ["http://a/cb"],'
                    ' "backchannel_logout_uri": "http://a/bc", "id_token_signed_response_alg": "ES256"}]')
    [client] = clients_from_json(str(path))
    assert (client.client_id, client.redirect_uris, client.backchannel_logout_uri,
            client.id_token_signed_response_alg) == ("a", ("http://a/cb",), "http://a/bc", "ES256")


def test_command_line_refuses_bad_clients_with_a_message() -> None:
    with pytest.raises(SystemExit, match="at least one redirect_uri"):
        oidc_main(["--clients", '[{"client_id": "a", "client_secret": "s"}]'])


def test_secret_is_masked_in_repr() -> None:
    client = clients_from_json(f'[{{"client_id": "a", "client_secret": "{SECRET}", "redirect_uris": ["http://a/"]}}]')
    assert SECRET not in repr(client)


# An independent client: Authlib, the library the gateway's OpenID Connect client uses


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_completes_the_code_flow(op: OP, auth_method: str) -> None:
    document = op.discovery()
    flow = Flow()
    with OAuth2Client(CLIENT_ID, SECRET, scope="openid email profile", redirect_uri=flow.redirect_uri,
                      code_challenge_method="S256", token_endpoint_auth_method=auth_method,
                      trust_env=False) as client, httpx.Client(trust_env=False) as person:
        url, state = client.create_authorization_url(document["authorization_endpoint"], state=flow.state,
                                                     code_verifier=flow.verifier, nonce=flow.nonce)
        callback = decide(person, person.get(url))
        token = client.fetch_token(document["token_endpoint"], authorization_response=callback.headers["location"],
                                   code_verifier=flow.verifier)
        userinfo = client.get(document["userinfo_endpoint"]).json()
    assert state == flow.state
    assert verify_id_token(op, token["id_token"], flow)["sub"] == userinfo["sub"]
