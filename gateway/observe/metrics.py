"""Prometheus metrics: what the gateway counts, and the listener that serves them.

Every label takes values from a bounded set (route groups, statuses, rule and
provider names from the configuration, "other" for the rest): never a user,
a session or a URL, for cardinality and privacy.

Several uvicorn workers: prometheus-client's multiprocess mode. ``openid-gateway
serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` (:func:`gateway.cli.prepare_multiprocess_dir`,
wiped at start) and then runs every worker, even a single one, as a process of
its own (which imports the library afresh, with the variable set: the serving
process may have imported it before), so each worker writes its values to
files of its own; the supervising process serves ``metrics_address``
(:func:`start_server`) and sums the files at each scrape with a fresh registry.
uvicorn's supervisor has no hook for a worker that dies, so each scrape first
marks workers whose process is gone as dead (:func:`mark_dead_workers`): their
live gauges go away, their counters stay counted (a counter never goes back).

Without that variable (tests, ``python -m``) values live in this process and
:data:`REGISTRY` serves them. The hot path pays a dict lookup and an
increment: label children are bound once (:class:`_Children`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from gateway import __version__
from gateway.observe.events import (
    Event,
    IdentityLinked,
    IdentityLinkRefused,
    IdentityMigrated,
    IdentityUnlinked,
    RateLimitedEvent,
    RememberRestored,
    SignedIn,
    SignedOut,
    SignedOutEverywhere,
    SignInFailed,
    SignInStarted,
    TheftSuspected,
)
from gateway.types import Message, Send

logger = logging.getLogger("gateway.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OTHER = "other"

REGISTRY = CollectorRegistry(auto_describe=True)

# Latency buckets: the auth check and the store are sub-millisecond; providers and upstreams take seconds.
_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SLOW = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

REQUESTS = Counter("gateway_requests", "HTTP requests answered, by route group and status",
                   ["route", "status"], registry=REGISTRY)
DECISIONS = Counter("gateway_auth_decisions", "Access decisions (auth check and proxy), by outcome and rule",
                    ["outcome", "rule"], registry=REGISTRY)
SIGNINS_STARTED = Counter("gateway_signins_started", "Browsers sent to an OpenID provider",
                          ["provider"], registry=REGISTRY)
SIGNINS_COMPLETED = Counter("gateway_signins_completed", "Sign-ins that began a session",
                            ["provider"], registry=REGISTRY)
SIGNINS_FAILED = Counter("gateway_signins_failed", "Sign-ins that ended without a session, by reason code",
                         ["provider", "reason"], registry=REGISTRY)
SIGNOUTS = Counter("gateway_signouts", "Sign-outs: 'logout' (this browser) or 'everywhere' (account page)",
                   ["kind"], registry=REGISTRY)
REMEMBER_RESTORES = Counter("gateway_remember_restores", "Sessions restored from a remember-me cookie",
                            registry=REGISTRY)
THEFTS = Counter("gateway_remember_thefts_suspected", "Replayed remember-me tokens (series revoked)",
                 registry=REGISTRY)
IDENTITY_LINKS = Counter("gateway_identity_links",
                         "Linked sign-ins: 'linked', 'unlinked', 'migrated' (OpenID 2.0 to OIDC) or 'refused'",
                         ["action"], registry=REGISTRY)
RATE_LIMITED = Counter("gateway_rate_limited", "Requests refused by a rate limit, by limiter",
                       ["limiter"], registry=REGISTRY)
FETCH_SECONDS = Histogram("gateway_provider_fetch_seconds", "Fetches from OpenID providers (redirects included)",
                          ["host"], buckets=_SLOW, registry=REGISTRY)
FETCH_FAILURES = Counter("gateway_provider_fetch_failures", "Failed fetches from OpenID providers, by kind",
                         ["host", "kind"], registry=REGISTRY)
STORE_SECONDS = Histogram("gateway_store_operation_seconds", "Store operations (lock wait included)",
                          ["store"], buckets=_FAST, registry=REGISTRY)
STORE_ERRORS = Counter("gateway_store_errors", "Store operations that failed", ["store"], registry=REGISTRY)
# livemax: the oldest revocation data among the workers alive (a dead worker's value is dropped).
REVOCATION_AGE = Gauge("gateway_revocation_age_seconds",
                       "Seconds since this worker's revocation list was last refreshed from the store",
                       multiprocess_mode="livemax", registry=REGISTRY)
UPSTREAM_SECONDS = Histogram("gateway_upstream_response_seconds",
                             "Proxy mode: time until the upstream's response head", buckets=_SLOW, registry=REGISTRY)
UPSTREAM_ERRORS = Counter("gateway_upstream_errors", "Proxy mode: requests the upstream failed, by answer (502/504)",
                          ["status"], registry=REGISTRY)
BUILD_INFO = Gauge("gateway_build_info", "The gateway's version (value 1)", ["version"],
                   multiprocess_mode="max", registry=REGISTRY)
BUILD_INFO.labels(__version__).set(1)


class _Children:
    """Label children bound once per label values: the hot path does a dict lookup, not ``.labels()``."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.bound: dict[tuple[str, ...], Any] = {}

    def get(self, *values: str) -> Any:
        child = self.bound.get(values)
        if child is None:
            child = self.bound[values] = self.metric.labels(*values)
        return child


_requests = _Children(REQUESTS)
_decisions = _Children(DECISIONS)
_fetch_seconds = _Children(FETCH_SECONDS)
_fetch_failures = _Children(FETCH_FAILURES)
_store_seconds = STORE_SECONDS.labels("sqlite")
_store_errors = STORE_ERRORS.labels("sqlite")


_request_counters: dict[tuple[str, int], Any] = {}


def count_request(route: str, status: int) -> None:
    """One answer of ``route`` with ``status``; the counter is found by (route, status) without formatting."""
    counter = _request_counters.get((route, status))
    if counter is None:
        counter = _request_counters[route, status] = _requests.get(route, str(status))
    counter.inc()


def counting(route: str, send: Send) -> Send:
    """``send`` that counts the response's status under ``route`` (auth, pages, proxy or other)."""

    async def counted(message: Message) -> None:
        if message["type"] == "http.response.start":
            count_request(route, message["status"])
        await send(message)

    return counted


def count_decision(outcome: str, rule: str) -> None:
    """``rule`` names a configured rule, ``public_paths[i]`` or ``default_policy``: bounded by the configuration."""
    _decisions.get(outcome, rule).inc()


def observe_store(seconds: float, failed: bool) -> None:
    _store_seconds.observe(seconds)
    if failed:
        _store_errors.inc()


def set_revocation_age(seconds: float) -> None:
    REVOCATION_AGE.set(seconds)


def observe_upstream(seconds: float) -> None:
    UPSTREAM_SECONDS.observe(seconds)


def count_upstream_error(status: int) -> None:
    UPSTREAM_ERRORS.labels(str(status)).inc()


class Labels:
    """Maps provider names and hosts to bounded label values: the configured ones, else "other"."""

    def __init__(self, provider_names: Iterable[str] = (), provider_urls: Iterable[str] = ()) -> None:
        self.names = frozenset(provider_names)
        self.hosts = frozenset(h for h in (host_of(url) for url in provider_urls) if h)

    def provider(self, name: str) -> str:
        """A provider as events name it (configured name, else an endpoint's host)."""
        return name if name in self.names or name in self.hosts else OTHER

    def host(self, url: str) -> str:
        host = host_of(url)
        return host if host in self.hosts else OTHER


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def observe_fetch(host: str, seconds: float, failure: str | None) -> None:
    """One provider fetch; ``host`` already bounded by :meth:`Labels.host`, ``failure`` a kind or None."""
    _fetch_seconds.get(host).observe(seconds)
    if failure is not None:
        _fetch_failures.get(host, failure).inc()


class EventCounter:
    """The events seam's listener (:mod:`gateway.observe.events`): sign-ins, sign-outs, restores, thefts, refusals."""

    def __init__(self, labels: Labels) -> None:
        self.labels = labels
        self._handlers: dict[type[Event], Callable[[Any], None]] = {
            SignInStarted: lambda e: SIGNINS_STARTED.labels(self.labels.provider(e.provider)).inc(),
            SignedIn: lambda e: SIGNINS_COMPLETED.labels(self.labels.provider(e.provider)).inc(),
            SignInFailed: lambda e: SIGNINS_FAILED.labels(self.labels.provider(e.provider), _code(e.reason)).inc(),
            SignedOut: lambda e: SIGNOUTS.labels("logout").inc(),
            SignedOutEverywhere: lambda e: SIGNOUTS.labels("everywhere").inc(),
            RememberRestored: lambda e: REMEMBER_RESTORES.inc(),
            TheftSuspected: lambda e: THEFTS.inc(),
            RateLimitedEvent: lambda e: RATE_LIMITED.labels(_code(e.limiter)).inc(),
            IdentityLinked: lambda e: IDENTITY_LINKS.labels("linked").inc(),
            IdentityUnlinked: lambda e: IDENTITY_LINKS.labels("unlinked").inc(),
            IdentityMigrated: lambda e: IDENTITY_LINKS.labels("migrated").inc(),
            IdentityLinkRefused: lambda e: IDENTITY_LINKS.labels("refused").inc(),
        }

    def __call__(self, event: Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)


_CODE = re.compile(r"[a-z_]{1,32}")


def _code(value: str) -> str:
    """A reason or limiter code as a label: the gateway's short codes pass, anything else is "other"."""
    return value if _CODE.fullmatch(value) else OTHER


# --- the multiprocess side: run by ``openid-gateway serve`` ---------------------------------------------------


def remove_multiprocess_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


_PID_FILE = re.compile(r"_(\d+)\.db$")


def mark_dead_workers(directory: Path) -> list[int]:
    """Mark the processes whose value files are in ``directory`` and that no longer run as dead."""
    dead = []
    for pid in sorted({int(m.group(1)) for f in directory.glob("*.db") if (m := _PID_FILE.search(f.name))}):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
            dead.append(pid)
        except PermissionError:
            pass  # alive, someone else's: not ours to judge
    return dead


def scrape(directory: Path | None) -> bytes:
    """The exposition text: summed over the workers' files (a fresh registry per scrape), else this process."""
    if directory is None:
        return generate_latest(REGISTRY)
    mark_dead_workers(directory)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def parse_address(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as a pair; raises ValueError."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"metrics_address must be host:port, e.g. 127.0.0.1:9100, got {address!r}")
    return host.strip("[]"), int(port)


def start_server(address: str, directory: Path | None) -> ThreadingHTTPServer:
    """Serve ``GET /metrics`` on ``address`` from a daemon thread; raises OSError when it cannot listen."""
    host, port = parse_address(address)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.partition("?")[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            body = scrape(directory)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("metrics: " + format, *args)

    server_class = ThreadingHTTPServer
    if ":" in host:
        import socket

        class V6Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6

        server_class = V6Server
    server = server_class((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def stop_server(server: ThreadingHTTPServer) -> None:
    with contextlib.suppress(OSError):
        server.shutdown()
        server.server_close()


def exported_names() -> set[str]:
    """Every sample name the gateway exports (``_total``, ``_bucket``...): what a dashboard may query."""
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return names
