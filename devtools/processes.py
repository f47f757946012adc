"""Child processes on loopback ports: start, wait until they listen, stop them and all they started.

Shared by :mod:`devtools.stack` (``make demo``, the nginx tests, the benchmark)
and the tests. Every process runs in its own session (process group), so
stopping it also stops what it forked (nginx workers, uvicorn reloaders), and
its output goes to a file, never to a pipe nobody reads (a full pipe blocks the
child).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

STOP_TIMEOUT = 10.0


def find_executable(name: str, candidates: Sequence[str], missing: type[RuntimeError], package: str) -> str:
    """``name`` on PATH, else the first executable of ``candidates`` (sbin is not on a normal user's PATH).

    Raises ``missing`` naming the Debian package: a test that needs a real
    server fails without it, never skips.
    """
    found = shutil.which(name)
    if found:
        return found
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    raise missing(f"{name} not found: apt-get install {package}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``host:port`` now (old TIME_WAIT connections do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn and nginx do
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 15.0) -> None:
    """Return once something accepts connections on ``host:port``; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


def _connect(port: int | Path) -> socket.socket:
    if isinstance(port, Path):
        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.settimeout(0.5)
            sock.connect(str(port))
        except OSError:
            sock.close()
            raise
        return sock
    return socket.create_connection(("127.0.0.1", port), timeout=0.5)


class Process:
    """A command in its own process group, its output appended to ``log_path``.

    The environment is ``base_env`` (default: this process's) updated with
    ``env``. Without ``log_path`` the output goes to an anonymous temporary
    file that :meth:`output` reads back.
    """

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        name: str | None = None,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self.argv = [str(arg) for arg in argv]
        self.env = {**(os.environ if base_env is None else base_env), **(env or {})}
        self.cwd = cwd
        self.log_path = Path(log_path) if log_path is not None else None
        self.name = name or Path(self.argv[0]).name
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._kept_output = ""

    def start(self, wait_port: int | Path | None = None, timeout: float = 15.0) -> Process:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            # Append mode: several runs (and processes that reopen the file) add to it, never overwrite.
            self._log = self.log_path.open("ab")
        else:
            self._log = tempfile.TemporaryFile()  # closed in close()
        self.proc = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )
        if wait_port is not None:
            self.wait_for_port(wait_port, timeout=timeout)
        return self

    def wait_for_port(self, port: int | Path, timeout: float = 15.0) -> None:
        """Wait until the process listens on ``port`` (a loopback TCP port, or a Unix socket's path); if it dies
        or times out, stop it and say why."""
        assert self.proc is not None, "start() first"
        deadline = time.monotonic() + timeout
        while True:
            if self._exited():
                self.stop()
                raise RuntimeError(
                    f"{self.name} exited with status {self.proc.returncode} before listening on port {port}:\n"
                    f"{self.output(tail=40)}"
                )
            try:
                with _connect(port):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"{self.name} did not listen on port {port} within {timeout}s:\n{self.output(tail=40)}"
                    ) from None
                time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None and not self._exited()

    def _exited(self) -> bool:
        """Whether the leader has exited, *without* reaping it.

        An unreaped leader keeps its pid, so its process group id cannot be
        reused by an unrelated process while :meth:`stop` still signals it.
        """
        assert self.proc is not None
        if self.proc.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def output(self, tail: int | None = None) -> str:
        """What the process has written so far (the last ``tail`` lines)."""
        if self.log_path is not None:
            if self._log is not None:
                self._log.flush()
            text = self.log_path.read_bytes().decode(errors="replace") if self.log_path.exists() else ""
        elif self._log is not None:
            self._log.flush()
            self._log.seek(0)
            text = self._log.read().decode(errors="replace")
        else:
            text = self._kept_output
        if tail is not None:
            text = "\n".join(text.splitlines()[-tail:])
        return text

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the process group, wait up to ``timeout`` seconds, then SIGKILL what is left of it."""
        if self.proc is None or self.proc.returncode is not None:
            return
        pgid = self.proc.pid  # start_new_session: the leader's pid is the group id
        if not self._exited():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while not self._exited() and time.monotonic() < deadline:
                time.sleep(0.02)
        # The leader is exited but not yet reaped, so the group id is still ours:
        # anything left in it (a worker that ignored SIGTERM) is killed before reaping.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.proc.wait()
        self.close()

    def close(self) -> None:
        """Stop the process and close its log; the output stays readable."""
        self.stop()
        if self._log is not None:
            if self.log_path is None:
                self._kept_output = self.output()
            self._log.close()
            self._log = None

    def __enter__(self) -> Process:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Process", "find_executable", "free_port", "port_is_free", "wait_for_port"]
