"""gateway.signin.methods: the one place that decides which protocol handles a sign-in.

Real methods (OpenID Connect, GitHub, OpenID 2.0) behind the registry, as the runtime builds them;
nothing here reaches the network: choosing, labelling and refusing happen before any request.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.datastructures import Secret

from gateway.errors import LoginFailed, SignInBusy
from gateway.fetch.fetcher import SafeFetcher
from gateway.signin.capacity import SignInCapacity
from gateway.signin.github import OAuth2SignIn
from gateway.signin.methods import SignInMethods, Started
from gateway.signin.oidc.exchange import OIDCSignIn
from gateway.signin.openid2.consumer import OpenIDExchange
from gateway.signin.openid2.method import OpenID2Method
from gateway.signin.provider import Provider
from gateway.store import LoginStateRecord, SQLiteStore
from gateway.types import Identity
from tests.servers import run_async

CALLBACK = "https://gw.example/_gateway/callback"
CORP = Provider("Corp", "https://idp.example/realms/corp", "oidc", "gw", Secret("s"))
TENANT = Provider("Tenant B", "https://idp.example/realms/b", "oidc", "gw", Secret("s"))
GITHUB = Provider("GitHub", "https://github.com/login/oauth/authorize", "oauth2", "gw", Secret("s"),
                  token_url="https://github.com/login/oauth/access_token", api_url="https://api.github.com")
STEAM = Provider("Steam", "https://steamcommunity.com/openid")


@pytest.fixture
def methods(tmp_path: Path) -> Iterator[SignInMethods]:
    store = SQLiteStore(tmp_path / "g.sqlite3")
    fetcher = SafeFetcher()
    providers = (CORP, TENANT, GITHUB, STEAM)
    exchange = OpenIDExchange(store, "https://gw.example/", fetcher=fetcher,
                              named_providers=[(p.name, p.identifier) for p in providers])
    registry = SignInMethods([OIDCSignIn(providers, fetcher, CALLBACK), OAuth2SignIn(providers, fetcher, CALLBACK),
                              OpenID2Method(exchange, CALLBACK)], SignInCapacity(1))
    yield registry
    registry.close()
    fetcher.close()
    store.close()


def record(protocol: str, provider: str = "", data: dict[str, object] | None = None) -> LoginStateRecord:
    return LoginStateRecord("st", protocol, provider, "/", False, 0.0, 60.0, data or {})  # type: ignore[arg-type]


def test_a_configured_button_picks_its_protocol_and_anything_else_is_openid2(methods: SignInMethods) -> None:
    assert methods.method_for(CORP.identifier).protocol == "oidc"
    assert methods.method_for(GITHUB.identifier).protocol == "oauth2"
    assert methods.method_for(STEAM.identifier).protocol == "openid2"  # an OpenID 2.0 button is an OP identifier
    assert methods.method_for("https://me.example/").protocol == "openid2"  # typed in
    # Only the exact identifier: a look-alike issuer is a typed-in OpenID, never the configured client.
    assert methods.method_for(CORP.identifier + "/").protocol == "openid2"


def test_the_button_name_is_kept_for_events_and_typed_identifiers_have_none(methods: SignInMethods) -> None:
    assert methods.method_for(TENANT.identifier).name_of(TENANT.identifier) == "Tenant B"
    assert methods.method_for("https://me.example/").name_of("https://me.example/") == ""


def test_a_login_state_is_labelled_by_its_button_or_its_provider(methods: SignInMethods) -> None:
    # Two buttons on one origin (realms, tenants): the state's button name, not the host.
    assert methods.label(record("oidc", TENANT.identifier, {"provider": "Tenant B"})) == "Tenant B"
    assert methods.label(record("oidc", "https://idp.example/realms/b")) == "idp.example"
    assert methods.label(record("openid2", "https://steamcommunity.com/openid/login")) == "Steam"
    assert methods.label(record("openid2", "https://op.example:8443/endpoint")) == "op.example:8443"
    assert methods.label(record("saml")) == ""


def test_the_recorded_protocol_decides_and_an_openid2_answer_cannot_finish_oidc(methods: SignInMethods) -> None:
    def never(identity: Identity) -> Identity:
        raise AssertionError("no identity may come out of a refused answer")

    answer = {"openid.mode": "id_res", "openid.claimed_id": "https://me.example/"}
    for protocol in ("oidc", "oauth2"):
        with pytest.raises(LoginFailed, match=f"is for {protocol}, answered as OpenID 2.0"):
            run_async(methods.complete(record(protocol, data={"provider": "Corp"}), answer, CALLBACK, never))
    with pytest.raises(LoginFailed, match="saml, not supported"):
        run_async(methods.complete(record("saml"), {"code": "x"}, CALLBACK, never))


def test_a_state_naming_no_configured_provider_is_refused(methods: SignInMethods) -> None:
    with pytest.raises(LoginFailed, match="names no configured OpenID Connect provider"):
        run_async(methods.complete(record("oidc", data={"provider": "Gone", "nonce": "n", "verifier": "v"}),
                                     {"code": "c", "state": "st"}, CALLBACK, lambda identity: identity))


def test_beginning_with_every_thread_taken_is_refused_at_once(methods: SignInMethods) -> None:
    async def scenario() -> None:
        release = asyncio.Event()
        loop = asyncio.get_running_loop()
        holding = asyncio.ensure_future(methods.capacity.run(
            lambda: asyncio.run_coroutine_threadsafe(release.wait(), loop).result()))
        await asyncio.sleep(0.05)
        with pytest.raises(SignInBusy):
            await methods.begin(methods.method_for(GITHUB.identifier), GITHUB.identifier, "st")
        release.set()
        await holding
        started = await methods.begin(methods.method_for(GITHUB.identifier), GITHUB.identifier, "st")
        assert started.url.startswith(GITHUB.identifier + "?") and "state=st" in started.url
        assert (started.provider, started.label, started.form_fields) == (GITHUB.identifier, "GitHub", None)
        assert started.data["provider"] == "GitHub" and isinstance(started.data["verifier"], str)

    run_async(scenario())


def test_beginning_and_keeping_the_login_state_happen_on_one_sign_in_thread(methods: SignInMethods) -> None:
    threads: list[str] = []
    main = threading.current_thread().name

    def keep(started: Started) -> str:
        threads.append(threading.current_thread().name)
        return f"kept {started.label}"

    started, kept = run_async(methods.begin_and_keep(methods.method_for(GITHUB.identifier), GITHUB.identifier, "st",
                                                     keep))
    assert kept == "kept GitHub" and "state=st" in started.url
    assert len(threads) == 1 and threads[0].startswith("signin") and threads[0] != main


def test_keeping_is_skipped_when_beginning_fails(methods: SignInMethods) -> None:
    kept: list[Started] = []
    with pytest.raises(LoginFailed):
        run_async(methods.begin_and_keep(methods.method_for("xri://=me"), "xri://=me", "st", kept.append))
    assert kept == []
