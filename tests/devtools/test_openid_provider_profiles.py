"""User names, Steam identifiers and the URLs each profile publishes (pure functions)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devtools.openid_provider.profiles import PROFILES, steam_id, valid_steam_id, valid_username

BASE = "http://127.0.0.1:8001"
USERNAMES = st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True).filter(lambda name: name not in {".", ".."})
PROFILE = {profile.name: profile for profile in PROFILES}


@given(USERNAMES)
def test_user_names_of_the_allowed_characters_are_valid(name: str) -> None:
    assert valid_username(name)


@given(st.text())
def test_user_names_with_any_other_character_are_invalid(name: str) -> None:
    if re.fullmatch(r"[A-Za-z0-9._-]{1,64}", name) is None:
        assert not valid_username(name)


@pytest.mark.parametrize("name", ["", ".", "..", "a" * 65, "a b", "a/b", "é", "a\n"])
def test_these_user_names_are_invalid(name: str) -> None:
    assert not valid_username(name)


@given(USERNAMES)
def test_steam_ids_look_like_steam_ids_and_never_change(name: str) -> None:
    assert re.fullmatch(r"7656119\d{10}", steam_id(name))
    assert steam_id(name) == steam_id(name) and valid_steam_id(steam_id(name))


def test_different_users_get_different_steam_ids() -> None:
    assert len({steam_id(f"user{number}") for number in range(1000)}) == 1000


@given(USERNAMES)
def test_a_profile_recognises_its_own_identifiers(name: str) -> None:
    for profile in PROFILES:
        if profile.steam_ids:
            continue
        assert profile.username_for(BASE, profile.claimed_id(BASE, name)) == name
        assert profile.username_for(BASE, profile.html_claimed_id(BASE, name)) == name


@pytest.mark.parametrize("identity", [
    f"{BASE}/sreg-only/id/alice",  # another profile's identifier
    f"{BASE}/id/alice/more",
    f"{BASE}/id/",
    "http://elsewhere.test/id/alice",
    f"{BASE}/steam/openid/id/76561197960265728",
])
def test_a_profile_refuses_identifiers_that_are_not_its_own(identity: str) -> None:
    assert PROFILE["full"].username_for(BASE, identity) is None
    assert PROFILE["steam"].username_for(BASE, identity) is None


def test_profiles_release_what_they_promise() -> None:
    assert PROFILE["full"].attributes("alice") == {
        "nickname": "alice", "email": "alice@example.test", "fullname": "Development user alice",
    }
    assert "email" not in PROFILE["no-email"].attributes("alice")
    assert PROFILE["steam"].attributes("alice") == {}
    assert PROFILE["steam"].claimed_id(BASE, "alice") == f"{BASE}/steam/openid/id/{steam_id('alice')}"
    assert len({profile.prefix for profile in PROFILES}) == len(PROFILES)
