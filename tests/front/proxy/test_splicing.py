"""Proxy mode: a response ends where its framing says; nothing beyond it is parsed or served.

The upstream here is deliberately broken: a raw socket server whose answers
carry a short ``Content-Length`` followed by a crafted second response with an
attacker's ``Location`` and ``Set-Cookie``. An app that miscounts its body does
the same by accident. The crafted bytes must never reach any client, and the
next request (perhaps another person's) must get its real answer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import select
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from gateway.front.proxy._connection import Pool
from tests.front.proxy.test_proxy import ProxyProcess

T = TypeVar("T")

CRAFTED = (
    b"HTTP/1.1 302 Found\r\nLocation: https://attacker.example/phish\r\n"
    b"Set-Cookie: session=attacker; Path=/\r\nContent-Length: 0\r\n\r\n"
)
# The first write ends inside the crafted head, after its Set-Cookie line.
CUT = CRAFTED.index(b"Content-Length")
SHORT = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"


class BrokenUpstream:
    """An HTTP/1.1 upstream on a raw socket; some paths answer with more than their framing says.

    - ``/splice``: the short response and the crafted one in one write;
    - ``/splice-split``: the short response and the start of the crafted one,
      the rest when the next request arrives (on any connection);
    - ``/late``: a correct response, then the crafted one once the test sets ``send_late``;
    - anything else: ``real answer for <path>``, correctly framed.
    """

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests = 0
        self.request_arrived = threading.Condition()
        self.send_late = threading.Event()
        self.late_sent = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> BrokenUpstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.send_late.set()
        self.sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                path = head.split(b" ", 2)[1].decode()
                with self.request_arrived:
                    self.requests += 1
                    seen = self.requests
                    self.request_arrived.notify_all()
                try:
                    self._answer(conn, path, seen)
                except OSError:
                    return  # the proxy closed the connection: what it should do

    def _answer(self, conn: socket.socket, path: str, seen: int) -> None:
        if path == "/splice":
            conn.sendall(SHORT + CRAFTED)
        elif path == "/splice-split":
            conn.sendall(SHORT + CRAFTED[:CUT])
            with self.request_arrived:
                self.request_arrived.wait_for(lambda: self.requests > seen, timeout=10)
            conn.sendall(CRAFTED[CUT:])
        elif path == "/late":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")
            self.send_late.wait(10)
            conn.sendall(CRAFTED)
            self.late_sent.set()
        else:
            body = f"real answer for {path}".encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Real: yes\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))


@pytest.fixture
def broken() -> Iterator[BrokenUpstream]:
    with BrokenUpstream() as upstream:
        yield upstream


def assert_clean(response: httpx.Response) -> None:
    """Nothing of the crafted response: no attacker header, status or body."""
    assert "location" not in response.headers
    assert "set-cookie" not in response.headers
    assert "attacker" not in str(response.headers).lower()


def assert_real_answer(response: httpx.Response, path: str) -> None:
    assert (response.status_code, response.text) == (200, f"real answer for {path}")
    assert response.headers["x-real"] == "yes"
    assert_clean(response)


@pytest.mark.parametrize("attack", ["/splice", "/splice-split"])
def test_bytes_after_a_response_are_never_served_and_the_next_request_gets_its_answer(
    broken: BrokenUpstream, attack: str
) -> None:
    proxy = ProxyProcess(broken.url)
    with proxy, httpx.Client(base_url=proxy.url, timeout=30) as attacker, \
            httpx.Client(base_url=proxy.url, timeout=30) as victim:
        first = attacker.get(attack)
        assert (first.status_code, first.text) == (200, "hello")
        assert_clean(first)
        for n in range(3):
            assert_real_answer(victim.get(f"/victim/{n}"), f"/victim/{n}")
        log = proxy.stop()
    assert "upstream sent bytes after the end of a response" in log
    assert "Traceback" not in log


def test_bytes_arriving_while_the_connection_idles_in_the_pool_are_never_served(broken: BrokenUpstream) -> None:
    proxy = ProxyProcess(broken.url)
    with proxy, httpx.Client(base_url=proxy.url, timeout=30) as client:
        assert client.get("/late").text == "late"
        broken.send_late.set()
        assert broken.late_sent.wait(10)
        for n in range(3):
            assert_real_answer(client.get(f"/victim/{n}"), f"/victim/{n}")


def run_in_loop(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on a fresh event loop in its own thread (whatever loop this thread holds)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result(timeout=30)


def wait_readable(fd: int, seconds: float) -> None:
    """Block (the event loop too) until ``fd`` has bytes to read."""
    deadline = time.monotonic() + seconds
    while not select.select([fd], [], [], 0.05)[0]:
        assert time.monotonic() < deadline, "the stray bytes never arrived"


def test_an_idle_connection_with_unread_bytes_is_discarded_before_reuse(broken: BrokenUpstream) -> None:
    """The stray bytes sit in the socket, not yet seen by the event loop, when the next request comes."""

    async def scenario() -> tuple[bool, bool]:
        pool = Pool("127.0.0.1", broken.port, None, 4, 5)
        conn, _ = await pool.acquire(5)
        conn.begin(False)
        conn.write(b"GET /late HTTP/1.1\r\nhost: upstream\r\n\r\n")
        conn.request_sent = True
        while not conn.done:
            await conn.wait(5)
        assert conn.take_body() == b"late"
        pool.release(conn, True)
        broken.send_late.set()
        assert broken.late_sent.wait(10)
        assert conn.transport is not None
        wait_readable(conn.transport.get_extra_info("socket").fileno(), 10)  # no await: the loop has not read them
        again, reused = await pool.acquire(5)
        pool.close()
        again.close()
        return again is conn, reused

    same, reused = run_in_loop(scenario)
    assert not same and not reused
