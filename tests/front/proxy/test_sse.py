"""Server-Sent Events and slow downloads stream through nginx in both modes: the first part arrives at once.

The app (tests/upstream_app.py ``/held``) sends a first part, then waits
until the test asks ``/release`` (straight to the app) before sending the
rest. The test releases only after it has read the first part through nginx
(and, in mode 2, the gateway): a proxy that buffered it would hold it until
the read timeout fails the test. No timing assertion.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from devtools.stack import Stack
from tests.stack_fixtures import echo_stack_fixture  # noqa: F401 - fixture
from tests.test_nginx import signed_in

pytestmark = pytest.mark.nginx

# The app gives up waiting after 60 s; a buffered first part would show as a read timeout well before.
READ_TIMEOUT = 15


@pytest.fixture
def grace(echo_stack: Stack) -> Iterator[httpx.Client]:
    with signed_in(echo_stack, "grace") as client:
        yield client


def read_until(chunks: Iterator[bytes], expected: bytes) -> bytes:
    """Read streamed chunks until ``expected`` has arrived (raises httpx.ReadTimeout if it does not)."""
    received = b""
    while expected not in received:
        received += next(chunks)
    return received


def held_stream(stack: Stack, client: httpx.Client, query: str, first: bytes, rest: bytes) -> None:
    stream = secrets.token_hex(8)
    timeout = httpx.Timeout(READ_TIMEOUT, read=READ_TIMEOUT)
    with client.stream("GET", f"{stack.url}/held?stream={stream}&{query}", timeout=timeout) as response:
        assert response.status_code == 200, stack.logs()
        chunks = response.iter_raw()
        received = read_until(chunks, first)
        assert rest not in received
        release = httpx.get(f"{stack.app_url}/release?stream={stream}", timeout=READ_TIMEOUT)
        assert release.status_code == 200, "the app had already sent the rest"
        received += b"".join(chunks)
    assert received == first + rest


@pytest.mark.parametrize("accel", ["", "&accel=no"], ids=["buffering-on", "x-accel-buffering-no"])
def test_server_sent_events_arrive_one_by_one(echo_stack: Stack, grace: httpx.Client, accel: str) -> None:
    """With nginx's default proxy_buffering, and with the app's ``X-Accel-Buffering: no``."""
    held_stream(echo_stack, grace, "type=sse" + accel, b"data: first\n\n", b"data: second\n\n")


def test_slow_download_starts_at_once(echo_stack: Stack, grace: httpx.Client) -> None:
    held_stream(echo_stack, grace, "type=download", b"first part;", b"second part")


def test_accel_buffering_header_is_not_passed_to_the_browser(echo_stack: Stack, grace: httpx.Client) -> None:
    stream = secrets.token_hex(8)
    with grace.stream("GET", f"{echo_stack.url}/held?stream={stream}&type=sse&accel=no") as response:
        assert response.headers["content-type"] == "text/event-stream"
        assert "x-accel-buffering" not in response.headers
        httpx.get(f"{echo_stack.app_url}/release?stream={stream}", timeout=READ_TIMEOUT)
        response.read()
