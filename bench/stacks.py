"""The stacks under test: :class:`devtools.stack.Stack` plus one server block for the ceiling.

nginx runs the project's own configuration (rendered by
:func:`devtools.stack.render_nginx_conf`, so modes 1 and 2 are measured with
exactly what an operator copies). The benchmark adds one thing to it: a second
``server`` listening on its own port that proxies straight to the same
``upstream app`` (same keepalive pool, same proxy settings as
``deploy/nginx/protect.conf`` minus the authentication). That is row 1, the
ceiling every mode is compared with.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from devtools.processes import free_port
from devtools.stack import Mode, Progress, Stack, render_nginx_conf, write_nginx_prefix

TRIVIAL_UPSTREAM = "tests.upstream_app:app"
TRIVIAL_PATH = "/hello"
MICROBLOG_PATH = "/"

DIRECT_SERVER = """
    # Added by the benchmark (bench/stacks.py): the ceiling, nginx straight to the app.
    server {
        listen 127.0.0.1:%(port)d;
        server_name localhost;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;            # WebSockets, as protect.conf
            proxy_set_header Connection $gw_connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
        }
    }
"""

# The benchmark signs in hundreds of times a second from 127.0.0.1: lift the
# per-address limit on sign-in starts (the limiter itself still runs).
BENCH_GATEWAY_ENV = {"GATEWAY_LOGIN_RATE_LIMIT": "1000000000"}


def with_direct_server(conf: str, port: int) -> str:
    """``conf`` with the direct server block added at the end of its ``http`` block."""
    end = conf.rstrip().rfind("}")
    if end < 0 or "upstream app" not in conf:
        raise ValueError("nginx.conf must end with its http block and define `upstream app`")
    return conf[:end] + DIRECT_SERVER % {"port": port} + conf[end:]


class BenchStack(Stack):
    """A :class:`Stack` whose nginx also serves the direct (unauthenticated) route on ``direct_port``."""

    def __init__(self, mode: Mode, *, upstream: str | None, gateway_env: Mapping[str, str] | None = None,
                 log_dir: Path | None = None, progress: Progress | None = None) -> None:
        super().__init__(mode, upstream=upstream, gateway_env={**BENCH_GATEWAY_ENV, **(gateway_env or {})},
                         log_dir=log_dir, log_level="warning", progress=progress)
        self.direct_port = free_port()

    @property
    def direct_url(self) -> str:
        return f"http://127.0.0.1:{self.direct_port}"

    def _nginx_argv(self) -> list[str]:
        argv = super()._nginx_argv()
        assert self.nginx_prefix is not None
        conf = with_direct_server(render_nginx_conf(self.mode, self.ports), self.direct_port)
        write_nginx_prefix(self.nginx_prefix, conf)
        return argv

    def pid(self, name: str) -> int:
        """The process id of one component (``gateway``, ``app``, ``nginx``, ``provider``)."""
        process = self.processes[name].proc
        assert process is not None, f"{name} is not running"
        return process.pid

    def pids(self) -> dict[str, int]:
        return {name: self.pid(name) for name in ("nginx", "gateway", "app", "provider")}

    def check_running(self) -> None:
        dead = [name for name, process in self.processes.items() if not process.running]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} stopped during the benchmark:\n{self.logs(tail=20)}")


def machine() -> str:
    """One line describing where the numbers come from."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPU(s), {model}"


__all__ = ["BENCH_GATEWAY_ENV", "MICROBLOG_PATH", "TRIVIAL_PATH", "TRIVIAL_UPSTREAM", "BenchStack", "machine",
           "with_direct_server"]
