"""``/about`` (public, says whether the visitor is anonymous) and ``/admin`` (the group ``admins`` only).

The identities are signed as the gateway signs them, groups included: the app
believes a group only when the proof covers it.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import httpx
import pytest
from starlette.testclient import TestClient

from gateway.types import Identity
from tests.backend_app.support import ALICE, BOB, sign

ROOT = Identity("http://127.0.0.1:8001/id/admin", "admin", "admin@example.test", ("admins",))
STAFF = replace(BOB, groups=("staff",))


def get(client: TestClient, uri: str, identity: Identity | None = None) -> httpx.Response:
    return client.get(uri, headers=sign(identity, "GET", uri) if identity else None)


def publish(client: TestClient, identity: Identity, body: str) -> None:
    assert client.post("/", data={"body": body}, headers=sign(identity, "POST", "/")).status_code == 303


def test_about_page_tells_an_anonymous_visitor_so(client: TestClient) -> None:
    response = get(client, "/about")
    assert response.status_code == 200
    assert "<h1>About this microblog</h1>" in response.text
    assert "You are not signed in" in response.text
    assert 'href="/login?next=/about"' in response.text
    assert '<a href="/about" aria-current="page">About</a>' in response.text


def test_about_page_names_a_signed_in_visitor_and_their_groups(client: TestClient) -> None:
    response = get(client, "/about", ROOT)
    assert response.status_code == 200
    assert "You are signed in as <strong>admin</strong>" in response.text
    assert "(<span class=\"user-id\">http://127.0.0.1:8001/id/admin</span>)" in response.text
    assert "Your groups: admins." in response.text
    assert "You are not signed in" not in response.text


def test_admin_page_is_refused_to_an_anonymous_visitor(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    get(client, "/", ALICE)
    with caplog.at_level(logging.WARNING, logger="backend_app.pages"):
        response = get(client, "/admin")
    assert response.status_code == 403
    assert "Administrators only" in response.text
    assert "you are not signed in" in response.text
    assert ALICE.user_id not in response.text
    assert "refused /admin to nobody (not signed in): not in the group 'admins'" in caplog.text


@pytest.mark.parametrize("identity", [ALICE, STAFF, replace(ALICE, groups=("Admins", "admins2", "admin"))])
def test_admin_page_is_refused_to_someone_not_in_admins(
    client: TestClient, identity: Identity, caplog: pytest.LogCaptureFixture
) -> None:
    get(client, "/", ROOT)
    with caplog.at_level(logging.WARNING, logger="backend_app.pages"):
        response = get(client, "/admin", identity)
    assert response.status_code == 403
    assert f"you are signed in as {identity.nickname}, who is not in it" in response.text
    assert ROOT.user_id not in response.text
    assert 'href="/admin"' not in response.text
    assert f"refused /admin to {identity.user_id!r}" in caplog.text


def test_admin_page_lists_every_user_with_post_counts(client: TestClient) -> None:
    publish(client, ALICE, "one")
    publish(client, ALICE, "two")
    get(client, "/", BOB)
    response = get(client, "/admin", ROOT)
    assert response.status_code == 200
    page = response.text
    assert "3 people have visited signed in." in page
    rows = page.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    assert [row.split('href="/user/')[1].split('"')[0] for row in rows] == ["alice", "bob", "admin"]
    assert f'<td class="user-id">{ALICE.user_id}</td>' in rows[0]
    assert '<td class="count">2</td>' in rows[0]
    assert '<td class="count">0</td>' in rows[1]
    assert "<time datetime=" in rows[2]


def test_admin_link_is_shown_to_admins_only(client: TestClient) -> None:
    assert '<a href="/admin"' in get(client, "/", ROOT).text
    assert '<a href="/admin" aria-current="page">Admin</a>' in get(client, "/admin", ROOT).text
    for identity in (None, ALICE, STAFF):
        page = get(client, "/", identity).text
        assert 'href="/admin"' not in page
        assert '<a href="/about">About</a>' in page


def test_admins_group_without_a_valid_proof_is_refused(client: TestClient) -> None:
    """Adding ``admins`` to a non-admin's signed headers breaks the proof: 401, never the list."""
    signed = sign(ALICE, "GET", "/admin")
    headers = [(name, "admins" if name == "X-Gateway-Groups" else value) for name, value in signed]
    response = client.get("/admin", headers=headers)
    assert response.status_code == 401
    assert "<table" not in response.text
    alone = client.get("/admin", headers={"X-Gateway-Groups": "admins"})
    assert alone.status_code == 403  # a groups header alone claims no identity: anonymous


def test_whoami_reports_groups_only_when_there_are_some(client: TestClient) -> None:
    assert get(client, "/api/whoami", ROOT).json()["groups"] == ["admins"]
    assert "groups" not in get(client, "/api/whoami", ALICE).json()
