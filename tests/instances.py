"""Talking to one chosen gateway instance of a several-instance :class:`~devtools.stack.Stack`.

Shared by tests/test_multi_instance.py and tests/test_redis_faults.py. A step
that must happen on one instance asks it directly, with the Host nginx sends
(:func:`direct`, :func:`ask`); what nginx's round robin chose shows in the
stack's ``X-Gateway-Instance`` header (:func:`instance_steps`).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator

import httpx

from devtools.stack import INSTANCE_HEADER, Stack
from tests.signin_steps import sign_in

SESSION, REMEMBER = "gw_session", "gw_remember"


def direct(stack: Stack, number: int, cookies: dict[str, str] | None = None) -> httpx.Client:
    """A client of gateway instance ``number`` itself, sending the Host nginx sends."""
    return httpx.Client(base_url=stack.instance_url(number), headers={"Host": stack.url.removeprefix("http://")},
                        cookies=cookies, timeout=10)


def ask(stack: Stack, number: int, cookies: dict[str, str]) -> httpx.Response:
    """Instance ``number``'s answer for a protected page, asked as nginx asks it.

    Mode 1: the auth check (200 or 401); mode 2: the page itself (200 or a 302 to /login).
    """
    with direct(stack, number, cookies) as client:
        if stack.mode == "auth_request":
            return client.get("/_gateway/auth", headers={"X-Original-URI": "/echo", "X-Original-Method": "GET"})
        return client.get("/echo")


def accepted(stack: Stack, number: int, cookies: dict[str, str]) -> bool:
    response = ask(stack, number, cookies)
    refused = 401 if stack.mode == "auth_request" else 302
    assert response.status_code in (200, refused), (response.status_code, response.text[:300])
    return response.status_code == 200


def refused_everywhere_within(stack: Stack, cookies: dict[str, str], numbers: list[int], deadline: float) -> float:
    """Poll the instances until each refuses ``cookies``; the seconds it took (AssertionError after ``deadline``)."""
    start = time.monotonic()
    waiting = list(numbers)
    while waiting:
        waiting = [number for number in waiting if accepted(stack, number, cookies)]
        elapsed = time.monotonic() - start
        assert not waiting or elapsed < deadline, f"instances {waiting} still accept after {elapsed:.2f}s"
        time.sleep(0.02)
    return time.monotonic() - start


@contextlib.contextmanager
def signed_in(stack: Stack, username: str, *, remember: bool = False) -> Iterator[httpx.Client]:
    """A browser signed in through nginx (following redirects)."""
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        sign_in(browser, stack.url, stack.provider_identifier, username, remember=remember)
        assert browser.cookies.get(SESSION), f"no session after sign-in\n{stack.logs()}"
        yield browser


def instance_steps(stack: Stack, client: httpx.Client) -> list[tuple[str, str, int]]:
    """Record (method, path, instance) of every gateway page nginx answers for ``client``."""
    steps: list[tuple[str, str, int]] = []

    def record(response: httpx.Response) -> None:
        named = response.headers.get(INSTANCE_HEADER)
        if named and str(response.url).startswith(stack.url):
            steps.append((response.request.method, response.url.path, stack.instance_of(named)))

    client.event_hooks["response"].append(record)
    return steps


def csrf_token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:1000]
    return found.group(1)


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``check`` until it holds; the seconds that took (AssertionError after ``timeout``)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not {what} after {timeout}s")
        time.sleep(0.05)
    return time.monotonic() - start
