"""Claims an ID token leaves out come from the userinfo endpoint (Core §5.3), for the same ``sub`` only.

The development provider's ``claims-in-userinfo-only`` mode sends a bare ID
token (``sub`` alone, as Core §5.4 allows when an access token is issued);
``userinfo-wrong-sub`` also answers userinfo for somebody else.
"""

from __future__ import annotations

import httpx

from tests.migration_servers import Servers, servers_fixture, unvouched_stack_fixture  # noqa: F401
from tests.pages.test_login_callback import history_cookies, whoami


def test_e_mail_user_name_and_groups_missing_from_the_id_token_come_from_userinfo(stack: Servers) -> None:
    stack.misbehave("claims-in-userinfo-only")
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        stack.oidc_sign_in(browser, "yara", email="yara@example.test", groups="staff")
        me = whoami(browser, stack.gateway)
        assert me["user"].startswith(stack.oidc_url + "#")
        assert (me["nickname"], me["email"]) == ("yara", "yara@example.test")
        headers = dict(browser.get(stack.gateway.url + "/echo").json()["headers"])
        assert headers["x-gateway-groups"] == "staff"


def test_an_unverified_e_mail_from_userinfo_is_not_passed_on(stack: Servers) -> None:
    stack.misbehave("claims-in-userinfo-only")
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        stack.oidc_sign_in(browser, "zoe", email="zoe@example.test", email_verified=None)
        me = whoami(browser, stack.gateway)
        assert me["nickname"] == "zoe" and me["email"] == ""


def test_userinfo_about_another_sub_is_refused(stack: Servers) -> None:
    """Core §5.3.2: a userinfo response for another sub (a substituted token) must not be used."""
    stack.misbehave("userinfo-wrong-sub")
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        final = stack.oidc_sign_in(browser, "abel")
        assert final.url.path == "/login" and final.url.params.get("m") == "invalid", final.url
        assert history_cookies(final, stack.gateway.settings.session_cookie) == []
        assert browser.get(stack.gateway.url + "/echo", follow_redirects=False).status_code == 302
