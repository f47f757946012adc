"""The microblog's pages, with identities signed as the gateway would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from backend_app import pages
from backend_app.pages import PostRejected, clean_post_body
from gateway.types import Identity
from tests.backend_app.support import ALICE, BOB, sign


def get(client: TestClient, uri: str, identity: Identity | None = None) -> str:
    headers = sign(identity, "GET", uri) if identity else None
    response = client.get(uri, headers=headers)
    assert response.status_code == 200, response.text
    return response.text


def publish(client: TestClient, identity: Identity | None, body: str, **headers: str) -> httpx.Response:
    signed = sign(identity, "POST", "/") if identity else []
    return client.post("/", data={"body": body}, headers=[*signed, *headers.items()])


def test_anonymous_home_page_lists_posts_and_offers_sign_in(client: TestClient) -> None:
    page = get(client, "/")
    assert 'href="/login?next=/"' in page
    assert "No posts yet." in page
    assert "<form" not in page
    assert "Hi," not in page


def test_pages_carry_a_strict_content_security_policy(client: TestClient) -> None:
    policy = client.get("/").headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy


def test_signed_in_user_sees_greeting_logout_link_and_form(client: TestClient) -> None:
    page = get(client, "/", ALICE)
    assert 'Hi, <a href="/user/alice" title="alice">alice</a>' in page
    assert 'href="/logout"' in page
    assert '<form class="compose" method="post" action="/">' in page


def test_post_appears_on_the_home_page_with_its_author(client: TestClient) -> None:
    response = publish(client, ALICE, "  Hello, world!  ")
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    page = get(client, "/")
    assert '<a class="author" href="/user/alice">alice</a>' in page
    assert '<p class="body">Hello, world!</p>' in page


def test_posts_are_shown_newest_first(client: TestClient) -> None:
    publish(client, ALICE, "first")
    publish(client, BOB, "second")
    page = get(client, "/")
    assert page.index("second") < page.index("first")


def test_post_is_escaped(client: TestClient) -> None:
    publish(client, ALICE, '<script>alert("x")</script>')
    page = get(client, "/")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_nickname_is_escaped_and_made_url_safe(client: TestClient) -> None:
    mallory = Identity("https://mallory.example/", '<b>"mal"</b>', "")
    page = get(client, "/", mallory)
    assert "<b>" not in page
    assert "Hi, <a href=\"/user/bmalb\" title=\"bmalb\">bmalb</a>" in page


def test_too_long_post_is_refused_and_shown_again(client: TestClient) -> None:
    text = "x" * 281
    response = publish(client, ALICE, text)
    assert response.status_code == 400
    assert "at most 280 characters" in response.text
    assert f">{text}</textarea>" in response.text
    assert "No posts yet." in response.text


def test_post_of_exactly_280_characters_is_accepted(client: TestClient) -> None:
    assert publish(client, ALICE, "y" * 280).status_code == 303


def test_blank_post_is_refused(client: TestClient) -> None:
    response = publish(client, ALICE, " \r\n\t ")
    assert response.status_code == 400
    assert "the post is empty" in response.text


def test_anonymous_post_is_refused(client: TestClient) -> None:
    response = publish(client, None, "hello")
    assert response.status_code == 403
    assert "No posts yet." in get(client, "/")


def test_cross_site_post_is_refused(client: TestClient) -> None:
    response = publish(client, ALICE, "hello", **{"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403
    assert publish(client, ALICE, "hello", **{"Sec-Fetch-Site": "same-origin"}).status_code == 303


def test_user_page_lists_only_that_users_posts(client: TestClient) -> None:
    publish(client, ALICE, "from alice")
    publish(client, BOB, "from bob")
    page = get(client, "/user/alice")
    assert "<h1>alice</h1>" in page
    assert "from alice" in page
    assert "from bob" not in page


def test_unknown_user_page_is_404(client: TestClient) -> None:
    response = client.get("/user/nobody")
    assert response.status_code == 404
    assert "No such user" in response.text


def test_unknown_path_is_a_404_page_in_the_layout(client: TestClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert "Page not found" in response.text
    assert 'href="/static/style.css"' in response.text


def test_same_nickname_from_another_identity_gets_a_number(client: TestClient) -> None:
    other_alice = Identity("https://impostor.example/", "alice", "")
    get(client, "/", ALICE)
    assert 'Hi, <a href="/user/alice2" title="alice2">alice2</a>' in get(client, "/", other_alice)
    publish(client, other_alice, "i am alice2")
    assert "i am alice2" in get(client, "/user/alice2")
    assert "i am alice2" not in get(client, "/user/alice")


def test_sign_in_link_returns_to_the_current_page(client: TestClient) -> None:
    get(client, "/", ALICE)
    assert 'href="/login?next=/user/alice"' in get(client, "/user/alice")


def test_oversized_form_is_refused(client: TestClient) -> None:
    response = publish(client, ALICE, "z" * 20_000)
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("text", "body"),
    [("  hi  ", "hi"), ("a\r\nb", "a\nb"), ("é" * 280, "é" * 280), ("x\r\n" * 140, ("x\n" * 140).strip())],
)
def test_clean_post_body_strips_and_counts_characters(text: str, body: str) -> None:
    assert clean_post_body(text) == body


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "x" * 281])
def test_clean_post_body_refuses_empty_and_long(text: str) -> None:
    with pytest.raises(PostRejected):
        clean_post_body(text)


@pytest.mark.parametrize(("uri", "identity"), [("/", None), ("/", ALICE), ("/user/alice", ALICE), ("/admin", ALICE)])
def test_a_page_reads_the_database_in_one_trip_to_the_thread_pool(
        client: TestClient, monkeypatch: pytest.MonkeyPatch, uri: str, identity: Identity | None) -> None:
    """Each trip hands the request to a worker thread and back (the signed-in home page made two)."""
    get(client, "/", ALICE)  # alice exists, so /user/alice has a page
    trips = []
    original = pages.run_in_threadpool

    async def counted(func: Callable[..., Any], *args: Any) -> Any:
        trips.append(func)
        return await original(func, *args)

    monkeypatch.setattr(pages, "run_in_threadpool", counted)
    response = client.get(uri, headers=sign(identity, "GET", uri) if identity else None)
    assert response.status_code in (200, 403)
    assert len(trips) == 1


def test_templates_are_not_checked_on_disk_at_every_render() -> None:
    """Jinja's auto_reload would stat() each template (three per page) on every request; they ship with the app."""
    assert pages.template_environment().auto_reload is False
