"""The whole thing on loopback: OpenID provider, app, gateway and nginx, each a real process.

:class:`Stack` is what ``make demo``, the nginx tests and the benchmark run::

    with Stack(mode="proxy", log_dir=Path("logs")) as stack:
        httpx.get(stack.url + "/")            # through nginx

nginx runs with the project's own configuration: the checked-in ``nginx.conf``
and ``deploy/nginx/*.conf``, copied into a temporary nginx prefix after
:func:`render_nginx_conf` swapped in the ports (the file names its addresses
once each, 127.0.0.1:8080, :9000 and :8000) and, for mode 2, swapped the
marked mode 1 block for ``include deploy/nginx/proxy-mode.conf;``. What the
tests exercise is therefore exactly what an operator copies.

Several instances (``Stack(instances=3, store="redis")``): N gateway
processes on ports of their own share one store (the SQLite file of the
state directory, or a ``redis-server`` the stack starts with its append-only
file), and nginx's one-server ``upstream gateway`` becomes the block of
``deploy/nginx/gateway-upstream.conf`` with one ``server`` line per instance:
round robin, keep-alive, no sticky sessions, in both modes. The stack's nginx
then names the instance that answered a gateway page in ``X-Gateway-Instance``
(development only: the deployed snippets never say it).

Development only: the provider lets anyone sign in as anyone.
"""

from __future__ import annotations

import grp
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from devtools.openid_provider.profiles import PROFILES
from devtools.processes import Process, find_executable, free_port, port_is_free
from devtools.redis_server import RedisServer
from gateway.settings import DEFAULT_PROVIDERS

Mode = Literal["auth_request", "proxy"]
MODES: tuple[Mode, ...] = ("auth_request", "proxy")
StoreKind = Literal["sqlite", "redis"]
STORES: tuple[StoreKind, ...] = ("sqlite", "redis")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NGINX_CONF = PROJECT_ROOT / "nginx.conf"
NGINX_SNIPPETS = PROJECT_ROOT / "deploy" / "nginx"
# Several instances: its `upstream gateway` block replaces nginx.conf's (one server line per instance).
UPSTREAM_CONF = NGINX_SNIPPETS / "gateway-upstream.conf"
UPSTREAM_BLOCK = "upstream gateway {"
# Added to the stack's server block with several instances: which instance answered (tests, the demo).
INSTANCE_HEADER = "X-Gateway-Instance"
# The directives of the checked-in nginx.conf that name each server's address.
CONF_ADDRESSES = {
    "nginx": "listen 127.0.0.1:8080;",
    "gateway": "server unix:/run/openid-gateway/gateway.sock;",
    "app": "server 127.0.0.1:8000;",
}
# nginx.conf's TLS blocks (commented out there: production only), uncommented by with_tls().
TLS_BLOCKS = (("# --- TLS: begin", "# --- TLS: end"), ("# --- TLS redirect: begin", "# --- TLS redirect: end"))
MODE1_BEGIN = "# --- mode 1 (auth_request): begin"
MODE1_END = "# --- mode 1 (auth_request): end"
PROXY_MODE_INCLUDE = "include deploy/nginx/proxy-mode.conf;"
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
LOCAL_PROVIDER_NAME = "Local dev provider"
# The development OpenID Connect provider's button, and the client it registers for the gateway
# (python -m devtools.oidc_provider --gateway-url: client "gateway", secret "dev-secret").
LOCAL_OIDC_NAME = "Local OpenID Connect"
LOCAL_OIDC_CLIENT = ("gateway", "dev-secret")
# The local provider's user name the demo puts in the group "admins".
DEMO_ADMIN_USER = "admin"
START_TIMEOUT = 30.0

# Called with (component, "starting" | "ok" | "failed").
Progress = Callable[[str, str], None]
# Called with a gateway instance's name ("gateway", "gateway-2") and its GATEWAY_* settings; returns the
# command that runs it and the variables to set: how the container test runs the image
# (devtools.image.ContainerLauncher). Without one, `python -m gateway serve` from this tree.
GatewayLauncher = Callable[[str, Mapping[str, str]], tuple[list[str], dict[str, str]]]


class NginxNotFound(RuntimeError):
    """No nginx binary: the stack cannot run (and the nginx tests must fail, not skip)."""


def find_nginx() -> str:
    """The nginx binary: on PATH, or in sbin (not on a normal user's PATH on Debian)."""
    return find_executable("nginx", NGINX_CANDIDATES, NginxNotFound, "nginx")


@dataclass(frozen=True, slots=True)
class Ports:
    """The loopback ports of a stack (``oidc``, ``redis`` 0: a free one is picked).

    ``gateway`` is the first gateway instance's; ``extra_gateways`` those of
    instances 2, 3, ... (free ones are picked for instances it does not name).
    """

    nginx: int
    gateway: int
    app: int
    provider: int
    oidc: int = 0
    redis: int = 0
    extra_gateways: tuple[int, ...] = ()

    @classmethod
    def free(cls) -> Ports:
        return cls(free_port(), free_port(), free_port(), free_port(), free_port())


# Gateway instances 2, 3, ... of `make demo INSTANCES=N` on 9001, 9002, ...; its Redis (STORE=redis) on 6380.
DEMO_PORTS = Ports(nginx=8080, gateway=9000, app=8000, provider=8001, oidc=8002, redis=6380,
                   extra_gateways=tuple(range(9001, 9010)))


def _block(text: str, opener: str, where: str) -> tuple[int, int]:
    """Where the one ``opener ... }`` block of ``text`` starts and ends (no nested braces in it)."""
    if text.count(opener) != 1:
        raise ValueError(f"{where} must contain {opener!r} exactly once to be rendered")
    start = text.index(opener)
    return start, text.index("}", start) + 1


def render_upstream(gateway_ports: Sequence[int], example: str | None = None) -> str:
    """``deploy/nginx/gateway-upstream.conf``'s ``upstream gateway`` block, one ``server`` line per port.

    The example's first ``server`` line is the pattern, its parameters
    (max_fails, fail_timeout) kept: the stack balances exactly as the file tells operators to.
    """
    text = UPSTREAM_CONF.read_text() if example is None else example
    start, end = _block(text, UPSTREAM_BLOCK, UPSTREAM_CONF.name)
    lines = text[start:end].splitlines()
    servers = [i for i, line in enumerate(lines) if line.strip().startswith("server ")]
    if not servers:
        raise ValueError(f"{UPSTREAM_CONF.name} must have a server line in {UPSTREAM_BLOCK!r}")
    pattern = lines[servers[0]]
    address = pattern.split()[1].rstrip(";")
    rendered = [pattern.replace(address, f"127.0.0.1:{port}", 1) for port in gateway_ports]
    kept = [line for i, line in enumerate(lines) if i not in servers]
    return "\n".join(kept[:servers[0]] + rendered + kept[servers[0]:])


def render_nginx_conf(mode: Mode, ports: Ports, template: str | None = None,
                      gateway_ports: Sequence[int] = ()) -> str:
    """The checked-in ``nginx.conf`` for these ports and this mode.

    With more than one of ``gateway_ports``, its ``upstream gateway`` block is
    :func:`render_upstream`'s, for those ports.
    Raises ValueError when the file no longer has each address (and, for
    mode 2, the marked block) exactly once: better than a silently wrong config.
    """
    text = NGINX_CONF.read_text() if template is None else template
    for name, directive in CONF_ADDRESSES.items():
        if text.count(directive) != 1:
            raise ValueError(f"nginx.conf must contain {directive!r} exactly once to be rendered")
        address = directive.rsplit(" ", 1)[1].rstrip(";")
        text = text.replace(directive, directive.replace(address, f"127.0.0.1:{getattr(ports, name)}"))
    if len(gateway_ports) > 1:
        start, end = _block(text, UPSTREAM_BLOCK, "nginx.conf")
        indent = text[text.rindex("\n", 0, start) + 1:start]
        text = text[:start] + textwrap.indent(render_upstream(gateway_ports), indent).lstrip() + text[end:]
    if mode == "proxy":
        if text.count(MODE1_BEGIN) != 1 or text.count(MODE1_END) != 1:
            raise ValueError(f"nginx.conf must mark the mode 1 block with {MODE1_BEGIN!r} and {MODE1_END!r}")
        start = text.index(MODE1_BEGIN)
        end = text.index("\n", text.index(MODE1_END))
        text = text[:start] + PROXY_MODE_INCLUDE + text[end:]
    elif mode != "auth_request":
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return text


def with_gateway_sockets(conf_text: str, listeners: Mapping[int, int | Path]) -> str:
    """A rendered nginx.conf whose ``upstream gateway`` names Unix sockets (``unix:``) for the ports mapped to
    a path in ``listeners``."""
    for port, listener in listeners.items():
        server = f"server 127.0.0.1:{port};"
        if isinstance(listener, Path):
            if conf_text.count(server) != 1:
                raise ValueError(f"nginx.conf must contain {server!r} exactly once to be rendered")
            conf_text = conf_text.replace(server, f"server unix:{listener};")
    return conf_text


def nginx_worker_group() -> str:
    """The group nginx's workers run as (the gateway's ``uds_group``), "" for the gateway's own.

    Started by root without a ``user`` directive (as the stack starts it), nginx runs its workers as
    ``nobody`` and the group ``nobody``, or ``nogroup`` where there is none (nginx's configure picks so);
    started by another user, its workers stay that user, in the gateway's own group.
    """
    if os.geteuid() != 0:
        return ""
    try:
        grp.getgrnam("nobody")
    except KeyError:
        return "nogroup"
    return "nobody"


def with_instance_header(conf_text: str, nginx_port: int) -> str:
    """A rendered nginx.conf that names, in ``X-Gateway-Instance``, the gateway instance that answered.

    Development only (the tests, the demo): a server-level ``add_header``
    reaches the gateway's own locations (the sign-in pages and the callback in
    mode 1, everything in mode 2), not locations with an ``add_header`` of their own.
    """
    listen = f"listen 127.0.0.1:{nginx_port};"
    if conf_text.count(listen) != 1:
        raise ValueError(f"nginx.conf must contain {listen!r} exactly once to be rendered")
    start = conf_text.index(listen)
    indent = conf_text[conf_text.rindex("\n", 0, start) + 1:start]
    return conf_text.replace(listen, f"{listen}\n{indent}add_header {INSTANCE_HEADER} $upstream_addr always;")


@dataclass(frozen=True, slots=True)
class TLSFiles:
    """A certificate (PEM, for ``localhost``) and its key, for nginx's TLS server (:func:`with_tls`)."""

    certificate: Path
    key: Path


def _uncomment(block: str) -> str:
    """The directives of a commented-out block, uncommented (its prose comments stay comments)."""
    lines = []
    for line in block.splitlines(keepends=True):
        indent, hash_, rest = line.partition("# ")
        if hash_ and not indent.strip() and re.fullmatch(r"(?:[a-z_0-9]+ [^#]*;|server \{|\})", rest.strip()):
            line = indent + rest
        lines.append(line)
    return "".join(lines)


def with_tls(conf_text: str, tls: TLSFiles, nginx_port: int, https_port: int, http_port: int) -> str:
    """A rendered nginx.conf served over TLS as its marked blocks tell operators to.

    The plain ``listen`` goes, the TLS blocks are uncommented, their ``listen`` lines moved to loopback
    ports (``https_port`` for the site, ``http_port`` for the redirect to https; no IPv6 lines) and the
    certificate lines name ``tls``. Raises ValueError when a marked block or a line it edits is missing.
    """
    text = conf_text
    for begin, end in TLS_BLOCKS:
        if text.count(begin) != 1 or text.count(end) != 1:
            raise ValueError(f"nginx.conf must mark its TLS blocks with {begin!r} and {end!r}")
        start, stop = text.index(begin), text.index(end)
        text = text[:start] + _uncomment(text[start:stop]) + text[stop:]
    edits = {
        f"listen 127.0.0.1:{nginx_port};\n": "",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "listen [::]:443 ssl;\n": "",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen [::]:80;\n": "",
    }
    for old, new in edits.items():
        if text.count(old) != 1:
            raise ValueError(f"nginx.conf must contain {old.strip()!r} exactly once to be rendered with TLS")
        text = text.replace(old, new)
    text = re.sub(r"ssl_certificate +\S+;", f"ssl_certificate {tls.certificate};", text, count=1)
    return re.sub(r"ssl_certificate_key +\S+;", f"ssl_certificate_key {tls.key};", text, count=1)


def prefixed_snippet(name: str, text: str, route_prefix: str) -> str:
    """A ``deploy/nginx`` snippet for the gateway's ``route_prefix``: the edits docs/customising.md tells operators.

    Every ``/_gateway/`` becomes ``<prefix>/``; in gateway-locations.conf the ``location = /login`` and
    ``location = /logout`` blocks go (``location ^~ <prefix>/`` has them) and the two fallbacks to
    ``/login`` name ``<prefix>/login``. Raises ValueError when a piece to edit is missing.
    """
    if not route_prefix:
        return text
    if name == "gateway-locations.conf":
        for opener in ("location = /login {", "location = /logout {"):
            start, end = _block(text, opener, name)
            text = text[:start] + text[end:].lstrip("\n")
        for old in ("return 302 /login;", 'form="/login"'):
            if text.count(old) != 1:
                raise ValueError(f"{name} must contain {old!r} exactly once to be rendered for a route prefix")
            text = text.replace(old, old.replace("/login", route_prefix + "/login"))
    return text.replace("/_gateway/", route_prefix + "/")


def write_nginx_prefix(prefix: Path, conf_text: str, snippets: Path = NGINX_SNIPPETS, route_prefix: str = "") -> Path:
    """Lay out an nginx prefix: the rendered config and the snippets it includes, by relative path.

    ``snippets``: where the ``*.conf`` snippets come from (a release's unpacked ``deploy/nginx``; default
    this clone's); ``route_prefix``: the gateway's, edited into them as docs/customising.md tells operators.
    """
    conf = prefix / "nginx.conf"
    conf.write_text(conf_text)
    target = prefix / "deploy" / "nginx"
    target.mkdir(parents=True, exist_ok=True)
    for snippet in snippets.glob("*.conf"):
        (target / snippet.name).write_text(prefixed_snippet(snippet.name, snippet.read_text(), route_prefix))
    return conf


def nginx_in_prefix(conf_text: str, log_dir: Path, nginx: str | None = None,
                    snippets: Path = NGINX_SNIPPETS, route_prefix: str = "") -> tuple[Path, list[str]]:
    """A new temporary nginx prefix with ``conf_text`` and the snippets, and the command that runs nginx there.

    nginx stays in the foreground with its errors on stderr; the requests it logs to ``access.log``
    under the prefix go to ``<log_dir>/nginx-access.log``. The caller removes the prefix once nginx is stopped.
    """
    prefix = Path(tempfile.mkdtemp(prefix="openid-gateway-nginx-"))
    # Run as root, nginx's workers drop to an unprivileged user that must reach its temp dirs.
    prefix.chmod(0o755)
    conf = write_nginx_prefix(prefix, conf_text, snippets, route_prefix)
    (prefix / "access.log").symlink_to((log_dir / "nginx-access.log").resolve())
    argv = [nginx or find_nginx(), "-p", f"{prefix}/", "-c", str(conf), "-e", "stderr", "-g", "daemon off;"]
    return prefix, argv


def local_claimed_id(provider_url: str, username: str) -> str:
    """The claimed identifier the local provider (its main profile) asserts for ``username``."""
    return PROFILES[0].claimed_id(provider_url, username)


DEMO_ADMIN_MAX_AGE = 120  # seconds: the demo's /admin asks for a sign-in this recent (step-up)


def demo_access_settings(provider_url: str) -> dict[str, Any]:
    """The demo's access rules, as the TOML config would hold them.

    ``/about`` is public (the microblog shows the visitor as anonymous there),
    ``/admin`` is for the group ``admins`` (the local provider's user
    ``admin``) who signed in within the last two minutes (step-up: ``max_age``),
    everything else for anyone signed in.
    """
    return {
        "rules": [
            {"name": "about", "paths": ["/about"], "policy": "public"},
            {"name": "admin", "paths": ["/admin"], "policy": "allow", "subjects": ["group:admins"],
             "max_age": DEMO_ADMIN_MAX_AGE},
        ],
        "default_policy": "signed_in",
        "groups": {"admins": [local_claimed_id(provider_url, DEMO_ADMIN_USER)]},
    }


def demo_access_environ(provider_url: str) -> dict[str, str]:
    """:func:`demo_access_settings` as ``GATEWAY_*`` variables (tables and lists as JSON)."""
    return {f"GATEWAY_{key.upper()}": value if isinstance(value, str) else json.dumps(value)
            for key, value in demo_access_settings(provider_url).items()}


def _clean_environ() -> dict[str, str]:
    """This process's environment minus any GATEWAY_*/MICROBLOG_* setting that would leak in."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "MICROBLOG_"))}


class Stack:
    """Provider, app (or another ASGI upstream), gateway and nginx on loopback ports.

    ``upstream``: an ASGI import string (``"tests.upstream_app:app"``) served
    with uvicorn instead of the microblog. ``state_dir`` holds the gateway's and
    the app's state (a temporary directory, removed on exit, when not given);
    ``log_dir`` one log file per process (default ``<state_dir>/logs``) and
    nginx's access log, ``nginx-access.log``.
    ``gateway_env`` adds or overrides ``GATEWAY_*`` settings (``{provider}`` in a
    value stands for the local provider's address); ``app_env`` the app's environment: the microblog's
    ``MICROBLOG_*`` settings (``MICROBLOG_PROOF_KEY=""`` unsets the proof key), or an ``upstream``'s own.
    ``nginx_template`` replaces the checked-in ``nginx.conf`` (rendered the same way): for tests of
    a configuration an operator might get wrong. ``demo_rules`` adds the demo's
    access rules (:func:`demo_access_settings`), which ``gateway_env`` may override.
    ``oidc_logout_at_provider`` sets ``logout_at_provider`` on the OpenID Connect button: ``/logout``
    then also ends the session at the development provider, which sends the browser back to ``/login``.
    ``oidc_migration`` pairs the two local providers as a site moving from OpenID 2.0 to OpenID Connect
    would: the OpenID Connect provider vouches (``openid2_id``) for the OpenID 2.0 provider's identifier
    of the same user name, and the button has ``openid2_migration``, so a person keeps their user id.
    ``bearer_audience``: the OpenID Connect provider issues RFC 9068 access tokens for that audience
    (``--access-token-audience``) and the gateway accepts them as bearer tokens (``bearer_audiences``),
    with the groups of their ``groups`` claim (``groups_claim``). ``api_paths``: the gateway's (JSON refusals,
    and bearer tokens taken there). ``bearer_introspection``: the gateway introspects opaque tokens at the
    OpenID Connect provider (RFC 7662; mint one with ``/_dev/access-token`` ``{"opaque": true}``) and uses
    each answer that many seconds (``bearer_introspection_cache``); None: opaque tokens are refused.
    ``ignore_step_up``: both providers run with ``--ignore-step-up``
    (``devtools/stepup.py``): they disregard ``max_age``, ``prompt=login``, ``acr_values``, ``claims`` and PAPE's
    requests, as a provider the gateway must refuse rather than loop on.
    ``instances`` gateway processes (``gateway-1`` ... in :attr:`processes` and :meth:`log`; just
    ``gateway`` when there is one) share ``store``: ``"sqlite"`` (the state directory's file) or
    ``"redis"``, a ``redis-server`` the stack starts first and stops last (:attr:`redis`: stop or
    restart it to see an outage), with its append-only file in ``<state_dir>/redis`` and
    ``redis_config`` added to its configuration. With several instances nginx names the one that
    answered in ``X-Gateway-Instance`` unless ``instance_header`` is False (nginx exactly as deployed).
    ``gateway_launcher`` runs each gateway instance another way (:data:`GatewayLauncher`: a container).

    Everything is stopped, process groups and all, on exit or when starting fails.
    """

    def __init__(
        self,
        mode: Mode = "auth_request",
        *,
        ports: Ports | None = None,
        upstream: str | None = None,
        state_dir: Path | None = None,
        log_dir: Path | None = None,
        secret_keys: Sequence[str] | None = None,
        proof_key: str | None = None,
        gateway_env: Mapping[str, str] | None = None,
        app_env: Mapping[str, str] | None = None,
        public_paths: Sequence[str] = ("/static/",),
        api_paths: Sequence[str] = (),
        progress: Progress | None = None,
        log_level: str = "info",
        nginx_template: str | None = None,
        demo_rules: bool = False,
        oidc_logout_at_provider: bool = False,
        oidc_migration: bool = False,
        bearer_audience: str | None = None,
        ignore_step_up: bool = False,
        bearer_introspection: int | None = None,
        instances: int = 1,
        store: StoreKind = "sqlite",
        redis_config: Mapping[str, str] | None = None,
        instance_header: bool = True,
        gateway_launcher: GatewayLauncher | None = None,
        route_prefix: str = "",
        tls: TLSFiles | None = None,
        uds: bool = False,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if store not in STORES:
            raise ValueError(f"store must be one of {', '.join(STORES)}, got {store!r}")
        if instances < 1:
            raise ValueError(f"instances must be at least 1, got {instances}")
        self.mode: Mode = mode
        self.nginx = find_nginx()  # first: a missing nginx is reported before anything starts
        self.ports = ports or Ports.free()
        if not self.ports.oidc:
            self.ports = replace(self.ports, oidc=free_port())
        extra = self.ports.extra_gateways[:instances - 1]
        self.gateway_ports: tuple[int, ...] = (
            self.ports.gateway, *extra, *(free_port() for _ in range(instances - 1 - len(extra))))
        self.upstream = upstream
        self._own_state_dir = state_dir is None
        self.state_dir = Path(tempfile.mkdtemp(prefix="openid-gateway-stack-")) if state_dir is None else state_dir
        self.log_dir = log_dir if log_dir is not None else self.state_dir / "logs"
        self.secret_keys = list(secret_keys) if secret_keys else [secrets.token_urlsafe(32)]
        self.proof_key = proof_key or secrets.token_urlsafe(32)
        self.gateway_env = dict(gateway_env or {})
        self.app_env = dict(app_env or {})
        self.public_paths = tuple(public_paths)
        self.api_paths = tuple(api_paths)
        self.progress = progress
        self.log_level = log_level
        self.nginx_template = nginx_template
        self.demo_rules = demo_rules
        self.oidc_logout_at_provider = oidc_logout_at_provider
        self.oidc_migration = oidc_migration
        self.bearer_audience = bearer_audience
        self.ignore_step_up = ignore_step_up
        self.bearer_introspection = bearer_introspection
        self.store: StoreKind = store
        self.instance_header = instance_header
        self.gateway_launcher = gateway_launcher
        # The gateway's route_prefix: its settings, the microblog's links and nginx's snippets follow it.
        self.route_prefix = route_prefix
        # nginx over TLS (nginx.conf's TLS blocks): https on ports.nginx, plain http (a redirect) on tls_http_port.
        self.tls = tls
        self.tls_http_port = free_port() if tls is not None else 0
        # Made here, not at start: a missing redis-server is reported before anything starts, like nginx.
        self.redis: RedisServer | None = None if store == "sqlite" else RedisServer(
            self.state_dir / "redis", port=self.ports.redis or None, appendonly=True, extra_config=redis_config)
        self.nginx_prefix: Path | None = None
        self.processes: dict[str, Process] = {}
        # uds: the gateways listen on Unix sockets (setting uds), in a directory anyone may enter (made when the
        # stack starts), given to nginx's workers' group (uds_group) as the production install does.
        self.uds = uds
        self.socket_dir: Path | None = None

    # -- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Where a browser goes: nginx (``https://localhost:port`` with TLS: the certificate's name)."""
        if self.tls is not None:
            return f"https://localhost:{self.ports.nginx}"
        return f"http://127.0.0.1:{self.ports.nginx}"

    @property
    def gateway_url(self) -> str:
        """The (first) gateway instance itself, bypassing nginx."""
        return f"http://127.0.0.1:{self.ports.gateway}"

    def gateway_socket(self, number: int = 1) -> Path | None:
        """Gateway instance ``number``'s Unix socket (``uds=True``, once started), else None (it listens on its
        port)."""
        return None if self.socket_dir is None else self.socket_dir / f"gateway-{number}.sock"

    def _gateway_listener(self, number: int) -> int | Path:
        return self.gateway_socket(number) or self.gateway_ports[number - 1]

    @property
    def instances(self) -> int:
        return len(self.gateway_ports)

    @property
    def gateway_names(self) -> tuple[str, ...]:
        """The gateway processes' names: ``("gateway",)``, or ``("gateway-1", "gateway-2", ...)``."""
        if self.instances == 1:
            return ("gateway",)
        return tuple(f"gateway-{number}" for number in range(1, self.instances + 1))

    def instance_url(self, number: int) -> str:
        """Gateway instance ``number`` (1, 2, ...) itself, bypassing nginx: to ask one chosen instance."""
        if not 1 <= number <= self.instances:
            raise ValueError(f"instance {number}: this stack runs instances 1 to {self.instances}")
        return f"http://127.0.0.1:{self.gateway_ports[number - 1]}"

    def instance_of(self, upstream_addr: str) -> int:
        """Which instance an ``X-Gateway-Instance`` value (nginx's ``$upstream_addr``) names, 1, 2, ...

        nginx lists every instance it tried (``a, b``) when one failed: the last one answered.
        """
        port = int(upstream_addr.rsplit(",", 1)[-1].strip().rsplit(":", 1)[1])
        return self.gateway_ports.index(port) + 1

    @property
    def app_url(self) -> str:
        """The app itself, bypassing nginx and the gateway."""
        return f"http://127.0.0.1:{self.ports.app}"

    @property
    def provider_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.provider}"

    @property
    def provider_identifier(self) -> str:
        """The local provider's OP identifier: sign in as any user name."""
        return self.provider_url + "/openid"

    @property
    def oidc_url(self) -> str:
        """The development OpenID Connect provider's issuer."""
        return f"http://127.0.0.1:{self.ports.oidc}"

    @property
    def gateway_state_dir(self) -> Path:
        return self.state_dir / "gateway"

    @property
    def app_state_dir(self) -> Path:
        return self.state_dir / "app"

    # -- processes ----------------------------------------------------------------------------

    def gateway_environ(self, instance: int = 1) -> dict[str, str]:
        """The settings of gateway instance ``instance`` (1, 2, ...), as ``GATEWAY_*`` variables."""
        providers: list[dict[str, str | bool | int | list[str]]] = [{"name": LOCAL_PROVIDER_NAME,
                                                               "identifier": self.provider_identifier}]
        client_id, client_secret = LOCAL_OIDC_CLIENT
        providers.append({"type": "oidc", "name": LOCAL_OIDC_NAME, "issuer": self.oidc_url, "client_id": client_id,
                          "client_secret": client_secret, "logout_at_provider": self.oidc_logout_at_provider,
                          "openid2_migration": self.oidc_migration})
        if self.bearer_audience is not None:  # the provider's tokens carry the person's groups (its groups claim)
            providers[-1] |= {"bearer_audiences": [self.bearer_audience], "groups_claim": "groups"}
        if self.bearer_introspection is not None:  # opaque tokens are asked about at its /introspect (RFC 7662)
            providers[-1] |= {"bearer_introspection": True, "bearer_introspection_cache": self.bearer_introspection}
        providers += [{"name": p.name, "identifier": p.identifier} for p in DEFAULT_PROVIDERS]
        env = {
            "GATEWAY_PUBLIC_URL": self.url,
            "GATEWAY_SECRET_KEYS": json.dumps(self.secret_keys),
            "GATEWAY_PROOF_KEY": self.proof_key,
            "GATEWAY_STATE_DIR": str(self.gateway_state_dir),
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(self.gateway_ports[instance - 1]),
            "GATEWAY_MODE": self.mode,
            "GATEWAY_UPSTREAM_URL": self.app_url,
            "GATEWAY_PUBLIC_PATHS": json.dumps(list(self.public_paths)),
            "GATEWAY_API_PATHS": json.dumps(list(self.api_paths)),
            "GATEWAY_ALLOW_PRIVATE_ADDRESSES": "true",  # the local provider is on loopback
            "GATEWAY_PROVIDERS": json.dumps(providers),
            "GATEWAY_LOG_LEVEL": self.log_level,
            "GATEWAY_ROUTE_PREFIX": self.route_prefix,
        }
        if self.redis is not None:
            env["GATEWAY_STORE"] = self.redis.url
        if (sock := self.gateway_socket(instance)) is not None:
            env["GATEWAY_UDS"] = str(sock)
            env["GATEWAY_UDS_GROUP"] = nginx_worker_group()
        if self.demo_rules:
            env.update(demo_access_environ(self.provider_url))
        # "{provider}" in a value is the local provider's address (known once the ports are): lets a
        # caller name its users' identifiers, e.g. in [groups], before the stack has its ports.
        env.update({name: value.replace("{provider}", self.provider_url) for name, value in self.gateway_env.items()})
        return env

    def _process(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> Process:
        process = Process(argv, env={"PYTHONUNBUFFERED": "1", **(env or {})}, base_env=_clean_environ(),
                          cwd=PROJECT_ROOT, log_path=self.log_dir / f"{name}.log", name=name)
        self.processes[name] = process
        return process

    def _gateway_process(self, number: int) -> Process:
        name, environ = self.gateway_names[number - 1], self.gateway_environ(number)
        if self.gateway_launcher is None:
            return self._process(name, [sys.executable, "-m", "gateway", "serve"], environ)
        return self._process(name, *self.gateway_launcher(name, environ))

    def restart_gateway(self, number: int = 1) -> None:
        """Stop gateway instance ``number`` and start a new process for it (its log goes on).

        The new process knows only what the store tells it: what a rolling
        restart, or a crashed instance, looks like to the others.
        """
        self.processes[self.gateway_names[number - 1]].close()
        self._gateway_process(number).start(self._gateway_listener(number), timeout=START_TIMEOUT)

    def _nginx_argv(self) -> list[str]:
        text = render_nginx_conf(self.mode, self.ports, self.nginx_template, self.gateway_ports)
        if self.socket_dir is not None:
            text = with_gateway_sockets(text, {port: self._gateway_listener(number)
                                               for number, port in enumerate(self.gateway_ports, 1)})
        if self.instances > 1 and self.instance_header:
            text = with_instance_header(text, self.ports.nginx)
        if self.tls is not None:
            text = with_tls(text, self.tls, self.ports.nginx, self.ports.nginx, self.tls_http_port)
        self.nginx_prefix, argv = nginx_in_prefix(text, self.log_dir, self.nginx, route_prefix=self.route_prefix)
        return argv

    def _step_up_switch(self) -> list[str]:
        return ["--ignore-step-up"] if self.ignore_step_up else []

    def start(self) -> Stack:
        """Start every process, then wait for each to listen, in order (reporting progress)."""
        redis_port = () if self.redis is None else (self.redis.port,)
        busy = [port for port in (self.ports.provider, self.ports.oidc, self.ports.app, *self.gateway_ports,
                                  *redis_port, self.ports.nginx) if not port_is_free(port)]
        if busy:
            raise RuntimeError(f"port(s) {', '.join(map(str, busy))} already in use on 127.0.0.1")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.gateway_state_dir.mkdir(parents=True, exist_ok=True)
        if self.uds and self.socket_dir is None:  # short: a socket's path has at most 107 bytes
            self.socket_dir = Path(tempfile.mkdtemp(prefix="gw-sock-"))
            self.socket_dir.chmod(0o755)
        self.app_state_dir.mkdir(parents=True, exist_ok=True)
        python = sys.executable
        host = ["--host", "127.0.0.1"]
        steps: list[tuple[str, Process, int | Path]] = []
        provider = self._process("provider", [
            python, "-m", "devtools.openid_provider", *host, "--port", str(self.ports.provider),
            "--base-url", self.provider_url, "--log-level", self.log_level,
            *(["--oidc-issuer", self.oidc_url] if self.oidc_migration else []), *self._step_up_switch()])
        steps.append(("the OpenID provider", provider, self.ports.provider))
        oidc = self._process("oidc", [
            python, "-m", "devtools.oidc_provider", *host, "--port", str(self.ports.oidc),
            "--base-url", self.oidc_url, "--gateway-url", self.url, "--log-level", self.log_level,
            *(["--openid2-provider", self.provider_url] if self.oidc_migration else []),
            *(["--access-token-audience", self.bearer_audience] if self.bearer_audience else []),
            *self._step_up_switch()])
        steps.append(("the OpenID Connect provider", oidc, self.ports.oidc))
        if self.upstream is None:
            app = self._process("app", [
                python, "-m", "backend_app", *host, "--port", str(self.ports.app),
                "--state-dir", str(self.app_state_dir), "--log-level", self.log_level,
            ], {"MICROBLOG_PROOF_KEY": self.proof_key, "MICROBLOG_GATEWAY_PREFIX": self.route_prefix,
                **self.app_env})
            steps.append(("the app (microblog)", app, self.ports.app))
        else:
            app = self._process("app", [
                python, "-m", "uvicorn", self.upstream, *host, "--port", str(self.ports.app),
                # The peer as it is (tests/upstream_app.py's /connections counts nginx's or the gateway's
                # connections), not X-Forwarded-For's address with port 0.
                "--no-proxy-headers", "--log-level", self.log_level], self.app_env)
            steps.append((f"the app ({self.upstream})", app, self.ports.app))
        for number in range(1, self.instances + 1):
            label = "the gateway" if self.instances == 1 else f"gateway {number} of {self.instances}"
            steps.append((f"{label} (mode {self.mode}, {self.store}{', Unix socket' if self.socket_dir else ''})",
                          self._gateway_process(number), self._gateway_listener(number)))
        try:
            if self.redis is not None:  # first: the gateways read their revocations from it as they start
                self._report(f"redis-server (port {self.redis.port})", "starting")
                self.redis.start()
                self._report(f"redis-server (port {self.redis.port})", "ok")
            nginx = self._process("nginx", self._nginx_argv())
            steps.append(("nginx", nginx, self.ports.nginx))
            for _, process, _ in steps:
                process.start()
            for label, process, port in steps:
                self._report(label, "starting")
                try:
                    process.wait_for_port(port, timeout=START_TIMEOUT)
                except RuntimeError:
                    self._report(label, "failed")
                    raise
                self._report(label, "ok")
        except BaseException:
            self.stop()
            raise
        return self

    def stopped(self) -> list[str]:
        """The names of the processes (``redis`` too) that are no longer running: the demo stops on any."""
        names = [name for name, process in self.processes.items() if not process.running]
        return names + (["redis"] if self.redis is not None and not self.redis.running else [])

    def _report(self, label: str, event: str) -> None:
        if self.progress is not None:
            self.progress(label, event)

    def stop(self) -> None:
        """Stop nginx first, then the gateways, the app, the providers and Redis; remove temporary directories."""
        for name in ("nginx", *self.gateway_names, "app", "provider", "oidc"):
            process = self.processes.get(name)
            if process is not None:
                process.close()
        if self.redis is not None:
            self.redis.stop()
        if self.nginx_prefix is not None:
            shutil.rmtree(self.nginx_prefix, ignore_errors=True)
            self.nginx_prefix = None
        if self._own_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        if self.socket_dir is not None:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
            self.socket_dir = None

    def log(self, name: str, tail: int | None = 60) -> str:
        """The output of one process (``provider``, ``oidc``, ``app``, ``gateway`` or ``gateway-N``, ``nginx``,
        ``redis``)."""
        path = self.redis.log_path if name == "redis" and self.redis is not None else self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        lines = path.read_text(errors="replace").splitlines()
        return "\n".join(lines if tail is None else lines[-tail:])

    def logs(self, tail: int = 30) -> str:
        """Every process's last lines: for assertion messages."""
        names = [*self.processes, *(["redis"] if self.redis is not None else [])]
        return "\n".join(f"--- {name}.log ---\n{self.log(name, tail)}" for name in names)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


__all__ = [
    "DEMO_ADMIN_USER", "DEMO_PORTS", "INSTANCE_HEADER", "LOCAL_OIDC_CLIENT", "LOCAL_OIDC_NAME", "LOCAL_PROVIDER_NAME",
    "MODES", "STORES", "GatewayLauncher", "Mode", "NginxNotFound", "Ports", "Progress", "Stack", "StoreKind",
    "TLSFiles", "demo_access_environ", "demo_access_settings", "find_nginx", "local_claimed_id", "nginx_in_prefix",
    "nginx_worker_group",
    "prefixed_snippet", "render_nginx_conf", "render_upstream", "with_instance_header", "with_tls",
    "write_nginx_prefix",
]
