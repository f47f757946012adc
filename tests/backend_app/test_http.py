"""The microblog over real HTTP (uvicorn on loopback): what a gateway would talk to."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from backend_app import AppSettings, create_app
from gateway.types import Identity
from tests.backend_app.support import ALICE, sign
from tests.servers import UvicornThread


@pytest.fixture
def server(settings: AppSettings) -> Iterator[UvicornThread]:
    with UvicornThread(create_app(settings)) as running:
        yield running


def host_of(server: UvicornThread) -> str:
    """The Host header httpx sends to the server: what the app checks the proof against."""
    return httpx.URL(server.url).netloc.decode("ascii")


def test_signed_requests_over_http(server: UvicornThread, settings: AppSettings) -> None:
    host = host_of(server)
    with httpx.Client(base_url=server.url, follow_redirects=False) as http:
        assert http.get("/api/whoami").json() == {"user": None}
        posted = http.post("/", data={"body": "over <the> wire"}, headers=sign(ALICE, "POST", "/", host=host))
        assert posted.status_code == 303
        page = http.get("/", headers=sign(ALICE, "GET", "/", host=host))
        assert "Hi, <a" in page.text
        assert "over &lt;the&gt; wire" in page.text
    assert settings.sqlite_path.exists()


def test_proof_covers_the_raw_target_over_http(server: UvicornThread) -> None:
    uri = "/api/whoami?next=%2Fuser%2Fb%C3%B6b&x"
    host = host_of(server)
    with httpx.Client(base_url=server.url) as http:
        assert http.get(uri, headers=sign(ALICE, "GET", uri, host=host)).json()["user"] == ALICE.user_id
        decoded = "/api/whoami?next=/user/böb&x"
        assert http.get(uri, headers=sign(ALICE, "GET", decoded, host=host)).status_code == 401


def test_proof_is_bound_to_the_host_over_http(server: UvicornThread) -> None:
    """A proof for one site behind the gateway is refused by an app reached under another Host."""
    with httpx.Client(base_url=server.url) as http:
        other = http.get("/api/whoami", headers=sign(ALICE, "GET", "/api/whoami", host="wiki.example"))
        assert other.status_code == 401
        named = [*sign(ALICE, "GET", "/api/whoami", host="wiki.example"), ("Host", "wiki.example")]
        assert http.get("/api/whoami", headers=named).json()["user"] == ALICE.user_id


def test_forged_headers_are_refused_over_http(server: UvicornThread) -> None:
    with httpx.Client(base_url=server.url) as http:
        response = http.get("/", headers={"X-Gateway-User": ALICE.user_id, "X-Gateway-Proof": "1.forged"})
    assert response.status_code == 401
    assert "The gateway&#39;s proof is missing or invalid" in response.text


def test_admin_page_over_http_follows_the_signed_groups(server: UvicornThread) -> None:
    """The groups header crosses a real HTTP hop intact (a comma inside a name included) and the proof covers it."""
    host = host_of(server)
    admin = Identity("https://op.example/id/root", "root", "", ("admins", "r&d, lab"))
    with httpx.Client(base_url=server.url) as http:
        signed = sign(admin, "GET", "/api/whoami", host=host)
        assert http.get("/api/whoami", headers=signed).json()["groups"] == ["admins", "r&d, lab"]
        assert http.get("/admin", headers=sign(admin, "GET", "/admin", host=host)).status_code == 200
        assert http.get("/admin", headers=sign(ALICE, "GET", "/admin", host=host)).status_code == 403
        forged = [(n, "admins" if n == "X-Gateway-Groups" else v) for n, v in sign(ALICE, "GET", "/admin", host=host)]
        assert http.get("/admin", headers=forged).status_code == 401
