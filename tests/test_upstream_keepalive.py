"""The connections to the app are kept alive: nginx's (mode 1) and the gateway's (mode 2) are reused.

A new connection per request costs the app an accept, a new protocol object and a new parser each
time, and under load a TIME_WAIT socket: the microblog's CPU per request behind each mode was
measured with this in mind (docs/performance.md). ``protect.conf`` needs ``proxy_http_version 1.1``
and an empty ``Connection`` header for nginx's ``keepalive`` to apply; the echo app counts the
client connections it has seen (``/connections``).
"""

from __future__ import annotations

import httpx
import pytest

from devtools.stack import Stack
from tests.signin_steps import sign_in
from tests.stack_fixtures import echo_stack_fixture  # noqa: F401 - fixtures

pytestmark = pytest.mark.nginx

REQUESTS = 40


def test_forty_signed_in_requests_reach_the_app_over_at_most_two_new_connections(echo_stack: Stack) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as browser:  # one connection: one nginx worker
        sign_in(browser, echo_stack.url, echo_stack.provider_identifier, "keepalive")
        before = browser.get(echo_stack.url + "/connections").json()["connections"]
        for _ in range(REQUESTS):
            assert browser.get(echo_stack.url + "/echo/page").status_code == 200
        after = browser.get(echo_stack.url + "/connections").json()["connections"]
    assert after - before <= 2, f"{after - before} new connections to the app for {REQUESTS + 1} requests"
