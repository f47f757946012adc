"""Start real servers on loopback for the tests.

``UvicornThread`` serves an ASGI app with uvicorn in a background thread of the
test process: real sockets, real HTTP, no in-process shortcuts. ``Process``
(from :mod:`devtools.processes`) runs a command (nginx, a console script) and
stops it, process group and all.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import uvicorn

from devtools.processes import Process, free_port, wait_for_port

__all__ = ["Process", "UvicornThread", "free_port", "run_async", "serving", "wait_for_port"]

T = TypeVar("T")


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


@contextlib.contextmanager
def serving(app: Any, **config: Any) -> Iterator[UvicornThread]:
    with UvicornThread(app, **config) as server:
        yield server


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a thread of its own: Playwright's sync API may hold the main thread's event loop
    (the browser tests run in the same process), where ``asyncio.run`` refuses to start."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
