"""The development OpenID Connect provider's logout: RP-initiated (end-session) and back-channel.

The client's back-channel logout endpoint is a small receiver on loopback; every logout
token it gets is verified with joserfc (Back-Channel Logout 1.0 §2.6).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from joserfc import jwt

from tests.devtools.oidc_relying_party import (
    BANNER,
    CLIENT_ID,
    ES_CLIENT_ID,
    OP,
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


def signed_in(op: OP, username: str = "alice") -> tuple[str, dict[str, Any]]:
    """A fresh provider session: the ID token and its verified claims."""
    with httpx.Client(trust_env=False) as person:
        flow, params = sign_in(op, person, username=username)
    id_token = exchange(op, flow, params["code"]).json()["id_token"]
    return id_token, verify_id_token(op, id_token, flow)


def end_session(op: OP, **params: str) -> httpx.Response:
    return op.http.get(f"{op.url}/logout", params=params)


def received_since(op: OP, count: int) -> list[str]:
    return op.receiver.tokens[count:]


def test_end_session_sends_a_verified_logout_token_and_returns_with_state(op: OP) -> None:
    id_token, claims = signed_in(op)
    count = len(op.receiver.tokens)
    response = end_session(op, id_token_hint=id_token, post_logout_redirect_uri=op.after_logout, state="xyz")
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert response.headers["location"].startswith(op.after_logout + "&")
    assert dict(parse_qsl(location.query)) == {"signed-out": "1", "state": "xyz"}
    [logout_token] = received_since(op, count)
    logout = verify_logout_token(op, logout_token)
    assert (logout["sid"], logout["sub"]) == (claims["sid"], claims["sub"])


def test_logout_token_is_typed_and_unique(op: OP) -> None:
    count = len(op.receiver.tokens)
    for _ in range(2):
        id_token, _claims = signed_in(op)
        end_session(op, id_token_hint=id_token)
    tokens = received_since(op, count)
    assert len(tokens) == 2
    assert [jwt.decode(token, op.key_set()).header["typ"] for token in tokens] == ["logout+jwt"] * 2
    assert len({verify_logout_token(op, token)["jti"] for token in tokens}) == 2


def test_end_session_without_redirect_shows_who_was_told(op: OP) -> None:
    id_token, _claims = signed_in(op)
    page = end_session(op, id_token_hint=id_token)
    assert page.status_code == 200 and BANNER in page.text
    assert "Signed out" in page.text and op.receiver.url in page.text and "HTTP 200" in page.text


def test_a_session_ends_once(op: OP) -> None:
    id_token, _claims = signed_in(op)
    end_session(op, id_token_hint=id_token)
    count = len(op.receiver.tokens)
    assert end_session(op, id_token_hint=id_token).status_code == 200
    assert received_since(op, count) == []


@pytest.mark.parametrize("redirect", ["http://evil.example/", "http://rp.example/_gateway/login",
                                      "http://rp.example/_gateway/login?signed-out=1&x=1"])
def test_unregistered_post_logout_redirect_uri_is_refused_and_nothing_ends(op: OP, redirect: str) -> None:
    id_token, claims = signed_in(op)
    count = len(op.receiver.tokens)
    page = end_session(op, id_token_hint=id_token, post_logout_redirect_uri=redirect)
    assert page.status_code == 400 and "location" not in page.headers and BANNER in page.text
    assert received_since(op, count) == []
    ended = op.http.post(f"{op.url}/_dev/backchannel-logout", json={"sid": claims["sid"]}).json()
    assert ended["sessions_ended"] == [claims["sid"]]


def test_post_logout_redirect_uri_without_hint_or_client_id_is_refused(op: OP) -> None:
    assert end_session(op, post_logout_redirect_uri=op.after_logout).status_code == 400


def test_post_logout_redirect_uri_with_client_id_only_redirects_without_ending_a_session(op: OP) -> None:
    count = len(op.receiver.tokens)
    response = end_session(op, client_id=CLIENT_ID, post_logout_redirect_uri=op.after_logout)
    assert response.status_code == 303 and received_since(op, count) == []


@pytest.mark.parametrize("hint", ["garbage", "a.b.c"])
def test_forged_id_token_hint_is_refused(op: OP, hint: str) -> None:
    assert end_session(op, id_token_hint=hint, post_logout_redirect_uri=op.after_logout).status_code == 400


def test_id_token_hint_of_another_client_than_client_id_is_refused(op: OP) -> None:
    id_token, _claims = signed_in(op)
    assert end_session(op, id_token_hint=id_token, client_id=ES_CLIENT_ID).status_code == 400


def test_dev_backchannel_logout_by_user_name_ends_every_session_of_that_user(op: OP) -> None:
    _token1, first = signed_in(op, "erin")
    _token2, second = signed_in(op, "erin")
    count = len(op.receiver.tokens)
    report = op.http.post(f"{op.url}/_dev/backchannel-logout", json={"username": "erin"}).json()
    assert sorted(report["sessions_ended"]) == sorted([first["sid"], second["sid"]])
    assert [delivery["status"] for delivery in report["deliveries"]] == [200, 200]
    sids = {verify_logout_token(op, token)["sid"] for token in received_since(op, count)}
    assert sids == {first["sid"], second["sid"]}


def test_dev_backchannel_logout_without_a_session_sends_a_sub_only_token(op: OP) -> None:
    _token, claims = signed_in(op, "frank")
    op.http.post(f"{op.url}/_dev/backchannel-logout", json={"username": "frank"})
    count = len(op.receiver.tokens)
    report = op.http.post(f"{op.url}/_dev/backchannel-logout", json={"username": "frank", "client_id": CLIENT_ID})
    assert report.json()["sessions_ended"] == []
    [token] = received_since(op, count)
    logout = verify_logout_token(op, token)
    assert logout["sub"] == claims["sub"] and "sid" not in logout


@pytest.mark.parametrize("body", [{}, {"username": "no spaces"}, {"username": "a", "client_id": "nobody"}, []])
def test_dev_backchannel_logout_refuses_bad_requests(op: OP, body: object) -> None:
    assert op.http.post(f"{op.url}/_dev/backchannel-logout", json=body).status_code == 400
