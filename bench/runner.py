"""One benchmark run: start the stacks, drive them with wrk and the sign-in client, collect numbers.

For each upstream (the trivial ``/hello`` app, then the microblog's home page)
a mode 1 stack and a mode 2 stack run side by side; the mode 1 stack's nginx
also serves the direct route, the ceiling of mode 1 and (trivial app)
LemonLDAP::NG, the mode 2 stack's nginx the ceiling of mode 2
(:mod:`bench.stacks`). Every scenario is warmed up, then measured in
interleaved rounds (round 1 of every scenario, then round 2, ...) so that a
burst of activity elsewhere on the machine hits them all alike; the table
reports each scenario's best round. Each round gets a freshly signed-in
session cookie, so no run outlives the cookie's refresh interval and measures
re-signing instead of checking.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bench import apache, llng, procstat, signin_load, websocket, wrk
from bench.stacks import BEARER_AUDIENCE, MICROBLOG_PATH, TRIVIAL_PATH, TRIVIAL_UPSTREAM, BenchStack, Route
from devtools.stack import Mode

Upstream = Literal["trivial", "microblog"]
SignIn = Literal["none", "gateway", "llng", "bearer", "apache"]
SESSION_COOKIE = "gw_session"
WEBSOCKET_PATH = "/ws/echo"  # tests/upstream_app.py echoes every message
AUTH_PATH = "/_gateway/auth"

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Config:
    """How long and how hard; :data:`FULL` and :data:`SMOKE` are the two presets."""

    rounds: int
    duration: float
    warmup: float
    connections: int
    threads: int
    paced: float  # seconds of each round of the steady-load latency run per scenario; 0 skips it
    steady_rps: float  # the load offered in that run, in requests per second (all connections together)
    signin_concurrency: int
    signin_seconds: float | None
    signin_count: int | None
    soak: float  # seconds of the memory run per gateway mode; 0 skips it
    soak_every: float
    microblog: bool = True
    gateway_env: Mapping[str, str] = field(default_factory=dict)
    smoke: bool = False


    @property
    def pace_ms(self) -> float:
        """Each connection's mean (random) pause after an answer, for :attr:`steady_rps` in all."""
        return 1000 * self.connections / self.steady_rps


# The peers' rows (LemonLDAP::NG, Apache, Apache with mod_auth_openidc): their servers are not ours.
PEER_KEYS = frozenset({"llng", "apache", "apache_oidc"})



def peers_own(scenario: Scenario, result: wrk.WrkResult) -> bool:
    """Whether a round's errors are a peer's own: socket errors only, on a peer's row (see
    :meth:`Results.record_errors`)."""
    return scenario.key in PEER_KEYS and not result.non_200


FULL = Config(rounds=3, duration=10, warmup=3, connections=32, threads=2, paced=5, steady_rps=1000,
              signin_concurrency=32, signin_seconds=10, signin_count=None, soak=60, soak_every=5)
# Every code path of a full run, each for about a second.
SMOKE = Config(rounds=1, duration=1, warmup=0, connections=4, threads=2, paced=1, steady_rps=1000,
               signin_concurrency=2, signin_seconds=None, signin_count=6, soak=1, soak_every=0.5, smoke=True)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One route to measure. ``key`` names it for the targets (``direct``, ``ceiling1``, ``mode1``, ``bearer``,
    ``llng``, ``ceiling2``, ``mode2``, ``auth``, ``uds1``, ``uds2``, ``apache``, ``apache_oidc``); ``ceiling``: the
    key of the row it is compared with; ``baseline``: its own direct row (the same front server, no
    authentication), over which the CPU it adds per request is reported."""

    upstream: Upstream
    key: str
    label: str
    stack: BenchStack
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    sign_in: SignIn = "gateway"
    ceiling: str | None = None
    baseline: str = "direct"
    row: int = 0


@dataclass(frozen=True, slots=True)
class Round:
    result: wrk.WrkResult
    cpu: procstat.CPUUsage

    def cpu_per_request(self, component: str) -> float:
        """Microseconds of CPU per request (``wrk`` for the load generator)."""
        seconds = self.result.cpu if component == "wrk" else self.cpu.components.get(component, 0.0)
        return 1e6 * seconds / self.result.requests if self.result.requests else 0.0


@dataclass
class Measurement:
    scenario: Scenario
    rounds: list[Round] = field(default_factory=list)
    paced_rounds: list[wrk.WrkResult] = field(default_factory=list)

    @property
    def best(self) -> Round:
        return max(self.rounds, key=lambda r: r.result.rps)

    @property
    def paced(self) -> wrk.WrkResult | None:
        """The steady-load round with the lowest p99 (the least disturbed by the rest of the machine)."""
        return min(self.paced_rounds, key=lambda r: r.p99, default=None)


@dataclass(frozen=True, slots=True)
class WebSocketRound:
    rate: websocket.EchoRate
    cpu: procstat.CPUUsage

    def cpu_per_echo(self, component: str) -> float:
        """Microseconds of CPU per echo round trip (``client`` for the load generator)."""
        seconds = self.rate.client_cpu if component == "client" else self.cpu.components.get(component, 0.0)
        return 1e6 * seconds / self.rate.round_trips if self.rate.round_trips else 0.0


@dataclass
class WebSocketEcho:
    """One WebSocket row: echo round trips per second through one route, per round."""

    row: int
    label: str
    rounds: list[WebSocketRound] = field(default_factory=list)

    @property
    def best(self) -> WebSocketRound:
        return max(self.rounds, key=lambda r: r.rate.per_second)


@dataclass(frozen=True, slots=True)
class Soak:
    mode: str
    seconds: float
    samples: list[tuple[float, float]]  # (seconds since start, RSS MiB)
    requests: int


@dataclass(frozen=True, slots=True)
class SignIns:
    rate: signin_load.SignInRate
    latencies: list[float]
    cpu: procstat.CPUUsage
    concurrency: int


@dataclass
class Results:
    config: Config
    measurements: list[Measurement] = field(default_factory=list)
    soaks: list[Soak] = field(default_factory=list)
    signins: SignIns | None = None  # OpenID 2.0 (the local provider): the targets are about these
    oidc_signins: SignIns | None = None  # OpenID Connect (the local provider's button): reported only
    websockets: list[WebSocketEcho] = field(default_factory=list)
    peak_memory: dict[str, float] = field(default_factory=dict)  # "trivial mode 1" -> VmHWM MiB
    gateway_processes: int = 1
    background_percent: float = 0.0  # other processes' CPU just before the run, % of one CPU
    errors: list[str] = field(default_factory=list)  # the run is broken: exit status 1
    peer_errors: list[str] = field(default_factory=list)  # a peer's own socket errors: reported only

    def record_errors(self, scenario: Scenario, result: wrk.WrkResult) -> None:
        """A wrk round's errors: a peer's socket errors (connections its server closed or dropped under
        load; Apache's direct row shows a few per full run, 1 to 5 in 130,000 requests, none of them in
        the same row run alone) are the peer's behaviour and reported beside the report; any other error
        (an answer other than 200 anywhere, a socket error on a row of ours or nginx's) breaks the run."""
        if not result.errors:
            return
        line = f"{scenario.upstream} row {scenario.row} ({scenario.label}): {result.describe_errors()}"
        if peers_own(scenario, result):
            self.peer_errors.append(line)
        else:
            self.errors.append(line)

    def find(self, upstream: Upstream, key: str) -> Measurement | None:
        return next((m for m in self.measurements if m.scenario.upstream == upstream and m.scenario.key == key),
                    None)

    def direct(self, upstream: Upstream) -> Measurement | None:
        return self.find(upstream, "direct")

    @property
    def signin_row(self) -> int:
        """The sign-ins' row number: after the trivial app's wrk rows (OpenID Connect's is the next one)."""
        return 1 + max((m.scenario.row for m in self.measurements if m.scenario.upstream == "trivial"), default=0)

    def signin_rows(self) -> list[tuple[int, str, SignIns]]:
        """``(row, protocol, sign-ins)`` of each sign-in row that ran, in row order."""
        ran = [(name, s) for name, s in (("OpenID 2.0", self.signins), ("OpenID Connect", self.oidc_signins))
               if s is not None]
        return [(self.signin_row + n, name, s) for n, (name, s) in enumerate(ran)]


def background_load(seconds: float) -> float:
    """CPU used by every other process on the machine over ``seconds``, in % of one CPU."""
    meter = procstat.CPUMeter({})
    meter.start()
    time.sleep(seconds)
    return meter.stop().foreign_percent


class Runner:
    def __init__(self, config: Config, progress: Progress) -> None:
        self.config = config
        self.progress = progress
        self.results = Results(config)

    # -- helpers ------------------------------------------------------------------------------

    def _cookie(self, stack: BenchStack, next_path: str) -> str:
        return asyncio.run(signin_load.session_cookie(stack.url, stack.provider_identifier, next_path=next_path))

    def _headers(self, scenario: Scenario, next_path: str) -> dict[str, str]:
        headers = dict(scenario.headers)
        if scenario.sign_in == "gateway":
            headers["Cookie"] = f"{SESSION_COOKIE}={self._cookie(scenario.stack, next_path)}"
        elif scenario.sign_in == "bearer":  # a fresh access token each round: verified once, then remembered
            headers["Authorization"] = "Bearer " + scenario.stack.access_token()
        elif scenario.sign_in == "llng":
            cookie = llng.session_cookie(scenario.stack.route_url("llng"), check_path=next_path)
            headers["Cookie"] = f"{llng.COOKIE_NAME}={cookie}"
        elif scenario.sign_in == "apache":
            cookie = apache.session_cookie(scenario.stack.route_url("apache_oidc"), check_path=next_path)
            headers["Cookie"] = f"{apache.SESSION_COOKIE}={cookie}"
        return headers

    def _wrk(self, scenario: Scenario, next_path: str, seconds: float, pace_ms: float = 0.0) -> Round:
        headers = self._headers(scenario, next_path)
        meter = procstat.CPUMeter(scenario.stack.pids())
        meter.start()
        result = wrk.run(scenario.url, duration=seconds, connections=self.config.connections,
                         threads=self.config.threads, headers=headers, pace_ms=pace_ms)
        usage = meter.stop(extra=result.cpu)
        scenario.stack.check_running()
        self.results.record_errors(scenario, result)
        return Round(result, usage)

    @contextlib.contextmanager
    def _stacks(self, upstream: Upstream) -> Iterator[dict[str, BenchStack]]:
        """The stacks of one upstream, by name, all running at once.

        ``mode1`` (its nginx also serves the direct route; for the trivial app
        the ceiling of mode 1, LL::NG, and Apache with and without mod_auth_openidc
        too) and ``mode2`` (the ceiling of mode 2) keep their state in SQLite; for
        the trivial app ``redis1`` and ``redis2`` run mode 1 on Redis with one and
        two gateway instances, ``uds1`` and ``uds2`` modes 1 and 2 with nginx
        reaching the gateway over a Unix socket.
        """
        app = TRIVIAL_UPSTREAM if upstream == "trivial" else None
        trivial = upstream == "trivial"
        plans: list[tuple[str, Mode, tuple[Route, ...], dict[str, Any]]] = [
            ("mode1", "auth_request", ("direct", "ceiling1", "llng", "apache", "apache_oidc") if trivial
             else ("direct",),
             {"bearer_audience": BEARER_AUDIENCE, "api_paths": (TRIVIAL_PATH,)} if trivial else {}),
            ("mode2", "proxy", ("ceiling2",) if trivial else (), {}),
        ]
        if trivial:
            # nginx exactly as deployed: without the stack's dev-only header naming the instance.
            plans += [("redis1", "auth_request", (), {"store": "redis", "instances": 1}),
                      ("redis2", "auth_request", (), {"store": "redis", "instances": 2, "instance_header": False}),
                      ("uds1", "auth_request", (), {"uds": True}),
                      ("uds2", "proxy", (), {"uds": True})]
        with contextlib.ExitStack() as stacks:
            started: dict[str, BenchStack] = {}
            for name, mode, routes, options in plans:

                def report(label: str, event: str, name: str = name) -> None:
                    if event != "starting":
                        self.progress(f"{upstream} stack {name}: {label} {event}")

                stack = BenchStack(mode, upstream=app, routes=routes, gateway_env=self.config.gateway_env,
                                   progress=report, **options)
                stacks.enter_context(stack)
                started[name] = stack
            yield started

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> Results:
        self.results.background_percent = background_load(0.5 if self.config.smoke else 2.0)
        self.progress(f"other processes use {self.results.background_percent:.0f}% of one CPU before the run"
                      + (" — expect noisy numbers" if self.results.background_percent > 20 else ""))
        upstreams: list[Upstream] = ["trivial", "microblog"] if self.config.microblog else ["trivial"]
        for upstream in upstreams:
            with self._stacks(upstream) as stacks:
                self._group(upstream, stacks)
        return self.results

    def _scenarios(self, upstream: Upstream, stacks: Mapping[str, BenchStack]) -> list[Scenario]:
        path = TRIVIAL_PATH if upstream == "trivial" else MICROBLOG_PATH
        mode1, mode2 = stacks["mode1"], stacks["mode2"]
        if upstream == "microblog":
            return [
                Scenario(upstream, "direct", "nginx → app (direct, no auth; renders the anonymous page, the gated rows "
                         "the signed-in one)", mode1, mode1.direct_url + path, sign_in="none"),
                Scenario(upstream, "mode1", "nginx auth_request → gateway → app (mode 1)", mode1, mode1.url + path),
                Scenario(upstream, "mode2", "nginx → gateway proxy → app (mode 2)", mode2, mode2.url + path),
            ]
        redis1, redis2, uds1, uds2 = stacks["redis1"], stacks["redis2"], stacks["uds1"], stacks["uds2"]
        return [
            Scenario(upstream, "direct", "nginx → app (direct, no auth)", mode1, mode1.direct_url + path,
                     sign_in="none"),
            Scenario(upstream, "ceiling1", "ceiling of mode 1: nginx auth_request → zero-cost authenticator "
                     "(nginx `return 200`) → app", mode1, mode1.route_url("ceiling1") + path, sign_in="none"),
            Scenario(upstream, "mode1", "nginx auth_request → gateway → app (mode 1)", mode1, mode1.url + path,
                     ceiling="ceiling1"),
            Scenario(upstream, "llng", "nginx auth_request → LemonLDAP::NG 2.16 handler (FastCGI) → app", mode1,
                     mode1.route_url("llng") + path, {"Host": llng.SITE_HOST}, sign_in="llng", ceiling="ceiling1"),
            Scenario(upstream, "redis1", "mode 1 on Redis, 1 gateway instance", redis1, redis1.url + path,
                     ceiling="ceiling1"),
            Scenario(upstream, "redis2", "mode 1 on Redis, 2 gateway instances (nginx round robin)", redis2,
                     redis2.url + path, ceiling="ceiling1"),
            Scenario(upstream, "ceiling2", "ceiling of mode 2: nginx → second nginx proxy hop → app", mode2,
                     mode2.route_url("ceiling2") + path, sign_in="none"),
            Scenario(upstream, "mode2", "nginx → gateway proxy → app (mode 2)", mode2, mode2.url + path,
                     ceiling="ceiling2"),
            Scenario(upstream, "auth", "gateway /_gateway/auth alone", mode1, mode1.gateway_url + AUTH_PATH,
                     {"X-Original-URI": path, "X-Original-Method": "GET"}, baseline=""),
            # New rows after the old ones: the row numbers the README and earlier runs cite stay.
            Scenario(upstream, "bearer", "mode 1 with an OpenID Connect access token instead of the cookie "
                     "(Authorization: Bearer)", mode1, mode1.url + path, sign_in="bearer", ceiling="ceiling1"),
            Scenario(upstream, "uds1", "mode 1, nginx → gateway over a Unix socket", uds1, uds1.url + path,
                     ceiling="ceiling1"),
            Scenario(upstream, "uds2", "mode 2, nginx → gateway over a Unix socket", uds2, uds2.url + path,
                     ceiling="ceiling2"),
            Scenario(upstream, "apache", "Apache 2.4 → app (direct, no auth; event MPM)", mode1,
                     mode1.route_url("apache") + path, sign_in="none", baseline="apache"),
            Scenario(upstream, "apache_oidc", "Apache + mod_auth_openidc 2.4.12 (shm cache) → app", mode1,
                     mode1.route_url("apache_oidc") + path, sign_in="apache", ceiling="apache", baseline="apache"),
        ]

    def _group(self, upstream: Upstream, stacks: Mapping[str, BenchStack]) -> None:
        path = TRIVIAL_PATH if upstream == "trivial" else MICROBLOG_PATH
        mode1, mode2 = stacks["mode1"], stacks["mode2"]
        scenarios = [dataclasses.replace(s, row=n) for n, s in enumerate(self._scenarios(upstream, stacks), 1)]
        measurements = [Measurement(s) for s in scenarios]
        self.results.measurements.extend(measurements)
        cfg = self.config
        if cfg.warmup > 0:
            for m in measurements:
                self.progress(f"{upstream} row {m.scenario.row}: warm-up {cfg.warmup:g} s")
                self._wrk(m.scenario, path, cfg.warmup)
        for n in range(1, cfg.rounds + 1):
            for m in measurements:
                r = self._wrk(m.scenario, path, cfg.duration)
                m.rounds.append(r)
                errors = (("  the peer's errors: " if peers_own(m.scenario, r.result) else "  ERRORS: ")
                          + r.result.describe_errors())
                self.progress(f"{upstream} row {m.scenario.row} round {n}/{cfg.rounds}: {r.result.rps:,.0f} req/s, "
                              f"p99 {r.result.p99:.2f} ms, others' CPU {r.cpu.foreign_percent:.0f}%"
                              + (errors if r.result.errors else ""))
        if cfg.paced > 0:
            self._steady_rounds(upstream, measurements, path)
        if upstream == "trivial":
            self._websockets(mode1, mode2)
            by_key = {s.key: s for s in scenarios}
            for number, stack, key in ((1, mode1, "mode1"), (2, mode2, "mode2")):
                if cfg.soak > 0:
                    self._soak(f"mode {number}", stack, by_key[key], path)
            self.results.signins = self._signins(mode1, path, mode1.provider_identifier, "provider",
                                                 "the local OpenID 2.0 provider")
            self.results.oidc_signins = self._signins(mode1, path, mode1.oidc_url, "oidc",
                                                      "the local OpenID Connect provider")
        names = {"mode1": "mode 1", "mode2": "mode 2", "redis1": "mode 1 on Redis, 1 instance",
                 "redis2": "mode 1 on Redis, 2 instances", "uds1": "mode 1, Unix socket",
                 "uds2": "mode 2, Unix socket"}
        for name, stack in stacks.items():
            for pid in stack.gateway_pids():
                mem = procstat.memory(pid)
                key = f"{upstream}, {names[name]}"
                self.results.peak_memory[key] = max(mem.peak, self.results.peak_memory.get(key, 0.0))
                self.results.gateway_processes = mem.processes

    def _steady_rounds(self, upstream: Upstream, measurements: list[Measurement], path: str) -> None:
        """The steady-load runs, interleaved in rounds like the saturated ones."""
        cfg = self.config
        for n in range(1, cfg.rounds + 1):
            for m in measurements:
                paced = self._wrk(m.scenario, path, cfg.paced, cfg.pace_ms).result
                m.paced_rounds.append(paced)
                self.progress(f"{upstream} row {m.scenario.row} steady round {n}/{cfg.rounds}: {paced.rps:,.0f} "
                              f"req/s, p50 {paced.p50:.2f} ms, p99 {paced.p99:.2f} ms")

    def _websockets(self, mode1: BenchStack, mode2: BenchStack) -> None:
        """Echo round trips through nginx alone, mode 1 and mode 2, in interleaved rounds."""
        cfg = self.config
        routes = [(WebSocketEcho(1, "nginx → app (direct, no auth)"), mode1, mode1.direct_url, False),
                  (WebSocketEcho(2, "nginx (auth_request on the handshake) → app (mode 1)"), mode1, mode1.url, True),
                  (WebSocketEcho(3, "nginx → gateway → app (mode 2)"), mode2, mode2.url, True)]
        self.results.websockets.extend(echo for echo, _, _, _ in routes)
        for n in range(1, cfg.rounds + 1):
            for echo, stack, url, signed_in in routes:
                cookie = f"{SESSION_COOKIE}={self._cookie(stack, TRIVIAL_PATH)}" if signed_in else None
                meter = procstat.CPUMeter(stack.pids())
                meter.start()
                rate = websocket.run(url.replace("http://", "ws://", 1) + WEBSOCKET_PATH, cookie,
                                     connections=cfg.connections, duration=cfg.duration)
                usage = meter.stop(extra=rate.client_cpu)
                stack.check_running()
                echo.rounds.append(WebSocketRound(rate, usage))
                if rate.errors or not rate.round_trips:
                    self.results.errors.append(f"websocket row {echo.row} ({echo.label}): {rate.errors} of "
                                               f"{cfg.connections} connections failed "
                                               f"({rate.first_error or 'no echo'})")
                self.progress(f"websocket row {echo.row} round {n}/{cfg.rounds}: {rate.per_second:,.0f} echoes/s")

    def _soak(self, mode: str, stack: BenchStack, scenario: Scenario, path: str) -> None:
        cfg = self.config
        self.progress(f"memory: {cfg.soak:g} s of full load on the gateway ({mode}), RSS every {cfg.soak_every:g} s")
        headers = self._headers(scenario, path)
        outcome: list[wrk.WrkResult | BaseException] = []

        def load() -> None:
            try:
                outcome.append(wrk.run(scenario.url, duration=cfg.soak, connections=cfg.connections,
                                       threads=cfg.threads, headers=headers))
            except BaseException as exc:  # handed to the main thread
                outcome.append(exc)

        gateway = stack.pid("gateway")
        thread = threading.Thread(target=load, name="soak-wrk")
        started = time.monotonic()
        thread.start()
        samples = []
        while thread.is_alive():
            elapsed = time.monotonic() - started
            samples.append((elapsed, procstat.memory(gateway).rss))
            thread.join(timeout=cfg.soak_every)
        samples.append((time.monotonic() - started, procstat.memory(gateway).rss))
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        stack.check_running()
        if result.errors:
            self.results.errors.append(f"memory run ({mode}): {result.describe_errors()}")
        self.results.soaks.append(Soak(mode, cfg.soak, samples, result.requests))
        self.progress(f"memory ({mode}): RSS {samples[0][1]:.1f} MiB at start, {samples[-1][1]:.1f} MiB after "
                      f"{samples[-1][0]:.0f} s ({result.rps:,.0f} req/s)")

    def _signins(self, stack: BenchStack, path: str, identifier: str, process: str, provider: str) -> SignIns:
        """Complete sign-ins with the provider ``identifier`` names (an OP identifier, or an issuer's button);
        ``process`` is that provider's, counted in the provider column."""
        cfg = self.config
        what = f"{cfg.signin_count} sign-ins" if cfg.signin_count else f"{cfg.signin_seconds:g} s of sign-ins"
        self.progress(f"sign-ins: {what}, {cfg.signin_concurrency} browsers at once, through nginx and {provider}")
        if cfg.warmup > 0:
            self.progress(f"sign-ins: warm-up {cfg.warmup:g} s")
            warm = asyncio.run(signin_load.sign_in_rate(stack.url, identifier, concurrency=cfg.signin_concurrency,
                                                   duration=cfg.warmup, next_path=path))
            if warm.errors:
                self.results.errors.append(f"sign-ins with {provider} (warm-up): {warm.errors} failed "
                                           f"({warm.first_error})")
        meter = procstat.CPUMeter({**stack.pids(), "provider": stack.pid(process)})
        latencies: list[float] = []
        meter.start()
        rate = asyncio.run(signin_load.sign_in_rate(stack.url, identifier, concurrency=cfg.signin_concurrency,
                                               count=cfg.signin_count, duration=cfg.signin_seconds, next_path=path,
                                               latencies=latencies))
        usage = meter.stop()
        stack.check_running()
        if rate.errors or not rate.completed:
            self.results.errors.append(f"sign-ins with {provider}: {rate.errors} failed of "
                                       f"{rate.errors + rate.completed} ({rate.first_error or 'none completed'})")
        self.progress(f"sign-ins: {rate.completed} completed ({rate.per_second:,.1f}/s), {rate.errors} errors")
        return SignIns(rate, latencies, usage, cfg.signin_concurrency)


__all__ = ["FULL", "PEER_KEYS", "SMOKE", "Config", "Measurement", "Results", "Round", "Runner", "Scenario",
           "SignIns", "Soak", "WebSocketEcho", "WebSocketRound"]
