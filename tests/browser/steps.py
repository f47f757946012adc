"""What a person does in the browser: sign in at the local provider, restart the browser, look who is signed in.

Selectors are what a person sees: labels, button and link texts, headings.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import BrowserContext, Cookie, Page, expect

from devtools.stack import LOCAL_OIDC_NAME, LOCAL_PROVIDER_NAME, Stack

SESSION_COOKIE = "gw_session"
REMEMBER_COOKIE = "gw_remember"

# The new_context fixture: opens a browser context (a browser profile), optionally holding some cookies.
NewContext = Callable[..., BrowserContext]


def sign_in(page: Page, base_url: str, username: str, *, remember: bool = False, path: str = "/",
            provider: str = LOCAL_PROVIDER_NAME) -> None:
    """Open a protected page, get sent to the login page, sign in at the local provider, land back on it."""
    page.goto(base_url + path)
    expect_login_page(page, base_url)
    if remember:
        page.get_by_label("Remember me").check()  # first: the provider buttons submit the form
    page.get_by_role("button", name=provider).click()
    consent(page, username)
    expect_signed_in(page, username)


def oidc_sign_in(page: Page, base_url: str, username: str, *, remember: bool = False, path: str = "/") -> None:
    """The same with the stack's OpenID Connect button (the development OpenID Connect provider)."""
    sign_in(page, base_url, username, remember=remember, path=path, provider=LOCAL_OIDC_NAME)


def consent(page: Page, username: str) -> None:
    """On the provider's consent page: type a user name and allow."""
    page.get_by_label("User name").fill(username)
    page.get_by_role("button", name="Allow").click()


def expect_signed_in(page: Page, nickname: str) -> None:
    """The microblog greets the user the gateway vouched for."""
    expect(page.get_by_text(f"Hi, {nickname}")).to_be_visible()


def expect_login_page(page: Page, base_url: str) -> None:
    expect(page).to_have_url(re.compile(re.escape(base_url + "/login") + r"(\?.*)?$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def expect_sign_in_asked(page: Page, base_url: str, path: str = "/") -> None:
    """A protected page sends this browser to the login page: nobody is signed in."""
    page.goto(base_url + path)
    expect_login_page(page, base_url)
    expect(page.get_by_text("Hi, ")).to_have_count(0)


def cookie(context: BrowserContext, name: str) -> Cookie | None:
    return next((c for c in context.cookies() if c["name"] == name), None)


def persistent_cookies(context: BrowserContext) -> list[Cookie]:
    """What survives closing the browser: cookies with an expiry (session cookies have -1)."""
    return [c for c in context.cookies() if c["expires"] > 0]



def visit_from_another_site(page: Page, stack: Stack, target: str) -> None:
    """Follow a link to ``target`` from a page on another origin (the provider's), as a person would."""
    elsewhere = stack.provider_url + "/elsewhere"
    page.route(elsewhere, lambda route: route.fulfill(
        content_type="text/html", body=f'<!doctype html><title>Elsewhere</title><a href="{target}">Go</a>'))
    page.goto(elsewhere)
    page.get_by_role("link", name="Go").click()


def requests_to(context: BrowserContext, origin: str) -> list[str]:
    """A list that fills, from now on, with the URL of every request this browser sends to ``origin``."""
    seen: list[str] = []
    context.on("request", lambda request: seen.append(request.url) if request.url.startswith(origin + "/") else None)
    return seen


def restart(new_context: NewContext, context: BrowserContext) -> BrowserContext:
    """Close the browser and open it again: only the persistent cookies are left."""
    kept = persistent_cookies(context)
    context.close()
    return new_context(kept)
