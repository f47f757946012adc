"""Which refused requests get JSON instead of a redirect (gateway.gate.answers)."""

from __future__ import annotations

import json

import pytest

from gateway.gate.answers import is_api_request, json_body, json_headers, prefers_json

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json", True),
        ("application/json, text/plain, */*", True),
        ("application/vnd.api+json", True),
        ("text/html;q=0.5, application/json", True),
        (BROWSER_ACCEPT, False),
        ("*/*", False),
        ("text/html, application/json", False),
        ("application/json;q=0", False),
        ("application/json;q=abc", False),
        ("", False),
    ],
)
def test_prefers_json(accept: str, expected: bool) -> None:
    assert prefers_json(accept) is expected


@pytest.mark.parametrize(
    ("accept", "mode", "requested_with", "path", "expected"),
    [
        (BROWSER_ACCEPT, "navigate", None, "/posts", False),
        (None, None, None, "/posts", False),  # curl, old browsers: they can follow a redirect
        (BROWSER_ACCEPT, "cors", None, "/posts", True),
        (BROWSER_ACCEPT, "no-cors", None, "/img.png", True),
        ("*/*", None, "XMLHttpRequest", "/posts", True),
        ("application/json", None, None, "/posts", True),
        (BROWSER_ACCEPT, "navigate", None, "/api/posts", True),
        (BROWSER_ACCEPT, "navigate", None, "/api", True),
        (BROWSER_ACCEPT, "navigate", None, "/apiary", False),
    ],
)
def test_is_api_request(accept: str | None, mode: str | None, requested_with: str | None, path: str,
                        expected: bool) -> None:
    assert is_api_request(accept, mode, requested_with, path, api_paths=("/api/",)) is expected


def test_json_answers_say_where_to_sign_in() -> None:
    body = json_body(401, "/login?next=%2Fapi%2Fx")
    assert json.loads(body) == {"error": "unauthorized", "message": "Sign in first.",
                                "login_url": "/login?next=%2Fapi%2Fx"}
    headers = dict(json_headers(body, 401, "/login"))
    assert headers[b"www-authenticate"].startswith(b"Cookie")
    assert headers[b"content-length"] == str(len(body)).encode()
    assert json.loads(json_body(403))["error"] == "forbidden"
    assert b"www-authenticate" not in dict(json_headers(json_body(403), 403, "/login"))
