"""The microblog over real HTTP (uvicorn on loopback): what a gateway would talk to."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from backend_app import AppSettings, create_app
from tests.backend_app.support import ALICE, sign
from tests.servers import UvicornThread


@pytest.fixture
def server(settings: AppSettings) -> Iterator[UvicornThread]:
    with UvicornThread(create_app(settings)) as running:
        yield running


def test_signed_requests_over_http(server: UvicornThread, settings: AppSettings) -> None:
    with httpx.Client(base_url=server.url, follow_redirects=False) as http:
        assert http.get("/api/whoami").json() == {"user": None}
        posted = http.post("/", data={"body": "over <the> wire"}, headers=sign(ALICE, "POST", "/"))
        assert posted.status_code == 303
        page = http.get("/", headers=sign(ALICE, "GET", "/"))
        assert "Hi, <a" in page.text
        assert "over &lt;the&gt; wire" in page.text
    assert settings.sqlite_path.exists()


def test_proof_covers_the_raw_target_over_http(server: UvicornThread) -> None:
    uri = "/api/whoami?next=%2Fuser%2Fb%C3%B6b&x"
    with httpx.Client(base_url=server.url) as http:
        assert http.get(uri, headers=sign(ALICE, "GET", uri)).json()["user"] == ALICE.user_id
        decoded = "/api/whoami?next=/user/böb&x"
        assert http.get(uri, headers=sign(ALICE, "GET", decoded)).status_code == 401


def test_forged_headers_are_refused_over_http(server: UvicornThread) -> None:
    with httpx.Client(base_url=server.url) as http:
        response = http.get("/", headers={"X-Gateway-User": ALICE.user_id, "X-Gateway-Proof": "1.forged"})
    assert response.status_code == 401
    assert "The gateway&#39;s proof is missing or invalid" in response.text
