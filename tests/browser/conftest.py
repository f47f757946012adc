"""Fixtures of the browser tests: the whole stack behind nginx, and Debian's Chromium driven by Playwright.

The stack (provider, microblog, gateway, nginx: :class:`devtools.stack.Stack`)
starts once per module, with a one-second remember-me grace and a 0.2 s
revocation refresh so that theft detection and revocation show within a test.
Every test gets fresh browser contexts (separate cookie jars), closed after it.

A missing Chromium or nginx fails the tests: in CI a missing tool is an error,
never a skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Cookie, Playwright, sync_playwright

from devtools.stack import NginxNotFound, Stack
from tests.browser.steps import NewContext

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling home, which floods a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
REMEMBER_GRACE = 1  # seconds; the setting is whole seconds
REVOCATION_REFRESH = 0.2
GATEWAY_ENV = {"GATEWAY_REMEMBER_GRACE": str(REMEMBER_GRACE), "GATEWAY_REVOCATION_REFRESH": str(REVOCATION_REFRESH)}
OUTPUT_DIR = Path(__file__).resolve().parents[2] / "test-output"  # at the repository root, git-ignored
ACTION_TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """Provider, microblog, gateway (mode 1) and nginx; each process logs to test-output/logs/browser/<module>/.

    A test module can add gateway settings with a module-level ``GATEWAY_SETTINGS`` dict.
    """
    gateway_env = {**GATEWAY_ENV, **getattr(request.module, "GATEWAY_SETTINGS", {})}
    log_dir = OUTPUT_DIR / "logs" / "browser" / request.module.__name__.rsplit(".", 1)[-1]
    shutil.rmtree(log_dir, ignore_errors=True)  # the processes append: start each run with empty logs
    try:
        instance = Stack("auth_request", gateway_env=gateway_env, log_dir=log_dir)
    except NginxNotFound as exc:
        pytest.fail(f"the browser tests need nginx ({exc}); in CI a missing tool is an error, never a skip",
                    pytrace=False)
    with instance:
        yield instance


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless (Playwright cannot download its own browser here)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: apt-get install chromium "
                    "(in CI a missing tool is an error, never a skip)", pytrace=False)
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def new_context(chromium: Browser) -> Iterator[NewContext]:
    """Open a browser context (a browser profile), optionally with cookies; all are closed after the test.

    Keyword options go to Playwright's ``new_context`` (``bypass_csp``, ``java_script_enabled``, ``viewport``).
    """
    opened: list[BrowserContext] = []

    def open_context(cookies: Sequence[Cookie] = (), **options: Any) -> BrowserContext:
        context = chromium.new_context(**options)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        if cookies:
            context.add_cookies(list(cookies))  # type: ignore[arg-type]  # what cookies() returns, add_cookies takes
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        context.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """test-output/screenshots/ at the repository root (git-ignored)."""
    path = OUTPUT_DIR / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
