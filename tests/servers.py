"""Start real servers on loopback for the tests.

``UvicornThread`` serves an ASGI app with uvicorn in a background thread of the
test process: real sockets, real HTTP, no in-process shortcuts. ``Process``
runs a command (nginx, a console script) and stops it, process group and all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


class UvicornThread:
    """An ASGI app served by uvicorn on 127.0.0.1:<port> in a daemon thread."""

    def __init__(self, app: Any, port: int | None = None, **config: Any) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config.setdefault("log_level", "warning")
        config.setdefault("lifespan", "on")
        config.setdefault("loop", "asyncio")
        config.setdefault("proxy_headers", False)  # as `openid-gateway serve`: we resolve XFF ourselves
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, **config))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> UvicornThread:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> UvicornThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Process:
    """A child process in its own process group, stopped with everything it started."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None, cwd: str | None = None) -> None:
        self.argv = list(argv)
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self._output = ""

    def start(self, wait_port: int | None = None) -> Process:
        self.proc = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        if wait_port is not None:
            try:
                wait_for_port(wait_port)
            except TimeoutError:
                self.stop()
                raise RuntimeError(f"{self.argv[0]} did not start:\n{self.output()}") from None
        return self

    def output(self) -> str:
        """What the process printed; empty while it runs (reading then would block)."""
        if self.proc is not None and self.proc.poll() is not None:
            self._collect()
        return self._output

    def _collect(self) -> None:
        assert self.proc is not None
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            with self.proc.stdout:
                self._output += self.proc.stdout.read().decode(errors="replace")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._collect()

    def __enter__(self) -> Process:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def serving(app: Any, **config: Any) -> Iterator[UvicornThread]:
    with UvicornThread(app, **config) as server:
        yield server
