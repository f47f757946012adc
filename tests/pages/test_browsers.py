"""The account page's browser names: what a person recognises, not the first characters of a user-agent."""

from __future__ import annotations

import pytest

from gateway.pages.browsers import MAX_PARSED, UNKNOWN, browser_name

CHROME_LINUX = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 "
                "Safari/537.36")
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/17.4 Mobile/15E148 Safari/604.1")


@pytest.mark.parametrize(("user_agent", "name"), [
    (CHROME_LINUX, "Chrome 156 on Linux"),
    (FIREFOX_WINDOWS, "Firefox 128 on Windows"),
    (SAFARI_IPHONE, "Mobile Safari 17 on iOS"),
    ("Mozilla/5.0 (X11; Linux x86_64)", f"{UNKNOWN} on Linux"),
    ("", UNKNOWN),
    (None, UNKNOWN),
    ("\x00<script>", UNKNOWN),
])
def test_browser_name(user_agent: str | None, name: str) -> None:
    assert browser_name(user_agent) == name


def test_a_huge_user_agent_is_parsed_by_its_start_only() -> None:
    assert browser_name(CHROME_LINUX + "x" * 100_000) == "Chrome 156 on Linux"
    assert len(CHROME_LINUX) < MAX_PARSED
