"""Browser-like steps of the OpenID sign-in, over real HTTP (httpx + HTML forms)."""

from __future__ import annotations

import httpx

from tests.htmlforms import submit


def follow_autopost(client: httpx.Client, response: httpx.Response) -> httpx.Response:
    """Submit auto-posting forms (long OpenID messages) as a browser's script would."""
    for _ in range(3):
        if 'id="autopost"' not in response.text:
            break
        response = submit(client, response)
    return response


def start_login(client: httpx.Client, gateway_url: str, identifier: str, *, remember: bool = False,
                next_target: str | None = None, login_path: str = "/login") -> httpx.Response:
    """Open the login page (``login_path``: the gateway's route_prefix moves it), type an identifier and
    submit: lands on the provider's consent page."""
    page = client.get(f"{gateway_url}{login_path}", params={"next": next_target} if next_target else None)
    assert page.status_code == 200, page.text
    response = submit(client, page, {"identifier": identifier}, check=("remember",) if remember else ())
    return follow_autopost(client, response)


def consent(client: httpx.Client, page: httpx.Response, username: str, decision: str = "allow") -> httpx.Response:
    """Answer the development provider's consent page."""
    assert 'name="decision"' in page.text, page.text[:2000]
    data = {"username": username} if 'readonly' not in page.text else {}
    response = submit(client, page, data, button=("decision", decision))
    return follow_autopost(client, response)


def sign_in(client: httpx.Client, gateway_url: str, identifier: str, username: str = "alice", *,
            remember: bool = False, next_target: str | None = None, login_path: str = "/login") -> httpx.Response:
    page = start_login(client, gateway_url, identifier, remember=remember, next_target=next_target,
                       login_path=login_path)
    return consent(client, page, username)
