"""The demo's access rules (devtools.stack.demo_access_settings) through nginx, in both modes.

``/about`` is public: the microblog serves it to everyone and sees every
visitor as anonymous there. ``/admin`` is for the group ``admins``, which the
demo's ``[groups]`` gives to the local provider's user ``admin``: the gateway
refuses anyone else, and the microblog would too. Everything else needs a
sign-in.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devtools.stack import DEMO_ADMIN_USER, MODES, Stack, demo_access_settings, local_claimed_id
from tests.signin_steps import sign_in
from tests.stack_fixtures import start_stack

pytestmark = pytest.mark.nginx


@pytest.fixture(scope="module", params=MODES, name="stack")
def stack_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory, request.param, demo_rules=True)


def browser(stack: Stack, username: str | None) -> httpx.Client:
    """A client signed in as ``username`` (None: anonymous) that does not follow redirects."""
    client = httpx.Client(timeout=15)
    if username is not None:
        with httpx.Client(follow_redirects=True, timeout=15) as signing:
            sign_in(signing, stack.url, stack.provider_identifier, username)
            client.cookies = signing.cookies
    return client


@pytest.fixture(scope="module", name="admin")
def admin_fixture(stack: Stack) -> Iterator[httpx.Client]:
    with browser(stack, DEMO_ADMIN_USER) as client:
        yield client


@pytest.fixture(scope="module", name="alice")
def alice_fixture(stack: Stack) -> Iterator[httpx.Client]:
    with browser(stack, "alice") as client:
        yield client


def test_the_demo_admin_is_the_local_providers_user_admin() -> None:
    settings = demo_access_settings("http://127.0.0.1:8001")
    assert settings["groups"] == {"admins": ["http://127.0.0.1:8001/id/admin"]}
    assert settings["rules"][1]["max_age"] == 120  # step-up: the admin page wants a recent sign-in
    assert local_claimed_id("http://127.0.0.1:8001", "admin") == "http://127.0.0.1:8001/id/admin"


def test_about_is_public_and_anonymous_even_when_signed_in(stack: Stack, admin: httpx.Client) -> None:
    with browser(stack, None) as anonymous:
        for client in (anonymous, admin):
            response = client.get(stack.url + "/about")
            assert response.status_code == 200, stack.logs()
            assert "You are not signed in" in response.text


def test_admin_page_is_for_the_demo_admin_only(stack: Stack, admin: httpx.Client, alice: httpx.Client) -> None:
    alice.get(stack.url + "/")  # alice is seen by the microblog
    page = admin.get(stack.url + "/admin")
    assert page.status_code == 200, stack.logs()
    assert '<a href="/admin" aria-current="page">Admin</a>' in page.text
    assert f'<td class="user-id">{stack.provider_url}/id/alice</td>' in page.text
    assert '<a href="/admin"' in admin.get(stack.url + "/").text
    assert 'href="/admin"' not in alice.get(stack.url + "/").text
    refused = alice.get(stack.url + "/admin")
    assert refused.status_code == 403
    assert "<table" not in refused.text


def test_admin_page_asks_an_anonymous_visitor_to_sign_in(stack: Stack) -> None:
    with browser(stack, None) as anonymous:
        response = anonymous.get(stack.url + "/admin")
    assert response.status_code == 302
    assert response.headers["location"].startswith("/login?next=")


def test_the_rest_needs_a_sign_in(stack: Stack, alice: httpx.Client) -> None:
    with browser(stack, None) as anonymous:
        assert anonymous.get(stack.url + "/").status_code == 302
    assert alice.get(stack.url + "/").status_code == 200
