"""/_gateway/account: a user's sessions, ending one, and signing out everywhere (over real HTTP)."""

from __future__ import annotations

import re
import time

import httpx

from tests.conftest import RunningGateway
from tests.servers import UvicornThread
from tests.signin_steps import sign_in


def account(client: httpx.Client, gateway: RunningGateway) -> httpx.Response:
    page = client.get(gateway.url + "/_gateway/account")
    assert page.status_code == 200
    return page


def token(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def wait_signed_out(client: httpx.Client, gateway: RunningGateway) -> bool:
    """Other requests see a revocation within the revocation refresh interval (0.2 s in the tests)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if client.get(gateway.url + "/echo", follow_redirects=False).status_code == 302:
            return True
        time.sleep(0.1)
    return False


def test_account_requires_sign_in(gateway: RunningGateway) -> None:
    response = httpx.get(gateway.url + "/_gateway/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2F_gateway%2Faccount"


def test_account_lists_sessions_and_ends_another_one(gateway: RunningGateway, provider: UvicornThread) -> None:
    with httpx.Client(follow_redirects=True) as laptop, httpx.Client(follow_redirects=True) as phone:
        sign_in(laptop, gateway.url, f"{provider.url}/id/erin", remember=True)
        sign_in(phone, gateway.url, f"{provider.url}/id/erin")
        page = account(laptop, gateway)
        assert page.text.count("<tr") == 3  # header + two sessions
        assert "this browser" in page.text and "remembered" in page.text
        other = re.search(r'name="session_id" value="([^"]+)"', page.text)
        assert other
        laptop.post(gateway.url + "/_gateway/account/revoke",
                    data={"csrf_token": token(page), "session_id": other.group(1)})
        assert wait_signed_out(phone, gateway)
        assert laptop.get(gateway.url + "/echo", follow_redirects=False).status_code == 200


def test_ending_a_session_of_another_user_does_nothing(gateway: RunningGateway, provider: UvicornThread) -> None:
    with httpx.Client(follow_redirects=True) as mallory, httpx.Client(follow_redirects=True) as victim:
        sign_in(victim, gateway.url, f"{provider.url}/id/vera")
        victim_id = re.search(r'name="session_id" value="([^"]+)"', account(victim, gateway).text)
        assert victim_id is None  # only this browser's own row, which has no "End" button
        sign_in(mallory, gateway.url, f"{provider.url}/id/mallory")
        page = account(mallory, gateway)
        session_id = gateway.app.runtime.sessions.decode(victim.cookies[gateway.settings.session_cookie],
                                                         time.time())
        assert session_id is not None
        answer = mallory.post(gateway.url + "/_gateway/account/revoke",
                              data={"csrf_token": token(page), "session_id": session_id.session_id})
        assert answer.status_code == 200  # back on mallory's account page, having ended nothing
        # The revoke is written before the answer: nothing to wait for, the store says it did not happen.
        assert session_id.session_id not in gateway.app.runtime.store.revocations_after(0, time.time())[0]
        assert not gateway.app.runtime.revocation.is_revoked(session_id.session_id)
        assert victim.get(gateway.url + "/echo", follow_redirects=False).status_code == 200


def test_sign_out_everywhere(gateway: RunningGateway, provider: UvicornThread) -> None:
    with httpx.Client(follow_redirects=True) as one, httpx.Client(follow_redirects=True) as two:
        sign_in(one, gateway.url, f"{provider.url}/id/sam", remember=True)
        sign_in(two, gateway.url, f"{provider.url}/id/sam", remember=True)
        remembered = two.cookies[gateway.settings.remember_cookie]
        page = account(one, gateway)
        final = one.post(gateway.url + "/_gateway/account/signout-everywhere", data={"csrf_token": token(page)})
        assert "signed out on every device" in final.text
        assert wait_signed_out(two, gateway)
        with httpx.Client(follow_redirects=False) as restarted:  # the remember-me series is gone too
            restarted.cookies.set(gateway.settings.remember_cookie, remembered)
            response = restarted.get(gateway.url + "/login")
            assert response.status_code == 200 and "Sign in" in response.text
