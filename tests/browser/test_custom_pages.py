"""An operator's own templates and colours, and a French visitor, in Debian's Chromium behind nginx.

The CSP is what keeps an override's inline script from running: Chromium is asked, not the headers
read. The same page with the CSP bypassed runs the script, so the check can see it happen. The French
pages go through axe like the English ones (tests/browser/test_accessibility.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from devtools.stack import NginxNotFound, Stack
from tests.browser.a11y import check_page, require_axe
from tests.browser.conftest import GATEWAY_ENV, OUTPUT_DIR
from tests.browser.steps import NewContext, consent, expect_signed_in

pytestmark = pytest.mark.browser

OVERRIDE = """{% extends "gateway/login.html" %}
{% block content %}<p class="custom-banner">{{ _("Sign in") }}: Example Corp staff only.</p>{{ super() }}
<script>document.title = "inline script ran";</script>{% endblock %}
"""
BRAND = "#aa0000"
FRENCH = {"locale": "fr-FR"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack of the browser tests, with a login.html override, a brand colour and a site name."""
    templates = tmp_path_factory.mktemp("templates")
    (templates / "login.html").write_text(OVERRIDE)
    log_dir = OUTPUT_DIR / "logs" / "browser" / "test_custom_pages"
    env = {**GATEWAY_ENV, "GATEWAY_TEMPLATES_DIR": str(templates), "GATEWAY_BRAND_COLOR": BRAND,
           "GATEWAY_SITE_NAME": "Example Corp", "GATEWAY_LOGIN_RATE_LIMIT": "1000"}
    try:
        instance = Stack("auth_request", gateway_env=env, log_dir=log_dir)
    except NginxNotFound as exc:
        pytest.fail(f"the browser tests need nginx ({exc})", pytrace=False)
    with instance:
        yield instance


def test_an_overrides_inline_script_does_not_run_under_the_gateways_csp(stack: Stack, new_context: NewContext) -> None:
    page = new_context().new_page()
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text))
    page.goto(stack.url + "/login")
    expect(page.locator(".custom-banner")).to_have_text("Sign in: Example Corp staff only.")
    expect(page).to_have_title("Sign in · Example Corp")
    assert any("Content Security Policy" in text for text in violations), violations


def test_the_same_override_runs_its_script_once_the_csp_is_bypassed(stack: Stack, new_context: NewContext) -> None:
    """The control: the test above would see the script run."""
    page = new_context(bypass_csp=True).new_page()
    page.goto(stack.url + "/login")
    expect(page).to_have_title("inline script ran")


def test_the_brand_colour_reaches_the_buttons_through_the_generated_stylesheet(
        stack: Stack, new_context: NewContext) -> None:
    page = new_context(color_scheme="light").new_page()
    page.goto(stack.url + "/login")
    button = page.get_by_role("button", name="Sign in", exact=True)
    expect(button).to_have_css("background-color", "rgb(170, 0, 0)")


def french_page(new_context: NewContext) -> Page:
    require_axe()
    return new_context(bypass_csp=True, **FRENCH).new_page()


def test_a_french_visitor_gets_a_french_login_page_that_passes_axe(
        stack: Stack, new_context: NewContext, screenshot_dir: Path) -> None:
    page = french_page(new_context)
    page.goto(stack.url + "/login")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", name="Se connecter")).to_be_visible()
    expect(page.get_by_label("Se souvenir de moi")).to_be_visible()
    assert check_page(page, "login-fr", screenshot_dir) == []


def test_a_french_sign_in_error_passes_axe(stack: Stack, new_context: NewContext, screenshot_dir: Path) -> None:
    page = french_page(new_context)
    page.goto(stack.url + "/login")
    page.get_by_role("button", name="Se connecter", exact=True).click()  # an empty OpenID
    expect(page.get_by_role("alert")).to_contain_text("Veuillez saisir votre OpenID")
    assert check_page(page, "login-error-fr", screenshot_dir) == []


def test_the_french_account_and_error_pages_pass_axe(
        stack: Stack, new_context: NewContext, screenshot_dir: Path) -> None:
    page = french_page(new_context)
    page.goto(stack.url + "/")
    page.get_by_role("button", name="Local dev provider").click()
    consent(page, "amelie")
    expect_signed_in(page, "amelie")
    page.goto(stack.url + "/_gateway/account")
    expect(page.get_by_role("heading", name="Votre compte")).to_be_visible()
    assert check_page(page, "account-fr", screenshot_dir) == []
    page.goto(stack.url + "/_gateway/no-such-page")
    expect(page.get_by_role("heading", name="Page introuvable")).to_be_visible()
    assert check_page(page, "gateway-error-fr", screenshot_dir) == []
