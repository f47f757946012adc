"""Hostile or broken providers: every bad answer ends on the login page, logged, without a session.

A real gateway (proxy mode, in front of the echo app) talks to
:class:`tests.hostile_provider.HostileProvider`, a python3-openid server
that misbehaves as each test says. A refusal is a 303 to ``/login?m=<code>``
with no session cookie, a log line saying why, never a 500; and the gateway
keeps serving afterwards.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from openid.message import OPENID2_NS, Message
from openid.store.nonce import mkNonce

from gateway.pages.render import MESSAGES
from tests.conftest import RunningGateway
from tests.hostile_provider import (
    AX_EMAIL,
    AX_NICKNAME,
    AX_NS,
    SREG_NS,
    HostileProvider,
    answer_of,
    app_sees,
    assert_normal_sign_in,
    assert_refused,
    assert_still_serving,
    drop,
    drop_signed,
    flip_signature,
    hostile_answer,
    logged,
    provider_request,
    put,
    session_cookies,
    set_signed,
    stale_nonce,
    submit_identifier,
    with_raw_param,
)
from tests.servers import UvicornThread
from tests.signin_steps import sign_in


@pytest.fixture
def hostile() -> Iterator[HostileProvider]:
    with HostileProvider() as op:
        yield op


def refused(browser: httpx.Client, gateway: RunningGateway, callback_url: str, code: str = "invalid") -> None:
    """Open the provider's answer: the login page with the message for ``code``; the gateway carries on."""
    response = browser.get(callback_url, follow_redirects=False)
    assert_refused(response, code)
    page = browser.get(gateway.url + response.headers["location"])
    assert MESSAGES[code][1] in html.unescape(page.text)
    assert_still_serving(browser, gateway.url)


def test_well_behaved_hostile_provider_signs_in_its_own_identifier(
    gateway: RunningGateway, hostile: HostileProvider, browser: httpx.Client
) -> None:
    """The control: without misbehaviour the harness signs in, so each refusal below is the misbehaviour's."""
    final = browser.get(hostile_answer(browser, gateway.url, hostile.op_identifier))
    assert session_cookies(final)
    seen = app_sees(browser, gateway.url)
    assert (seen["x-gateway-user"], seen["x-gateway-nickname"], seen["x-gateway-email"]) == (
        hostile.identifier(), "mallory", "mallory@hostile.test")


# -- a malformed or tampered id_res ----------------------------------------------------------------


MISSING = {  # field -> why the gateway refuses when the provider signed an answer without it
    "return_to": "Missing required field 'return_to'",
    "response_nonce": "Nonce missing from response",
    "op_endpoint": "Missing required field 'op_endpoint'",
    "claimed_id": "openid.identity is present without openid.claimed_id",
    "identity": "openid.claimed_id is present without openid.identity",
}


REMOVED_AFTER_SIGNING = {
    **{field: f"Missing required field '{field}'" for field in ("sig", "signed", "assoc_handle", "return_to",
                                                                "op_endpoint")},
    "response_nonce": "Bad signature",  # still named in openid.signed
    "claimed_id": MISSING["claimed_id"],
    "identity": MISSING["identity"],
}


@pytest.mark.parametrize("field", list(REMOVED_AFTER_SIGNING))
def test_id_res_with_a_field_removed_after_signing_is_refused(
    gateway: RunningGateway, hostile: HostileProvider, browser: httpx.Client, caplog: pytest.LogCaptureFixture,
    field: str
) -> None:
    hostile.misbehave(after_signing=drop(field))
    refused(browser, gateway, hostile_answer(browser, gateway.url, hostile.op_identifier))
    assert REMOVED_AFTER_SIGNING[field] in logged(caplog)


@pytest.mark.parametrize("field", list(MISSING))
def test_signed_id_res_missing_a_required_field_is_refused(
    gateway: RunningGateway, hostile: HostileProvider, browser: httpx.Client, caplog: pytest.LogCaptureFixture,
    field: str
) -> None:
    hostile.misbehave(before_signing=drop_signed(field))
    refused(browser, gateway, hostile_answer(browser, gateway.url, hostile.op_identifier))
    assert MISSING[field] in logged(caplog)


def test_assertion_about_no_identifier_is_refused(gateway: RunningGateway, hostile: HostileProvider,
                                                  browser: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    """OpenID 2.0 §10.1 lets an assertion be about no identifier; it proves nobody, so it signs in nobody."""
    hostile.misbehave(before_signing=drop_signed("claimed_id", "identity"))
    refused(browser, gateway, hostile_answer(browser, gateway.url, hostile.op_identifier))
    assert "sign-in failed" in logged(caplog)


@pytest.mark.parametrize("associate", [True, False], ids=["associated", "stateless"])
def test_bad_signature_is_refused(gateway: RunningGateway, hostile: HostileProvider, browser: httpx.Client,
                                  caplog: pytest.LogCaptureFixture, associate: bool) -> None:
    hostile.misbehave(associate=associate, after_signing=flip_signature)
    refused(browser, gateway, hostile_answer(browser, gateway.url, hostile.op_identifier))
    assert ("Bad signature" if associate else "denied check_authentication") in logged(caplog)
    assert hostile.seen["check_authentication"] == (0 if associate else 1)


@pytest.mark.parametrize("field", ["sreg.email", "identifier", "response_nonce"])
def test_signed_field_modified_after_signing_is_refused(gateway: RunningGateway, hostile: HostileProvider,
                                                        browser: httpx.Client, caplog: pytest.LogCaptureFixture,
                                                        field: str) -> None:
    changes = {
        "sreg.email": {"openid.sreg.email": "admin@example.test"},
        # another identifier of the same provider, both fields: discovery agrees, only the signature can tell
        "identifier": {f"openid.{name}": hostile.identifier("admin") for name in ("claimed_id", "identity")},
        "response_nonce": {"openid.response_nonce": mkNonce()},
    }[field]
    hostile.misbehave(after_signing=lambda args: args.update(changes))
    refused(browser, gateway, hostile_answer(browser, gateway.url, hostile.op_identifier))
    assert "Bad signature" in logged(caplog)


# -- association handles and check_authentication --------------------------------------------------


@pytest.mark.parametrize("verdict", ["honest", "invalid"])
@pytest.mark.parametrize("how", ["never-associated", "renamed"])
def test_unknown_association_handle_is_refused_by_check_authentication(
    gateway: RunningGateway, hostile: HostileProvider, browser: httpx.Client, caplog: pytest.LogCaptureFixture,
    how: str, verdict: str
) -> None:
    if how == "never-associated":
        hostile.misbehave(unknown_handle=True, check_authentication=verdict)
    else:
        hostile.misbehave(after_signing=put(openid__assoc_handle="{HMAC-SHA1}{forged}{AAAA}"),
                          check_authentication=verdict)
    refused(browser, gateway, hostile_answer(browser, gateway.url, hostile.op_identifier))
    assert hostile.seen["check_authentication"] == 1  # the gateway asked, and took the "no"
    assert "denied check_authentication" in logged(caplog)


def test_lying_provider_vouches_only_for_its_own_identifiers(
    gateway: RunningGateway, hostile: HostileProvider, browser: httpx.Client
) -> None:
    """is_valid:true for anything lets an OP sign in its own users without a signature: it could anyway."""
    hostile.misbehave(unknown_handle=True, check_authentication="lie", after_signing=flip_signature)
    browser.get(hostile_answer(browser, gateway.url, hostile.op_identifier))
    assert app_sees(browser, gateway.url)["x-gateway-user"] == hostile.identifier()
    assert hostile.seen["check_authentication"] == 1


@pytest.mark.parametrize("op_endpoint", ["its own", "the victim's provider's"])
def test_lying_provider_cannot_assert_another_providers_identifier(
    gateway: RunningGateway, hostile: HostileProvider, provider: UvicornThread, browser: httpx.Client,
    caplog: pytest.LogCaptureFixture, op_endpoint: str
) -> None:
    """What protects is discovery, not the signature: the claimed identifier is re-discovered, and
    check_authentication goes to the endpoint *its* page names, never to whoever sent the answer."""
    victim = f"{provider.url}/id/alice"
    forge = set_signed("op_endpoint", f"{provider.url}/endpoint") if op_endpoint != "its own" else None
    hostile.misbehave(claimed_id=victim, unknown_handle=True, check_authentication="lie", before_signing=forge)
    refused(browser, gateway, hostile_answer(browser, gateway.url, hostile.op_identifier))
    assert hostile.seen["check_authentication"] == 0  # its "yes" was never asked for
    assert ("No matching endpoint" if forge is None else "denied check_authentication") in logged(caplog)


# -- replays and stale answers ---------------------------------------------------------------------


def test_replayed_response_is_refused(gateway: RunningGateway, hostile: HostileProvider, browser: httpx.Client,
                                      caplog: pytest.LogCaptureFixture) -> None:
    callback = hostile_answer(browser, gateway.url, hostile.op_identifier)
    state = {k: v for k, v in browser.cookies.items() if k.startswith("gw_state_")}
    [state_id] = [name.removeprefix("gw_state_") for name in state]
    store = gateway.app.runtime.store
    login_state = store.take_login_state(state_id, time.time())  # a copy, to put back for the replay
    assert login_state is not None
    store.put_login_state(login_state)
    first = browser.get(callback, follow_redirects=False)
    assert first.status_code == 303 and not first.headers["location"].startswith("/login")
    with httpx.Client(cookies=state) as attacker:  # the state cookie put back: the login state is used up
        refused(attacker, gateway, callback, "expired")
        store.put_login_state(login_state)  # and the login state put back too: only the nonce store stands
        refused(attacker, gateway, callback)
    assert "Nonce already used" in logged(caplog)


@pytest.mark.parametrize("age_hours", [6, -6], ids=["six-hours-old", "six-hours-ahead"])
def test_properly_signed_response_with_an_out_of_range_nonce_is_refused(
    gateway: RunningGateway, hostile: HostileProvider, browser: httpx.Client, caplog: pytest.LogCaptureFixture,
    age_hours: int
) -> None:
    hostile.misbehave(before_signing=stale_nonce(age_hours * 3600))
    refused(browser, gateway, hostile_answer(browser, gateway.url, hostile.op_identifier))
    assert "Nonce already used or out of range" in logged(caplog)


def rewrite_return_to(change: Callable[[str], str]) -> Callable[[Message], None]:
    def edit(message: Message) -> None:
        message.setArg(OPENID2_NS, "return_to", change(message.getArg(OPENID2_NS, "return_to")))
    return edit


@pytest.mark.parametrize("change", [
    lambda url: url.replace("/_gateway/callback", "/_gateway/callback/other"),
    lambda url: url.replace(urlsplit(url).netloc, "gateway.evil.example"),
    lambda url: url.replace("http://", "https://"),
], ids=["another-path", "another-host", "another-scheme"])
def test_signed_return_to_of_another_url_is_refused(gateway: RunningGateway, hostile: HostileProvider,
                                                    browser: httpx.Client, caplog: pytest.LogCaptureFixture,
                                                    change: Callable[[str], str]) -> None:
    hostile.misbehave(before_signing=rewrite_return_to(change))
    refused(browser, gateway, hostile_answer(browser, gateway.url, hostile.op_identifier))
    assert "return_to does not match" in logged(caplog)


# -- authority: an endpoint may assert only identifiers that name it ----------------------------------


@pytest.mark.parametrize("flow", ["identifier_select", "claimed_id"])
def test_endpoint_not_authoritative_for_the_claimed_identifier_is_refused(
    gateway: RunningGateway, hostile: HostileProvider, provider: UvicornThread, browser: httpx.Client,
    caplog: pytest.LogCaptureFixture, flow: str
) -> None:
    hostile.misbehave(claimed_id=f"{provider.url}/id/alice")
    typed = hostile.op_identifier if flow == "identifier_select" else hostile.identifier("mallory")
    refused(browser, gateway, hostile_answer(browser, gateway.url, typed))
    assert "No matching endpoint" in logged(caplog)


def test_answer_from_an_op_the_delegating_page_does_not_name_is_refused(
    gateway: RunningGateway, hostile: HostileProvider, provider: UvicornThread, browser: httpx.Client,
    caplog: pytest.LogCaptureFixture
) -> None:
    """The page delegates to the development provider; the hostile endpoint answers in its place."""
    hostile.misbehave(delegate=(f"{provider.url}/endpoint", f"{provider.url}/id/alice"))
    request = provider_request(browser, gateway.url, hostile.identifier("alice"))
    assert request.startswith(f"{provider.url}/endpoint?")
    refused(browser, gateway, answer_of(browser, request.replace(f"{provider.url}/endpoint", hostile.endpoint, 1)))
    assert "No matching endpoint" in logged(caplog)


def test_delegating_page_signs_in_as_itself_not_as_the_delegate(
    gateway: RunningGateway, hostile: HostileProvider, provider: UvicornThread, browser: httpx.Client
) -> None:
    """A page naming alice's OP-local identifier gets its own account, never alice's."""
    hostile.misbehave(delegate=(f"{provider.url}/endpoint", f"{provider.url}/id/alice"))
    sign_in(browser, gateway.url, hostile.identifier("alice"), "alice")
    assert app_sees(browser, gateway.url)["x-gateway-user"] == hostile.identifier("alice")


# -- unsigned extension fields -------------------------------------------------------------------


UNSIGNED_AX = {"openid.ns.ax": AX_NS, "openid.ax.mode": "fetch_response",
               "openid.ax.type.mail": AX_EMAIL, "openid.ax.value.mail": "admin@example.test",
               "openid.ax.type.nick": AX_NICKNAME, "openid.ax.value.nick": "admin"}
UNSIGNED_SREG = {"openid.ns.sreg": SREG_NS, "openid.sreg.email": "admin@example.test", "openid.sreg.nickname": "admin"}


@pytest.mark.parametrize(("signed", "unsigned"), [
    ({}, UNSIGNED_SREG),
    ({"sreg": {"nickname": "mallory"}}, {"openid.sreg.email": "admin@example.test"}),
    ({}, UNSIGNED_AX),
    ({"ax": {AX_NICKNAME: "mallory"}}, {"openid.ax.type.mail": AX_EMAIL, "openid.ax.value.mail": "admin@example.test",
                                        "openid.ax.count.mail": "1"}),
], ids=["sreg-added", "sreg-next-to-signed-sreg", "ax-added", "ax-next-to-signed-ax"])
def test_unsigned_extension_fields_never_reach_the_app(
    gateway: RunningGateway, hostile: HostileProvider, browser: httpx.Client, caplog: pytest.LogCaptureFixture,
    signed: dict[str, dict[str, str]], unsigned: dict[str, str]
) -> None:
    caplog.set_level(logging.INFO, "gateway.openid")
    hostile.misbehave(sreg=signed.get("sreg", {}), ax=signed.get("ax", {}),
                      after_signing=lambda args: args.update(unsigned))
    browser.get(hostile_answer(browser, gateway.url, hostile.op_identifier))
    seen = app_sees(browser, gateway.url)
    assert seen["x-gateway-user"] == hostile.identifier()
    assert seen["x-gateway-email"] == ""
    assert seen["x-gateway-nickname"] == "mallory"  # the signed one, or the identifier's last segment
    if "openid.ax.mode" in unsigned or "ax" in signed:
        assert "ignoring unusable AX response" in logged(caplog, "gateway.openid")


# -- hostile discovery documents -------------------------------------------------------------------


def failed_start(browser: httpx.Client, gateway: RunningGateway, identifier: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = submit_identifier(browser, gateway.url, identifier)
    return response, time.monotonic() - started


@pytest.mark.parametrize("document", ["/bomb", "/xxe", "/external-dtd"])
def test_xml_attacks_in_xrds_fail_discovery_quickly_and_leak_nothing(
    gateway: RunningGateway, hostile: HostileProvider, provider: UvicornThread, browser: httpx.Client,
    caplog: pytest.LogCaptureFixture, document: str
) -> None:
    response, elapsed = failed_start(browser, gateway, hostile.url + document)
    assert response.status_code == 400 and elapsed < 5
    assert "Could not find an OpenID provider" in response.text
    assert "root:" not in response.text + str(response.headers)
    assert hostile.seen["/evil.dtd"] == 0 and hostile.seen["checkid_setup"] == 0
    assert "discovery of" in logged(caplog)
    assert_normal_sign_in(browser, gateway.url, provider.url)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_huge_discovery_page_is_refused_at_the_size_cap(
    gateway: RunningGateway, hostile: HostileProvider, provider: UvicornThread, browser: httpx.Client,
    caplog: pytest.LogCaptureFixture, chunked: bool
) -> None:
    response, elapsed = failed_start(browser, gateway, hostile.url + ("/huge?chunked=1" if chunked else "/huge"))
    assert response.status_code == 400 and elapsed < 5
    assert "Could not find an OpenID provider" in response.text
    assert "response too large" in logged(caplog)
    assert_normal_sign_in(browser, gateway.url, provider.url)


@pytest.mark.parametrize(("path", "reason"), [("/loop", "redirect loop"), ("/chain/0", "more than 5 redirects")])
def test_endless_redirects_end_at_the_redirect_cap(
    gateway: RunningGateway, hostile: HostileProvider, browser: httpx.Client, caplog: pytest.LogCaptureFixture,
    path: str, reason: str
) -> None:
    response, elapsed = failed_start(browser, gateway, hostile.url + path)
    assert response.status_code == 400 and elapsed < 5
    assert "Could not find an OpenID provider" in response.text
    assert reason in logged(caplog)
    assert hostile.seen["/chain"] <= gateway.settings.fetch_max_redirects + 1
    assert_still_serving(browser, gateway.url)


# -- a provider that hangs ---------------------------------------------------------------------------


def test_hanging_check_authentication_fails_within_the_read_timeout(
    gateway: RunningGateway, hostile: HostileProvider, provider: UvicornThread, browser: httpx.Client,
    caplog: pytest.LogCaptureFixture
) -> None:
    hostile.misbehave(associate=False, check_authentication="hang")
    callback = hostile_answer(browser, gateway.url, hostile.op_identifier)
    started = time.monotonic()
    response = browser.get(callback, follow_redirects=False)
    elapsed = time.monotonic() - started
    assert_refused(response, "unreachable")  # not "Invalid login": python3-openid alone says "server denied"
    timeout = gateway.settings.fetch_read_timeout
    assert timeout <= elapsed < 2 * timeout + 1
    assert f"provider did not answer check_authentication: timed out: {hostile.endpoint}" in logged(caplog)
    page = browser.get(gateway.url + response.headers["location"])
    assert MESSAGES["unreachable"][1] in html.unescape(page.text)
    hostile.release.set()
    assert_normal_sign_in(browser, gateway.url, provider.url)


# -- garbage in the callback query ---------------------------------------------------------------------


GARBAGE = {  # id -> (parameter replaced, raw value[, raw name])
    "unknown-mode": ("openid.mode", "garbage"),
    "empty-mode": ("openid.mode", ""),
    "control-characters-in-mode": ("openid.mode", "%00%0D%0A%3Cscript%3E"),
    "non-utf8-mode": ("openid.mode", "%FF%FE"),
    "non-utf8-claimed-id": ("openid.claimed_id", "http%3A%2F%2F%C3%28%FF"),
    "non-utf8-key": ("openid.sig", "x", "openid.s%FFig"),
    "unknown-namespace": ("openid.ns", "http%3A%2F%2Fevil.example%2F"),
    "extension-alias-for-openid-namespace": ("openid.ns.sreg", "http%3A%2F%2Fspecs.openid.net%2Fauth%2F2.0"),
    "huge-signature": ("openid.sig", "A" * 10_000),
    "huge-claimed-id": ("openid.claimed_id", "http%3A%2F%2F127.0.0.1%3A1%2F" + "a" * 10_000),
    "non-utf8-next": ("next", "%FF%2F"),
    "non-utf8-state": ("gw_state", "%FF"),
    "non-latin1-state": ("gw_state", "%E2%98%83"),
    "crlf-in-state": ("gw_state", "x%0D%0ASet-Cookie:%20gw_session=forged"),
}


@pytest.mark.parametrize("garbage", list(GARBAGE))
def test_garbage_in_the_callback_query_is_refused_not_an_error(
    gateway: RunningGateway, hostile: HostileProvider, browser: httpx.Client, caplog: pytest.LogCaptureFixture,
    garbage: str
) -> None:
    callback = with_raw_param(hostile_answer(browser, gateway.url, hostile.op_identifier), *GARBAGE[garbage])
    response = browser.get(callback, follow_redirects=False)
    # Checked first: the gateway has then finished with the bad request, logging included (Python 3.11's
    # traceback formatting uses the ast module, which is not thread-safe: a race ends in INTERNALERROR).
    assert_still_serving(browser, gateway.url)
    assert response.status_code == 303 or 400 <= response.status_code < 500, response.text[:300]
    if response.status_code == 303:
        assert_refused(response, code=None)
        assert "sign-in failed" in logged(caplog)
    assert "gw_session=forged" not in str(response.headers)


@pytest.mark.parametrize("form", [{"openid.mode": "id_res", "openid.sig": "A" * 100_000},
                                  {f"openid.junk{i}": "x" for i in range(100)}], ids=["huge-form", "many-fields"])
def test_oversized_callback_post_is_a_client_error(gateway: RunningGateway, hostile: HostileProvider,
                                                   browser: httpx.Client, form: dict[str, str]) -> None:
    return_to = hostile_answer(browser, gateway.url, hostile.op_identifier).split("&openid.", 1)[0]
    response = browser.post(return_to, data=form, follow_redirects=False)
    assert 400 <= response.status_code < 500 and session_cookies(response) == []
    assert_still_serving(browser, gateway.url)
