"""``/_gateway/account``: linking another sign-in method, and unlinking, with real providers and a real gateway.

A person signed in with OpenID 2.0 links their OpenID Connect account (a
normal sign-in that ends in a link, not a session), and from then on that
sign-in reaches the same user. The attacks: cross-site link/unlink posts,
a link finished in another session, linking what reaches someone else,
unlinking someone else's link.
"""

from __future__ import annotations

import re

import httpx

from gateway.signin.oidc.exchange import user_id
from tests.devtools.oidc_relying_party import decide
from tests.htmlforms import forms, submit
from tests.migration_servers import OIDC_NAME, Servers, servers_fixture, unvouched_stack_fixture  # noqa: F401
from tests.pages.test_account import account, token
from tests.pages.test_login_callback import whoami
from tests.signin_steps import sign_in as openid2_sign_in

ACCOUNT = "/_gateway/account"


def browser() -> httpx.Client:
    return httpx.Client(follow_redirects=True, timeout=15)


def start_link(client: httpx.Client, stack: Servers) -> httpx.Response:
    """The account page's "Link Local OpenID Connect" button: lands on the provider's consent page."""
    page = account(client, stack.gateway)
    link_form = next(i for i, form in enumerate(forms(page.text)) if form.action.endswith("/account/link"))
    consent = submit(client, page, button=("provider", stack.oidc_url), index=link_form)
    assert consent.status_code == 200 and consent.url.port != stack.gateway.server.port, consent.text[:500]
    return consent


def oidc_key(stack: Servers, username: str) -> str:
    """The user id an OIDC sign-in as ``username`` has before any link (``issuer#sub``)."""
    with browser() as fresh:
        stack.oidc_sign_in(fresh, username)
        return whoami(fresh, stack.gateway)["user"]


def sign_out(client: httpx.Client, stack: Servers) -> None:
    signed_out = client.get(stack.gateway.url + "/logout", headers={"sec-fetch-site": "same-origin"})
    assert signed_out.url.path == "/login" and signed_out.url.params["m"] == "signed-out"


def link(client: httpx.Client, stack: Servers, username: str) -> httpx.Response:
    return decide(client, start_link(client, stack), username=username)


def test_a_linked_sign_in_reaches_the_original_user(stack: Servers) -> None:
    own = oidc_key(stack, "lena-oidc")
    assert own.startswith(stack.oidc_url + "#")
    with browser() as laptop:
        openid2_sign_in(laptop, stack.gateway.url, stack.op2_id("lena"), "lena")
        page = account(laptop, stack.gateway)
        assert f"Link {OIDC_NAME}" in page.text
        final = link(laptop, stack, "lena-oidc")
        assert final.url.path == ACCOUNT and final.url.params["m"] == "linked", final.url
        assert "is linked" in final.text and own in final.text
        assert whoami(laptop, stack.gateway)["user"] == stack.op2_id("lena")  # still the same session and user
    with browser() as phone:
        stack.oidc_sign_in(phone, "lena-oidc")
        assert whoami(phone, stack.gateway)["user"] == stack.op2_id("lena")
    [record] = stack.store.list_links(stack.op2_id("lena"))
    assert (record.identity_key, record.how, record.provider) == (own, "linked", OIDC_NAME)


def test_unlinking_ends_the_link(stack: Servers) -> None:
    own = oidc_key(stack, "max-oidc")
    with browser() as laptop:
        openid2_sign_in(laptop, stack.gateway.url, stack.op2_id("max"), "max")
        link(laptop, stack, "max-oidc")
        page = account(laptop, stack.gateway)
        unlink_form = next(i for i, form in enumerate(forms(page.text)) if form.action.endswith("/account/unlink"))
        final = submit(laptop, page, index=unlink_form)
        assert final.url.params["m"] == "unlinked"
    assert stack.store.linked_user(own) is None
    assert oidc_key(stack, "max-oidc") == own


def test_cross_site_link_and_unlink_posts_are_refused(stack: Servers) -> None:
    own = oidc_key(stack, "nia-oidc")
    with browser() as victim:
        openid2_sign_in(victim, stack.gateway.url, stack.op2_id("nia"), "nia")
        link(victim, stack, "nia-oidc")
        with httpx.Client(cookies=victim.cookies, timeout=10) as no_follow:
            # A page elsewhere posts the forms: the browser sends the cookies, but no valid CSRF token.
            for path, data in (("/account/link", {"provider": stack.oidc_url}),
                               ("/account/unlink", {"identity_key": own})):
                for forged in ({}, {"csrf_token": "forged"}):
                    answer = no_follow.post(stack.gateway.url + "/_gateway" + path, data={**data, **forged})
                    assert answer.status_code == 403, (path, answer.status_code)
                    assert "location" not in answer.headers  # no sign-in started at the provider
    record = stack.store.linked_user(own)
    assert record is not None and record.user_id == stack.op2_id("nia")


def test_a_link_finished_in_another_session_is_refused(stack: Servers) -> None:
    """Started by one user, the browser then signed in as someone else: the link must not land on them."""
    own = oidc_key(stack, "oli-oidc")
    with browser() as shared:
        openid2_sign_in(shared, stack.gateway.url, stack.op2_id("oli"), "oli")
        consent = start_link(shared, stack)
        sign_out(shared, stack)
        openid2_sign_in(shared, stack.gateway.url, stack.op2_id("pat"), "pat")  # meanwhile, somebody else
        final = decide(shared, consent, username="oli-oidc")
        assert final.status_code == 400 and "Nothing was linked" in final.text
    assert stack.store.linked_user(own) is None
    assert stack.store.list_links(stack.op2_id("pat")) == [] and stack.store.list_links(stack.op2_id("oli")) == []


def test_a_link_finished_after_signing_out_is_refused(stack: Servers) -> None:
    own = oidc_key(stack, "quin-oidc")
    with browser() as laptop:
        openid2_sign_in(laptop, stack.gateway.url, stack.op2_id("quin"), "quin")
        consent = start_link(laptop, stack)
        sign_out(laptop, stack)
        final = decide(laptop, consent, username="quin-oidc")
        assert final.status_code == 400 and "Nothing was linked" in final.text
    assert stack.store.linked_user(own) is None


def test_a_link_finished_in_a_later_session_of_the_same_person_is_refused(stack: Servers) -> None:
    """Bound to the session that started it, not only to the user: signing out ended that link attempt."""
    own = oidc_key(stack, "ria-oidc")
    with browser() as laptop:
        openid2_sign_in(laptop, stack.gateway.url, stack.op2_id("ria"), "ria")
        consent = start_link(laptop, stack)
        sign_out(laptop, stack)
        openid2_sign_in(laptop, stack.gateway.url, stack.op2_id("ria"), "ria")  # the same person, a new session
        final = decide(laptop, consent, username="ria-oidc")
        assert final.status_code == 400 and "Nothing was linked" in final.text
    assert stack.store.linked_user(own) is None


def test_linking_what_already_reaches_someone_else_is_refused(stack: Servers) -> None:
    own = oidc_key(stack, "shared-oidc")
    with browser() as first:
        openid2_sign_in(first, stack.gateway.url, stack.op2_id("rita"), "rita")
        assert link(first, stack, "shared-oidc").url.params["m"] == "linked"
    with browser() as second:
        openid2_sign_in(second, stack.gateway.url, stack.op2_id("sven"), "sven")
        final = link(second, stack, "shared-oidc")
        assert final.url.path == ACCOUNT and final.url.params["m"] == "link-taken"
        assert "already reaches another account" in final.text
    record = stack.store.linked_user(own)
    assert record is not None and record.user_id == stack.op2_id("rita")  # not taken over


def test_unlinking_someone_elses_link_is_refused(stack: Servers) -> None:
    own = oidc_key(stack, "tom-oidc")
    with browser() as owner:
        openid2_sign_in(owner, stack.gateway.url, stack.op2_id("tom"), "tom")
        link(owner, stack, "tom-oidc")
    with browser() as other:
        openid2_sign_in(other, stack.gateway.url, stack.op2_id("uma"), "uma")
        page = account(other, stack.gateway)
        final = other.post(stack.gateway.url + ACCOUNT + "/unlink", data={"csrf_token": token(page),
                                                                         "identity_key": own})
        assert final.url.params["m"] == "not-yours" and "Nothing was changed" in final.text
    record = stack.store.linked_user(own)
    assert record is not None and record.user_id == stack.op2_id("tom")


def test_linking_the_sign_in_you_are_signed_in_with_is_refused(stack: Servers) -> None:
    with browser() as laptop:
        stack.oidc_sign_in(laptop, "vera-oidc")
        own = whoami(laptop, stack.gateway)["user"]
        page = account(laptop, stack.gateway)
        assert f"Link {OIDC_NAME}" not in page.text  # the other providers only
        final = laptop.post(stack.gateway.url + ACCOUNT + "/link", data={"csrf_token": token(page),
                                                                        "provider": stack.oidc_url})
        final = decide(laptop, final, username="vera-oidc")
        assert final.url.params["m"] == "link-self"
    assert stack.store.linked_user(own) is None


def test_the_issuer_and_sub_of_a_link_are_what_the_sign_in_alone_gives(stack: Servers) -> None:
    """The link records the key the sign-in would have had (not the e-mail, not the user name)."""
    own = oidc_key(stack, "walt-oidc")
    assert own == user_id(stack.oidc_url, own.split("#", 1)[1]) and re.fullmatch(r"[0-9a-f]{32}", own.split("#")[1])


def test_unlinking_ends_the_sessions_and_remember_me_the_linked_sign_in_started(stack: Servers) -> None:
    """Someone who once signed in with the linked method (a lost phone, a shared computer) keeps no way in:
    the session cookie and the remember-me cookie that sign-in left are refused once it is unlinked."""
    settings = stack.gateway.settings
    with browser() as laptop, browser() as phone:
        openid2_sign_in(laptop, stack.gateway.url, stack.op2_id("xena"), "xena")
        link(laptop, stack, "xena-oidc")
        page = phone.get(stack.gateway.url + "/login")
        consent = submit(phone, page, button=("provider", stack.oidc_url), check=("remember",))
        decide(phone, consent, username="xena-oidc")
        assert whoami(phone, stack.gateway)["user"] == stack.op2_id("xena")  # through the link
        session_cookie = phone.cookies.get(settings.session_cookie)
        remember_cookie = phone.cookies.get(settings.remember_cookie)
        assert session_cookie and remember_cookie

        page = account(laptop, stack.gateway)
        unlink_form = next(i for i, form in enumerate(forms(page.text)) if form.action.endswith("/account/unlink"))
        assert submit(laptop, page, index=unlink_form).url.params["m"] == "unlinked"

        with httpx.Client(timeout=10, cookies={settings.session_cookie: session_cookie}) as session_only:
            answer = session_only.get(stack.gateway.url + "/echo")
            assert answer.status_code == 302 and "/login" in answer.headers["location"], "the session still works"
        with browser() as restarted:
            restarted.cookies.set(settings.remember_cookie, remember_cookie)
            landed = restarted.get(stack.gateway.url + "/echo")
            assert landed.url.path == "/login", f"the remember-me cookie still signs in ({landed.url})"
        assert whoami(laptop, stack.gateway)["user"] == stack.op2_id("xena")  # the account's own sign-in stays


def test_unlinking_the_method_this_browser_signed_in_with_signs_it_out_and_says_why(stack: Servers) -> None:
    with browser() as laptop, browser() as phone:
        openid2_sign_in(laptop, stack.gateway.url, stack.op2_id("yuki"), "yuki")
        link(laptop, stack, "yuki-oidc")
        stack.oidc_sign_in(phone, "yuki-oidc")
        assert whoami(phone, stack.gateway)["user"] == stack.op2_id("yuki")
        page = account(phone, stack.gateway)
        unlink_form = next(i for i, form in enumerate(forms(page.text)) if form.action.endswith("/account/unlink"))
        final = submit(phone, page, index=unlink_form)
        assert final.url.path == "/login" and final.url.params["m"] == "unlinked-signed-out", final.url
        assert "you have been signed out" in final.text
        assert phone.get(stack.gateway.url + "/echo").url.path == "/login"
        assert whoami(laptop, stack.gateway)["user"] == stack.op2_id("yuki")
