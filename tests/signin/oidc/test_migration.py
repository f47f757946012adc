"""OpenID 2.0 to OpenID Connect Migration 1.0, end to end with real providers and a real gateway.

An OpenID 2.0 user who signs in with the OpenID Connect provider that took over
keeps their user id; an ``openid2_id`` the provider is not authoritative for
(§6), not a URL, undiscoverable, or aimed at an internal address is refused
with a clear page, no session and nothing linked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from devtools.stack import local_claimed_id
from gateway.fetch.fetcher import SafeFetcher
from gateway.signin.oidc.exchange import OIDCSignIn
from gateway.signin.oidc.migration import MIGRATION_REFUSED, MigrationRefused, OpenID2Claim, OpenID2Migration
from gateway.signin.openid2.consumer import OpenIDExchange
from gateway.store import SQLiteStore
from gateway.store.base import LinkRecord
from tests.htmlforms import forms
from tests.migration_servers import Servers, serve, servers_fixture, stack_fixture  # noqa: F401
from tests.pages.test_login_callback import history_cookies, whoami
from tests.servers import UvicornThread, free_port
from tests.signin_steps import sign_in as openid2_sign_in


def refused(final: httpx.Response, stack: Servers) -> None:
    """The sign-in ended on the login page with the migration message, and no session."""
    assert final.status_code == 200, final.text[:500]
    assert final.url.path == "/login" and final.url.params.get("m") == MIGRATION_REFUSED, final.url
    assert "could not confirm" in final.text
    assert history_cookies(final, stack.gateway.settings.session_cookie) == []
    with httpx.Client(cookies=final.cookies, timeout=10) as same_browser:
        assert same_browser.get(stack.gateway.url + "/echo").status_code == 302


def no_link_for(stack: Servers, username: str) -> None:
    """Nothing reaches another user from this person's OIDC account."""
    links = [link for link in stack.store.list_links(stack.op2_id(username))
             + stack.store.list_links(stack.foreign_id(username))]
    assert links == []


# -- the migration ------------------------------------------------------------------------------


def test_an_openid2_user_keeps_their_user_id_after_the_move_to_oidc(stack: Servers) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as before:
        openid2_sign_in(before, stack.gateway.url, stack.op2_id("mia"), "mia")
        assert whoami(before, stack.gateway)["user"] == stack.op2_id("mia")
    with httpx.Client(follow_redirects=True, timeout=15) as after:
        final = stack.oidc_sign_in(after, "mia")
        assert final.url.path == "/" and final.url.port == stack.gateway.server.port, final.url  # signed in
        assert whoami(after, stack.gateway)["user"] == stack.op2_id("mia")  # the app sees the same user
    [link] = stack.store.list_links(stack.op2_id("mia"))
    assert link.how == "migrated" and link.identity_key.startswith(stack.oidc_url + "#")


def test_later_sign_ins_without_openid2_id_reach_the_same_user(stack: Servers) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as first:
        stack.oidc_sign_in(first, "noor")
        assert whoami(first, stack.gateway)["user"] == stack.op2_id("noor")
    stack.vouch_for(None)  # the provider stops sending openid2_id
    with httpx.Client(follow_redirects=True, timeout=15) as later:
        stack.oidc_sign_in(later, "noor")
        assert whoami(later, stack.gateway)["user"] == stack.op2_id("noor")


def test_the_authorization_request_carries_the_openid2_realm_of_the_openid2_sign_in(stack: Servers) -> None:
    with httpx.Client(timeout=10) as browser:
        page = browser.get(stack.gateway.url + "/login")
        start = browser.post(stack.gateway.url + "/login",
                             data={**dict(forms(page.text)[0].fields), "provider": stack.oidc_url})
    assert start.status_code in (302, 303)
    query = dict(parse_qsl(urlsplit(start.headers["location"]).query))
    assert query["openid2_realm"] == stack.gateway.app.runtime.exchange.realm == stack.gateway.url + "/"


def test_a_provider_not_configured_for_migration_gets_no_realm(stack: Servers) -> None:
    runtime = stack.gateway.app.runtime
    [migrating] = [p for p in stack.gateway.settings.providers if p.type == "oidc"]
    plain = dataclasses.replace(migrating, openid2_migration=False)
    assert "openid2_realm=" in OIDCSignIn([migrating], runtime.oidc.fetcher, runtime.callback_url).begin(
        migrating.identifier, "some-state").url
    assert "openid2_realm" not in OIDCSignIn([plain], runtime.oidc.fetcher, runtime.callback_url).begin(
        plain.identifier, "some-state").url


# -- attacks: a provider claiming an identifier it does not speak for ----------------------------------------


def test_an_openid2_id_of_another_openid2_provider_is_refused_and_nothing_is_linked(
        stack: Servers, caplog: pytest.LogCaptureFixture) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as victim:  # the victim's account at another provider
        openid2_sign_in(victim, stack.gateway.url, stack.foreign_id("vic"), "vic")
        assert whoami(victim, stack.gateway)["user"] == stack.foreign_id("vic")
    # Discovery of the identifier works: it is the §6 rule (another provider's endpoint, and its JSON names
    # another issuer), not a failed fetch, that refuses it.
    claimed_id, endpoints = stack.gateway.app.runtime.exchange.discover(stack.foreign_id("vic"))
    assert claimed_id == stack.foreign_id("vic") and endpoints and endpoints[0].startswith(stack.foreign_url)
    stack.vouch_for(stack.foreign_url)  # the OIDC provider claims the foreign provider's users
    with caplog.at_level(logging.WARNING, logger="gateway.login"), \
            httpx.Client(follow_redirects=True, timeout=15) as attacker:
        final = stack.oidc_sign_in(attacker, "vic")
        refused(final, stack)
    assert any("served by another OpenID 2.0 provider" in r.getMessage() for r in caplog.records)
    no_link_for(stack, "vic")


def test_an_openid2_id_that_redirects_to_another_identifier_is_refused(stack: Servers) -> None:
    """Discovery must end at the identifier itself: one that redirects proves the target, not itself.

    Here every identifier of a second address redirects to the paired provider's identifier of the
    same name, whose JSON names our issuer: only the claimed-identifier check refuses it.
    """
    def to_paired(request: Request) -> RedirectResponse:
        return RedirectResponse(stack.op2_id(request.path_params["name"]), status_code=302)

    redirector = Starlette(routes=[Route("/{path:path}/{name}", to_paired)])
    with UvicornThread(redirector) as elsewhere:
        redirecting_id = local_claimed_id(elsewhere.url, "ray")
        assert redirecting_id != stack.op2_id("ray")
        assert httpx.get(redirecting_id).headers["location"] == stack.op2_id("ray")
        stack.vouch_for(elsewhere.url)
        with httpx.Client(follow_redirects=True, timeout=15) as browser:
            refused(stack.oidc_sign_in(browser, "ray"), stack)
    assert stack.store.list_links(redirecting_id) == [] and stack.store.list_links(stack.op2_id("ray")) == []


def test_an_openid2_id_that_is_not_a_url_is_refused(stack: Servers) -> None:
    stack.misbehave("openid2-id-not-url")
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        refused(stack.oidc_sign_in(browser, "ola"), stack)
    no_link_for(stack, "ola")


def test_an_openid2_id_whose_discovery_fails_is_refused(stack: Servers) -> None:
    stack.vouch_for(f"http://127.0.0.1:{free_port()}")  # nobody listens there
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        refused(stack.oidc_sign_in(browser, "pia"), stack)


def test_an_openid2_id_aimed_at_an_internal_address_is_refused_before_any_connection(tmp_path: Path) -> None:
    """The SSRF guard of OpenID 2.0 discovery applies: a private or link-local address is never fetched."""
    store = SQLiteStore(tmp_path / "store.sqlite")
    with SafeFetcher(allow_private_addresses=False, connect_timeout=1, read_timeout=1) as fetcher:
        migration = OpenID2Migration(OpenIDExchange(store, "https://rp.example/", fetcher=fetcher))
        for target in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/id/alice",
                       "http://127.0.0.1:9/id/alice", "http://[::1]/id/alice"):
            with pytest.raises(MigrationRefused) as refusal:
                migration.verify(OpenID2Claim(target, "https://op.example", "https://op.example/authorize"))
            assert "private" in refusal.value.reason, refusal.value.reason
    store.close()


def test_an_openid2_id_outside_the_provider_allowlist_is_refused(
        tmp_path: Path, upstream: UvicornThread) -> None:
    """With ``provider_allowlist``, an openid2_id at an internal service (the app itself) is never fetched."""
    with contextlib.contextmanager(serve)(tmp_path, upstream, provider_allowlist=("http://127.0.0.1:1/",)) as allowed:
        allowed.vouch_for(upstream.url)
        with httpx.Client(follow_redirects=True, timeout=15) as browser:
            refused(allowed.oidc_sign_in(browser, "quinn"), allowed)


def test_an_endpoint_on_the_authorization_endpoints_authority_needs_no_iss_document(stack: Servers) -> None:
    """§6: same authority (host and port) as the Authorization Endpoint is authority enough."""
    migration = OpenID2Migration(stack.gateway.app.runtime.exchange)
    foreign = stack.foreign_id("sam")  # its JSON names another issuer: only the authority rule can accept it
    assert migration.verify(OpenID2Claim(foreign, stack.oidc_url, stack.foreign_url + "/authorize")) == foreign
    with pytest.raises(MigrationRefused):
        migration.verify(OpenID2Claim(foreign, stack.oidc_url, stack.oidc_url + "/authorize"))


def test_an_old_identifier_linked_to_another_account_migrates_to_that_account(stack: Servers) -> None:
    """openid2_id names the key the OpenID 2.0 sign-in had; where that key is linked, the migration follows."""
    stack.store.link_identity(LinkRecord(stack.op2_id("yves"), stack.op2_id("yvonne"), "Local OpenID 2.0", 0.0))
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        stack.oidc_sign_in(browser, "yves")
        assert whoami(browser, stack.gateway)["user"] == stack.op2_id("yvonne")
    [record] = [r for r in stack.store.list_links(stack.op2_id("yvonne")) if r.how == "migrated"]
    assert record.identity_key.startswith(stack.oidc_url + "#")
