from __future__ import annotations

import pytest

from backend_app.nicknames import MAX_LENGTH, make_unique_nickname, make_valid_nickname, nickname_fits


@pytest.mark.parametrize(
    ("nickname", "email", "expected"),
    [
        ("alice", "", "alice"),
        ("Alice Smith", "", "AliceSmith"),
        ("../etc", "", "etc"),
        ("<script>", "", "script"),
        ("", "carol.x@example.com", "carol.x"),
        ("日本", "dave@example.com", "dave"),
        ("", "", "user"),
        ("...", "", "user"),
        ("x" * 100, "", "x" * MAX_LENGTH),
    ],
)
def test_valid_nickname_is_url_safe_and_never_empty(nickname: str, email: str, expected: str) -> None:
    assert make_valid_nickname(nickname, email) == expected


def test_free_nickname_is_kept() -> None:
    assert make_unique_nickname("bob", lambda name: False) == "bob"


def test_taken_nickname_gets_the_first_free_number_from_two() -> None:
    taken = {"bob", "bob2", "bob3"}
    assert make_unique_nickname("bob", taken.__contains__) == "bob4"


@pytest.mark.parametrize(
    ("current", "base", "fits"),
    [
        ("bob", "bob", True),
        ("bob2", "bob", True),
        ("bob17", "bob", True),
        ("bobby", "bob", False),
        ("al", "bob", False),
    ],
)
def test_numbered_variant_fits_its_base(current: str, base: str, fits: bool) -> None:
    assert nickname_fits(current, base) is fits
