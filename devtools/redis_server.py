"""A real ``redis-server`` on a free loopback port, in its own directory: for tests, the demo and the benchmark.

::

    with RedisServer(tmp_path / "redis") as server:
        store = RedisStore(server.url)

The server persists nothing unless ``appendonly`` (``--save ""``: no RDB
snapshots), and runs with ``maxmemory-policy noeviction`` as the gateway
requires (an evicted key is a forgotten sign-out). :meth:`RedisServer.restart`
keeps the port and the directory, so a test can stop Redis, start it again on
its append-only file and find its keys back.

A missing ``redis-server`` is an error (:class:`RedisNotFound`), never a
reason to skip: CI installs it like nginx.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import redis

from devtools.processes import Process, find_executable, free_port

REDIS_CANDIDATES = ("/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server")
START_TIMEOUT = 15.0


class RedisNotFound(RuntimeError):
    """No redis-server binary: the Redis tests cannot run (and must fail, not skip)."""


def find_redis_server() -> str:
    """The redis-server binary: on PATH, or where the Debian package puts it."""
    return find_executable("redis-server", REDIS_CANDIDATES, RedisNotFound, "redis-server")


class RedisServer:
    """One redis-server process on ``127.0.0.1:port`` with ``directory`` as its working dir.

    ``extra_config`` adds directives (``{"requirepass": "…"}``,
    ``{"enable-debug-command": "local"}``), passed as ``--name value``.
    """

    def __init__(self, directory: str | os.PathLike[str], port: int | None = None, appendonly: bool = False,
                 extra_config: Mapping[str, str] | None = None) -> None:
        self.directory = Path(directory)
        self.port = port or free_port()
        self.appendonly = appendonly
        self.extra_config = dict(extra_config or {})
        self.binary = find_redis_server()
        self._process: Process | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (with the ``requirepass`` password when one is configured)."""
        password = self.extra_config.get("requirepass")
        auth = f":{password}@" if password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def argv(self) -> list[str]:
        config = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "dir": str(self.directory),
            "daemonize": "no",
            "logfile": "",  # to stdout, which Process appends to redis.log
            "save": "",  # no RDB snapshots: persistence is the append-only file or nothing
            "appendonly": "yes" if self.appendonly else "no",
            "appendfsync": "everysec",
            "maxmemory-policy": "noeviction",
            "protected-mode": "yes",
            **self.extra_config,
        }
        argv = [self.binary]
        for name, value in config.items():
            argv += [f"--{name}", value]
        return argv

    def client(self, **kwargs: object) -> redis.Redis:
        """A redis-py client on this server (the caller closes it)."""
        options: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 5, **kwargs}
        return redis.Redis.from_url(self.url, **options)

    def start(self, timeout: float = START_TIMEOUT) -> RedisServer:
        """Start the server and return once it answers PING (its append-only file loaded)."""
        if self._process is not None and self._process.running:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        self._process = Process(self.argv(), cwd=self.directory, log_path=self.log_path, name="redis-server")
        self._process.start()
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        with redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1) as client:
            while True:
                if not self._process.running:
                    output = self._process.output(tail=30)
                    self._process.stop()
                    raise RuntimeError(f"redis-server exited before answering on port {self.port}:\n{output}")
                try:
                    if client.ping():
                        return self
                except (redis.exceptions.RedisError, OSError) as exc:  # not listening yet, or LOADING
                    last = exc
                if time.monotonic() > deadline:
                    output = self._process.output(tail=30)
                    self._process.stop()
                    raise RuntimeError(f"redis-server did not answer PING on port {self.port} within {timeout}s"
                                       f" ({last}):\n{output}")
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM (Redis flushes its append-only file on the way out), then wait for the exit."""
        if self._process is not None:
            self._process.stop()
            self._process = None

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed on the way out (``appendfsync everysec`` bounds the loss)."""
        if self._process is not None and self._process.proc is not None and self._process.running:
            os.killpg(self._process.proc.pid, 9)
        self.stop()

    def restart(self, timeout: float = START_TIMEOUT) -> RedisServer:
        """Stop and start again on the same port and directory (so on the same append-only file)."""
        self.stop()
        return self.start(timeout)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


__all__ = ["RedisNotFound", "RedisServer", "find_redis_server"]
