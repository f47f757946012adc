"""Provider authority rules and the provider allow list."""

from __future__ import annotations

import re

import pytest

from gateway.errors import ProviderNotAllowed
from gateway.fetch.allowlist import allowlist_problems, check_endpoint_allowed, is_url_allowed
from gateway.signin.openid2.providers import ProviderRule, check_authority, provider_label

STEAM_ENDPOINT = "https://steamcommunity.com/openid/login"
STEAM_ID = "https://steamcommunity.com/openid/id/76561197960287930"
UBUNTU_ENDPOINT = "https://login.ubuntu.com/+openid"
UBUNTU_ID = "https://login.ubuntu.com/+id/AbC123x"
EVIL_ENDPOINT = "https://openid.evil.example/endpoint"


@pytest.mark.parametrize(
    ("claimed_id", "endpoint"),
    [
        (STEAM_ID, STEAM_ENDPOINT),
        (STEAM_ID, "https://STEAMCOMMUNITY.com:443/openid/login"),
        (UBUNTU_ID, UBUNTU_ENDPOINT),
        ("https://alice.example/", "https://openid.example/server"),
        ("https://steamcommunity.com.evil.example/openid/id/76561197960287930", EVIL_ENDPOINT),
    ],
)
def test_identifiers_from_their_own_endpoint_are_accepted(claimed_id: str, endpoint: str) -> None:
    check_authority(claimed_id, endpoint)


@pytest.mark.parametrize(
    "claimed_id",
    [
        STEAM_ID,
        "http://steamcommunity.com/openid/id/76561197960287930",
        "https://SteamCommunity.com/openid/id/76561197960287930",
        "https://steamcommunity.com./openid/id/76561197960287930",
        "https://steamcommunity.com:443/openid/id/76561197960287930",
        "https://steamcommunity.com/openid/id/",
        UBUNTU_ID,
        "https://login.ubuntu.com/+id/someone-else",
    ],
)
def test_a_known_providers_identifier_from_another_endpoint_is_refused(claimed_id: str) -> None:
    with pytest.raises(ProviderNotAllowed):
        check_authority(claimed_id, EVIL_ENDPOINT)


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://steamcommunity.com/openid/login",
        "https://steamcommunity.com/openid/login/",
        "https://steamcommunity.com/openid/login?x=1",
        "https://steamcommunity.com:8443/openid/login",
        "https://evil@steamcommunity.com/openid/login",
    ],
)
def test_a_lookalike_of_the_steam_endpoint_is_not_steams_endpoint(endpoint: str) -> None:
    with pytest.raises(ProviderNotAllowed):
        check_authority(STEAM_ID, endpoint)


@pytest.mark.parametrize(
    "claimed_id",
    [
        "https://alice.example/",
        "https://steamcommunity.com/openid/id/12345678901234567",
        "https://steamcommunity.com/openid/id/7656119796028793",
        "https://steamcommunity.com/openid/id/765611979602879300",
        "https://steamcommunity.com/openid/id/76561197960287930\n",
        "https://steamcommunity.com/openid/id/7656119796028793\u0660",
        "https://steamcommunity.com/openid/id/76561197960287930?x=1",
        "https://steamcommunity.com/openid/id/76561197960287930#frag",
        "http://steamcommunity.com/openid/id/76561197960287930",
        UBUNTU_ID,
    ],
)
def test_the_steam_endpoint_may_assert_only_steam_ids(claimed_id: str) -> None:
    with pytest.raises(ProviderNotAllowed):
        check_authority(claimed_id, STEAM_ENDPOINT)


@pytest.mark.parametrize(
    "claimed_id",
    ["https://alice.example/", "https://login.ubuntu.com/+id/", "https://login.ubuntu.com/+id/a/b", STEAM_ID],
)
def test_the_ubuntu_one_endpoint_may_assert_only_ubuntu_one_ids(claimed_id: str) -> None:
    with pytest.raises(ProviderNotAllowed):
        check_authority(claimed_id, UBUNTU_ENDPOINT)


def test_custom_rules_replace_the_defaults() -> None:
    rule = ProviderRule("Example", "https://op.example/server", re.compile(r"https://op\.example/u/[a-z]+"))
    check_authority("https://op.example/u/alice", "https://op.example/server", rules=[rule])
    check_authority(STEAM_ID, EVIL_ENDPOINT, rules=[rule])
    with pytest.raises(ProviderNotAllowed):
        check_authority("https://op.example/u/alice", EVIL_ENDPOINT, rules=[rule])


ALLOWLIST = ("https://steamcommunity.com/openid", "https://login.ubuntu.com/")


@pytest.mark.parametrize(
    "url",
    [
        "https://steamcommunity.com/openid",
        "https://steamcommunity.com/openid/login",
        "https://steamcommunity.com/openid/id/76561197960287930",
        "https://STEAMCOMMUNITY.COM:443/openid/login",
        "https://login.ubuntu.com/",
        "https://login.ubuntu.com",
        "https://login.ubuntu.com/+openid",
    ],
)
def test_urls_under_an_allowed_prefix_are_allowed(url: str) -> None:
    assert is_url_allowed(url, ALLOWLIST)
    check_endpoint_allowed(url, ALLOWLIST)


@pytest.mark.parametrize(
    "url",
    [
        "https://steamcommunity.com/openidx",
        "https://steamcommunity.com/",
        "http://steamcommunity.com/openid/login",
        "https://steamcommunity.com:8443/openid/login",
        "https://steamcommunity.com.evil.example/openid/login",
        "https://evil.example/https://steamcommunity.com/openid",
        "https://user@steamcommunity.com/openid/login",
        "https://steamcommunity.com/openid/../admin",
        "https://steamcommunity.com/openid/%2e%2e/admin",
        "https://steamcommunity.com/openid/..%5cadmin",
        "https://login.ubuntu.com.evil.example/",
        "ftp://login.ubuntu.com/",
        "not a url",
        "https://[::1/",
    ],
)
def test_urls_outside_every_allowed_prefix_are_refused(url: str) -> None:
    assert not is_url_allowed(url, ALLOWLIST)
    with pytest.raises(ProviderNotAllowed) as info:
        check_endpoint_allowed(url, ALLOWLIST)
    assert info.value.code == "not-allowed"


def test_an_empty_allowlist_allows_every_provider() -> None:
    assert is_url_allowed("https://any.example/openid", ())
    check_endpoint_allowed("https://any.example/openid", ())


def test_allowlist_problems_names_every_unusable_entry() -> None:
    problems = allowlist_problems(
        ["https://steamcommunity.com/openid", "steamcommunity.com", "https://u@x.example/", "https://x.example/?q"]
    )
    assert len(problems) == 3
    assert "'steamcommunity.com'" in problems[0]


def test_provider_label_names_a_configured_provider_by_its_origin_else_the_host() -> None:
    named = [("Steam", "https://steamcommunity.com/openid"), ("Local", "http://127.0.0.1:8001/openid")]
    assert provider_label("https://steamcommunity.com/openid/login", named) == "Steam"
    assert provider_label("http://127.0.0.1:8001/endpoint", named) == "Local"
    assert provider_label("http://127.0.0.1:8002/endpoint", named) == "127.0.0.1:8002"
    assert provider_label("https://Login.Ubuntu.com./+openid", named) == "login.ubuntu.com"
    assert provider_label("http://steamcommunity.com/openid/login", named) == "steamcommunity.com"  # not https
    assert provider_label("not a url", named) == ""
