"""The proof check in front of every route (backend_app.identity.ProofMiddleware)."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from backend_app import create_app, load_app_settings
from gateway.proof import HeaderNames
from gateway.types import Identity
from tests.backend_app.support import ALICE, BOB, KEY, TEST_HOST, sign
from tests.test_proof import old_format_proof

REFUSED = "The gateway&#39;s proof is missing or invalid"


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert REFUSED in response.text


def test_request_without_identity_headers_is_anonymous(client: TestClient) -> None:
    assert client.get("/api/whoami").json() == {"user": None}


def test_signed_identity_is_what_the_app_sees(client: TestClient) -> None:
    response = client.get("/api/whoami", headers=sign(ALICE, "GET", "/api/whoami"))
    assert response.json() == {"user": ALICE.user_id, "nickname": "alice", "email": "alice@example.com"}


def test_non_ascii_identity_is_decoded_after_verification(client: TestClient) -> None:
    identity = Identity("https://zoë.example/", "zoë", "zoë@example.com")
    response = client.get("/api/whoami", headers=sign(identity, "GET", "/api/whoami"))
    assert response.json() == {"user": identity.user_id, "nickname": "zoë", "email": "zoë@example.com"}


def test_forged_headers_without_proof_are_refused(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="backend_app.identity"):
        response = client.get("/", headers={"X-Gateway-User": ALICE.user_id, "X-Gateway-Nickname": "alice"})
    assert_refused(response)
    assert "identity header without proof" in caplog.text


def test_proof_without_user_is_refused(client: TestClient) -> None:
    headers = [h for h in sign(ALICE, "GET", "/") if h[0] != "X-Gateway-User"]
    assert_refused(client.get("/", headers=headers))


def test_tampered_identity_is_refused(client: TestClient) -> None:
    headers = [(name, BOB.user_id if name == "X-Gateway-User" else value) for name, value in sign(ALICE, "GET", "/")]
    assert_refused(client.get("/", headers=headers))


def test_tampered_nickname_is_refused(client: TestClient) -> None:
    headers = [(name, "admin" if name == "X-Gateway-Nickname" else value) for name, value in sign(ALICE, "GET", "/")]
    assert_refused(client.get("/", headers=headers))


def test_proof_for_another_uri_is_refused(client: TestClient) -> None:
    assert_refused(client.get("/api/whoami", headers=sign(ALICE, "GET", "/")))


def test_proof_for_another_query_is_refused(client: TestClient) -> None:
    assert_refused(client.get("/api/whoami?a=2", headers=sign(ALICE, "GET", "/api/whoami?a=1")))


def test_proof_for_another_method_is_refused(client: TestClient) -> None:
    response = client.post("/", data={"body": "hello"}, headers=sign(ALICE, "GET", "/"))
    assert_refused(response)


def test_proof_signed_with_another_key_is_refused(client: TestClient) -> None:
    assert_refused(client.get("/api/whoami", headers=sign(ALICE, "GET", "/api/whoami", key="another-key" * 4)))


def test_expired_proof_is_refused(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    headers = sign(ALICE, "GET", "/api/whoami", seconds_ago=31)
    with caplog.at_level(logging.WARNING, logger="backend_app.identity"):
        assert_refused(client.get("/api/whoami", headers=headers))
    assert "proof expired" in caplog.text


def test_recent_proof_is_accepted(client: TestClient) -> None:
    headers = sign(ALICE, "GET", "/api/whoami", seconds_ago=20)
    assert client.get("/api/whoami", headers=headers).json()["user"] == ALICE.user_id


def test_max_age_is_configurable(tmp_path: Path) -> None:
    settings = load_app_settings(
        {"MICROBLOG_PROOF_KEY": KEY, "MICROBLOG_STATE_DIR": str(tmp_path), "MICROBLOG_PROOF_MAX_AGE": "2"}
    )
    with TestClient(create_app(settings)) as client:
        assert_refused(client.get("/api/whoami", headers=sign(ALICE, "GET", "/api/whoami", seconds_ago=5)))


def test_repeated_identity_header_is_refused(client: TestClient) -> None:
    headers = [*sign(ALICE, "GET", "/api/whoami"), ("X-Gateway-User", BOB.user_id)]
    assert_refused(client.get("/api/whoami", headers=headers))


def test_static_files_are_checked_too(client: TestClient) -> None:
    assert client.get("/static/style.css").status_code == 200
    assert_refused(client.get("/static/style.css", headers={"X-Gateway-User": ALICE.user_id}))


def test_refusal_page_uses_the_layout_and_is_anonymous(client: TestClient) -> None:
    response = client.get("/", headers={"X-Gateway-User": ALICE.user_id})
    assert '<link rel="stylesheet" href="/static/style.css">' in response.text
    assert "Hi," not in response.text
    assert response.headers["content-type"].startswith("text/html")


def test_configured_header_names_are_used(tmp_path: Path) -> None:
    settings = load_app_settings(
        {
            "MICROBLOG_PROOF_KEY": KEY,
            "MICROBLOG_STATE_DIR": str(tmp_path),
            "MICROBLOG_HEADER_USER": "Remote-User",
            "MICROBLOG_HEADER_NICKNAME": "Remote-Nick",
            "MICROBLOG_HEADER_EMAIL": "Remote-Email",
            "MICROBLOG_HEADER_PROOF": "Remote-Proof",
        }
    )
    names = HeaderNames("Remote-User", "Remote-Nick", "Remote-Email", "Remote-Proof")
    with TestClient(create_app(settings)) as client:
        response = client.get("/api/whoami", headers=sign(ALICE, "GET", "/api/whoami", names=names))
        assert response.json()["user"] == ALICE.user_id
        # The default names mean nothing to this app: no identity is claimed.
        assert client.get("/api/whoami", headers=sign(ALICE, "GET", "/api/whoami")).json() == {"user": None}


def test_moving_the_end_of_the_email_into_the_proof_is_refused(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    victim = Identity("https://openid.example/id/bob", "bob", "bob@victim.org.attacker.example")
    headers = dict(sign(victim, "GET", "/api/whoami"))
    headers["X-Gateway-Email"] = "bob@victim.org"
    headers["X-Gateway-Proof"] = "attacker.example." + headers["X-Gateway-Proof"]
    with caplog.at_level(logging.WARNING, logger="backend_app.identity"):
        assert_refused(client.get("/api/whoami", headers=headers))
    assert "proof is not in the v3 format" in caplog.text


def test_proof_for_another_host_is_refused(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    """A proof seen by one app behind the gateway (or in a log) does not work on another."""
    headers = sign(ALICE, "GET", "/api/whoami", host="wiki.example")
    with caplog.at_level(logging.WARNING, logger="backend_app.identity"):
        assert_refused(client.get("/api/whoami", headers=headers))
    assert "proof does not match" in caplog.text
    assert client.get("/api/whoami", headers=[*headers, ("Host", "wiki.example")]).json()["user"] == ALICE.user_id


def test_proof_is_checked_against_the_first_host_header(client: TestClient) -> None:
    headers = sign(ALICE, "GET", "/api/whoami", host="wiki.example")
    both = [*headers, ("Host", "wiki.example"), ("Host", "admin.example")]
    assert client.get("/api/whoami", headers=both).json()["user"] == ALICE.user_id
    swapped = [*headers, ("Host", "admin.example"), ("Host", "wiki.example")]
    assert_refused(client.get("/api/whoami", headers=swapped))


def test_host_is_compared_without_letter_case(client: TestClient) -> None:
    headers = sign(ALICE, "GET", "/api/whoami", host=TEST_HOST.upper())
    assert client.get("/api/whoami", headers=headers).json()["user"] == ALICE.user_id


def test_old_format_proof_is_refused(client: TestClient) -> None:
    user, nickname, email = ALICE.user_id, ALICE.nickname, ALICE.email
    headers = {"X-Gateway-User": user, "X-Gateway-Nickname": nickname, "X-Gateway-Email": email,
               "X-Gateway-Proof": old_format_proof("GET", "/api/whoami", user, nickname, email, key=KEY)}
    assert_refused(client.get("/api/whoami", headers=headers))
