"""The stacks under test: :class:`devtools.stack.Stack` plus the server blocks of the other routes.

nginx runs the project's own configuration (rendered by
:func:`devtools.stack.render_nginx_conf`, so modes 1 and 2 are measured with
exactly what an operator copies). The benchmark adds server blocks to that
nginx, each on its own port, each in front of the same ``upstream app``
(same keepalive pool) as the gateway's rows:

- ``direct``: nginx straight to the app, no authentication (the same proxy
  settings as ``deploy/nginx/protect.conf`` minus the authentication);
- ``ceiling1``, the ceiling of mode 1: the project's ``protect.conf`` and
  ``gateway-locations.conf`` unchanged except that the auth check goes to a
  zero-cost authenticator (another server block of the same nginx answering
  ``return 200`` with identity headers, over keep-alive) instead of the
  gateway. No ``auth_request`` design with these snippets can beat it;
- ``ceiling2``, the ceiling of mode 2: the project's ``proxy-mode.conf``
  with a second plain nginx proxy hop (another server block proxying to the
  app, over keep-alive) instead of the gateway: the cost of any extra hop;
- ``llng``: LemonLDAP::NG's portal and protected site (:mod:`bench.llng`).

Two routes are not nginx's: ``apache`` (Apache → the app) and ``apache_oidc``
(Apache with mod_auth_openidc → the app), one Apache child process for both
(:mod:`bench.apache`), signed in through the stack's OpenID Connect provider.

The internal server blocks (the authenticator, the second hop) log nothing:
they are the cheapest such component can be.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from bench import apache, llng
from devtools.processes import Process, free_port
from devtools.stack import NGINX_SNIPPETS, Mode, Progress, Stack, write_nginx_prefix

TRIVIAL_UPSTREAM = "tests.upstream_app:app"
TRIVIAL_PATH = "/hello"
MICROBLOG_PATH = "/"

Route = Literal["direct", "ceiling1", "ceiling2", "llng", "apache", "apache_oidc"]
APACHE_ROUTES: tuple[Route, ...] = ("apache", "apache_oidc")

DIRECT_SERVER = """
    # Added by the benchmark (bench/stacks.py): nginx straight to the app.
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

# Identity headers of the sizes the gateway sends (a claimed identifier, a nickname, a proof).
ZERO_COST_IDENTITY = {
    "X-Gateway-User": "http://127.0.0.1:40000/openid/id/bench",
    "X-Gateway-Nickname": "bench",
    "X-Gateway-Proof": "v1." + "0" * 10 + "." + "A" * 43,
}

CEILING1_SERVERS = """
    # Added by the benchmark (bench/stacks.py): the ceiling of mode 1. The zero-cost authenticator...
    upstream bench_zero_cost_auth {
        server 127.0.0.1:%(auth_port)d;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:%(auth_port)d;
        access_log off;
        location / {
%(identity)s
            return 200;
        }
    }
    # ...asked by the project's snippets, exactly as mode 1 asks the gateway.
    server {
        listen 127.0.0.1:%(port)d;
        server_name localhost;
%(locations)s
        location / {
            include deploy/nginx/protect.conf;
            proxy_pass http://app;
        }
    }
"""

CEILING2_SERVERS = """
    # Added by the benchmark (bench/stacks.py): the ceiling of mode 2. A second plain proxy hop...
    upstream bench_second_hop {
        server 127.0.0.1:%(hop_port)d;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:%(hop_port)d;
        access_log off;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $gw_connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }
    }
    # ...where mode 2 has the gateway: the project's proxy-mode.conf, sent to that hop.
    server {
        listen 127.0.0.1:%(port)d;
        server_name localhost;
%(proxy_mode)s
    }
"""

AUTH_LOCATION = "location = /_gateway/auth {"
GATEWAY_PASS = "proxy_pass http://gateway;"

# The benchmark signs in hundreds of times a second from 127.0.0.1: lift the
# per-address limit on sign-in starts (the limiter itself still runs).
# The bearer row: the stack's OpenID Connect provider mints access tokens for this audience, which the
# gateway of the trivial app's mode 1 stack takes on TRIVIAL_PATH (its api_paths).
BEARER_AUDIENCE = "openid-gateway-bench"
BENCH_GATEWAY_ENV = {"GATEWAY_LOGIN_RATE_LIMIT": "1000000000"}


def _indent(text: str, spaces: int = 8) -> str:
    return "\n".join((" " * spaces + line) if line.strip() else "" for line in text.splitlines())


def zero_cost_locations(snippet: str | None = None) -> str:
    """``gateway-locations.conf`` with its auth check (only that location) sent to the zero-cost authenticator."""
    text = (NGINX_SNIPPETS / "gateway-locations.conf").read_text() if snippet is None else snippet
    if text.count(AUTH_LOCATION) != 1:
        raise ValueError(f"gateway-locations.conf must contain {AUTH_LOCATION!r} exactly once")
    start = text.index(AUTH_LOCATION)
    at = text.find(GATEWAY_PASS, start)
    if at < 0 or at > text.find("}", start):
        raise ValueError(f"the auth check location of gateway-locations.conf must say {GATEWAY_PASS!r}")
    return text[:at] + "proxy_pass http://bench_zero_cost_auth;" + text[at + len(GATEWAY_PASS):]


def second_hop_proxy_mode(snippet: str | None = None) -> str:
    """``proxy-mode.conf`` with its ``proxy_pass`` to the gateway sent to the second hop instead."""
    text = (NGINX_SNIPPETS / "proxy-mode.conf").read_text() if snippet is None else snippet
    if text.count(GATEWAY_PASS) != 1:
        raise ValueError(f"proxy-mode.conf must contain {GATEWAY_PASS!r} exactly once")
    return text.replace(GATEWAY_PASS, "proxy_pass http://bench_second_hop;")


def with_servers(conf: str, servers: str) -> str:
    """``conf`` with ``servers`` added at the end of its ``http`` block."""
    end = conf.rstrip().rfind("}")
    if end < 0 or "upstream app" not in conf:
        raise ValueError("nginx.conf must end with its http block and define `upstream app`")
    return conf[:end] + servers + conf[end:]


def with_direct_server(conf: str, port: int) -> str:
    """``conf`` with the direct server block added at the end of its ``http`` block."""
    return with_servers(conf, DIRECT_SERVER % {"port": port})


class BenchStack(Stack):
    """A :class:`Stack` whose nginx also serves ``routes`` (see the module), each on its own port.

    ``stack_options`` go to :class:`Stack` as they are.
    """

    def __init__(self, mode: Mode, *, upstream: str | None, routes: Sequence[Route] = ("direct",),
                 gateway_env: Mapping[str, str] | None = None, log_dir: Path | None = None,
                 progress: Progress | None = None, **stack_options: Any) -> None:
        super().__init__(mode, upstream=upstream, gateway_env={**BENCH_GATEWAY_ENV, **(gateway_env or {})},
                         log_dir=log_dir, log_level="warning", progress=progress, **stack_options)
        self.routes = tuple(routes)
        self.route_ports = {route: free_port() for route in self.routes}
        self._internal_ports = {"auth": free_port(), "hop": free_port()}
        self.llng: llng.LLNGHandler | None = None
        self.apache: apache.Apache | None = None
        if any(route in APACHE_ROUTES for route in self.routes):
            apache.check_installed()  # before anything starts, like a missing nginx
            for route in APACHE_ROUTES:
                self.route_ports.setdefault(route, free_port())

    def access_token(self, username: str = "bench") -> str:
        """An access token from the stack's OpenID Connect provider (``bearer_audience`` set), as a client holds."""
        request = urllib.request.Request(self.oidc_url + "/_dev/access-token", method="POST",
                                         data=json.dumps({"username": username}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.load(response)["access_token"])

    def route_url(self, route: Route) -> str:
        return f"http://127.0.0.1:{self.route_ports[route]}"

    @property
    def direct_url(self) -> str:
        return self.route_url("direct")

    def _servers(self) -> str:
        blocks = []
        for route, port in self.route_ports.items():
            if route in APACHE_ROUTES:
                continue  # Apache's, not nginx's
            if route == "direct":
                blocks.append(DIRECT_SERVER % {"port": port})
            elif route == "ceiling1":
                identity = "\n".join(f'            add_header {name} "{value}";'
                                     for name, value in ZERO_COST_IDENTITY.items())
                blocks.append(CEILING1_SERVERS % {"port": port, "auth_port": self._internal_ports["auth"],
                                                  "identity": identity, "locations": _indent(zero_cost_locations())})
            elif route == "ceiling2":
                blocks.append(CEILING2_SERVERS % {"port": port, "hop_port": self._internal_ports["hop"],
                                                  "proxy_mode": _indent(second_hop_proxy_mode())})
            else:
                assert self.llng is not None
                blocks.append(llng.server_blocks(port, self.llng.socket))
        return "".join(blocks)

    def _nginx_argv(self) -> list[str]:
        argv = super()._nginx_argv()
        assert self.nginx_prefix is not None
        conf = (self.nginx_prefix / "nginx.conf").read_text()
        write_nginx_prefix(self.nginx_prefix, with_servers(conf, self._servers()))
        return argv

    def _process(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> Process:
        """The stack's processes; the OpenID Connect provider also registers mod_auth_openidc's client."""
        if name == "oidc" and "apache_oidc" in self.route_ports:
            argv = [*argv, "--clients", json.dumps([apache.client(self.route_ports["apache_oidc"])])]
        return super()._process(name, argv, env)

    def start(self) -> BenchStack:
        """LemonLDAP::NG's handler first (nginx's config names its socket), then the stack, then Apache."""
        if "llng" in self.routes:
            self._report("LemonLDAP::NG's FastCGI server", "starting")
            self.llng = llng.LLNGHandler(self.log_dir / "llng.log").start()
            self._report("LemonLDAP::NG's FastCGI server", "ok")
        try:
            super().start()
            if "apache_oidc" in self.route_ports:
                self._report("Apache with mod_auth_openidc", "starting")
                self.apache = apache.Apache(self.log_dir / "apache.log", direct_port=self.route_ports["apache"],
                                            oidc_port=self.route_ports["apache_oidc"], app_port=self.ports.app,
                                            issuer=self.oidc_url).start()
                self._report("Apache with mod_auth_openidc", "ok")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.apache is not None:
            self.apache.stop()
            self.apache = None
        super().stop()
        if self.llng is not None:
            self.llng.stop()
            self.llng = None

    def pid(self, name: str) -> int:
        """The process id of one component (``gateway`` or ``gateway-N``, ``app``, ``nginx``, ``provider``,
        ``llng``, ``redis``)."""
        if name == "llng":
            assert self.llng is not None, "no LemonLDAP::NG in this stack"
            return self.llng.pid
        if name == "apache":
            assert self.apache is not None, "no Apache in this stack"
            return self.apache.pid
        if name == "redis":
            assert self.redis is not None, "no Redis in this stack"
            with self.redis.client() as client:
                return int(client.info("server")["process_id"])
        process = self.processes[name].proc
        assert process is not None, f"{name} is not running"
        return process.pid

    def gateway_pids(self) -> list[int]:
        """Every gateway instance's process id."""
        return [self.pid(name) for name in self.gateway_names]

    def pids(self) -> dict[str, int | list[int]]:
        """Each component's process (trees), for :class:`bench.procstat.CPUMeter`: the instances are one."""
        pids: dict[str, int | list[int]] = {name: self.pid(name) for name in ("nginx", "app", "provider")}
        pids["gateway"] = self.gateway_pids()
        for name, present in (("llng", self.llng is not None), ("redis", self.redis is not None),
                              ("apache", self.apache is not None)):
            if present:
                pids[name] = self.pid(name)
        return pids

    def check_running(self) -> None:
        dead = self.stopped() + (["llng"] if self.llng is not None and not self.llng.running else []) + (
            ["apache"] if self.apache is not None and not self.apache.running else [])
        if dead:
            llng_log = f"\n--- llng.log ---\n{self.log('llng', 20)}" if self.llng is not None else ""
            if self.apache is not None:
                llng_log += f"\n--- Apache's error.log ---\n{self.apache.error_log()}"
            raise RuntimeError(f"{', '.join(dead)} stopped during the benchmark:\n{self.logs(tail=20)}{llng_log}")


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


__all__ = ["BENCH_GATEWAY_ENV", "MICROBLOG_PATH", "TRIVIAL_PATH", "TRIVIAL_UPSTREAM", "BenchStack", "Route",
           "machine", "second_hop_proxy_mode", "with_direct_server", "with_servers", "zero_cost_locations"]
