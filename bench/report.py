"""The results as README-ready markdown: throughput and latency, CPU per request, memory, targets.

Targets are reported, never enforced: a slow machine is not a broken build.
"""

from __future__ import annotations

from collections.abc import Iterable

from bench.runner import Measurement, Results, SignIns, Soak

# CPU columns: (component, heading); a column is shown when some row used it.
COMPONENTS = (("nginx", "nginx"), ("apache", "Apache"), ("gateway", "gateway"), ("llng", "LL::NG handler"),
              ("redis", "Redis"), ("app", "app"), ("provider", "provider"))
# The servers a protected request passes through (not the load generator, not the provider it never asks).
SERVERS = ("nginx", "apache", "gateway", "llng", "redis", "app")
# The targets (issues 6 and 15; 2 CPUs, servers and load generator on the same machine).
MODE1_MIN_RATIO = 0.50  # of direct
MODE1_MAX_ADDED_P99_MS = 1.0  # over direct
MODE2_MIN_RATIO = 0.30  # of direct
MODE1_MIN_CEILING_RATIO = 0.85  # of the ceiling of mode 1
MODE1_MAX_CEILING_P99_MS = 0.2  # over the ceiling's p99 at the steady load
MODE1_MIN_LLNG_FACTOR = 5.0  # times LemonLDAP::NG's req/s
MODE2_MIN_CEILING_RATIO = 0.75  # of the ceiling of mode 2 (two nginx hops)
MAX_RSS_MIB = 80.0
MAX_GROWTH_MIB = 1.0
MIN_SIGNINS_PER_SECOND = 250.0
# Issue 25.
MAX_CHECK_CPU_US = 40.0  # the gateway's CPU per allowed request in mode 1 (the auth check in the stack)
MODE1_MIN_CEILING_RATIO_25 = 0.75  # of the ceiling of mode 1
MAX_SIGNIN_CPU_MS = 3.0  # the gateway's CPU per complete sign-in


def table(header: Iterable[str], rows: Iterable[Iterable[str]], align: str = "") -> list[str]:
    header = list(header)
    align = align or "l" * len(header)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _ms(value: float) -> str:
    return f"{value:.2f}"


def _signed_ms(value: float) -> str:
    return f"{value:+.2f}"


def _ceiling(results: Results, m: Measurement) -> Measurement | None:
    key = m.scenario.ceiling
    return results.find(m.scenario.upstream, key) if key else None


def throughput_table(results: Results) -> list[str]:
    cfg = results.config
    steady = cfg.paced > 0
    header = ["app", "#", "scenario", "req/s", f"rounds (of {cfg.rounds})", "vs #1", "vs ceiling", "p50 ms",
              "p99 ms", "p99 vs #1"]
    if steady:
        header += ["steady load: req/s", "p50 ms", "p99 ms", "p99 vs #1", "p99 vs ceiling"]
    rows = []
    for m in results.measurements:
        best = m.best.result
        direct = results.direct(m.scenario.upstream)
        ceiling = _ceiling(results, m)
        ref = direct.best.result if direct is not None and direct is not m else None
        row = [m.scenario.upstream, str(m.scenario.row), m.scenario.label, f"{best.rps:,.0f}",
               " / ".join(f"{r.result.rps:,.0f}" for r in m.rounds),
               f"{best.rps / direct.best.result.rps:.0%}" if direct and direct.best.result.rps else "—",
               f"{best.rps / ceiling.best.result.rps:.0%} of #{ceiling.scenario.row}"
               if ceiling and ceiling.best.result.rps else "—",
               _ms(best.p50), _ms(best.p99), "—" if ref is None else _signed_ms(best.p99 - ref.p99)]
        if steady:
            paced = m.paced
            ref_paced = direct.paced if direct is not None and direct is not m else None
            ceiling_paced = ceiling.paced if ceiling is not None else None
            if paced is None:
                row += ["—"] * 5
            else:
                row += [f"{paced.rps:,.0f}", _ms(paced.p50), _ms(paced.p99),
                        "—" if ref_paced is None else _signed_ms(paced.p99 - ref_paced.p99),
                        "—" if ceiling_paced is None else _signed_ms(paced.p99 - ceiling_paced.p99)]
        rows.append(row)
    # After the trivial app's rows, whose stack they sign in to.
    at = sum(1 for m in results.measurements if m.scenario.upstream == "trivial")
    for n, (number, protocol, s) in enumerate(results.signin_rows()):
        lat = sorted(s.latencies)
        p50 = 1000 * _percentile(lat, 50) if lat else 0.0
        p99 = 1000 * _percentile(lat, 99) if lat else 0.0
        row = ["trivial", str(number), f"complete sign-ins ({protocol}), {s.concurrency} browsers at once "
               f"(errors: {s.rate.errors})", f"{s.rate.per_second:,.1f}/s",
               f"{s.rate.completed} in {s.rate.seconds:.1f} s", "—", "—", _ms(p50), _ms(p99), "—"]
        rows.insert(at + n, row + (["—"] * 5 if steady else []))
    return table(header, rows, "lrlrrrrrrr" + ("rrrrr" if steady else ""))


def websocket_lines(results: Results) -> list[str]:
    """Echo round trips per second through each route, as a ratio to the direct row of the same run."""
    if not results.websockets:
        return []
    cfg = results.config
    direct = next((w for w in results.websockets if w.row == 1), None)
    ref = direct.best.rate.per_second if direct is not None else 0.0
    rows = []
    for w in results.websockets:
        best = w.best
        rows.append(["websocket", str(w.row), w.label, f"{best.rate.per_second:,.0f}",
                     " / ".join(f"{r.rate.per_second:,.0f}" for r in w.rounds),
                     f"{best.rate.per_second / ref:.0%}" if ref else "—",
                     *(f"{best.cpu_per_echo(c):.0f}" for c in ("nginx", "gateway", "app", "client")),
                     f"{best.cpu.foreign_percent:.0f}%"])
    return ["", f"WebSocket echo: {cfg.connections} connections (Python `websockets` clients, no compression), "
                f"each sending a 64-byte text message and waiting for its echo, for {cfg.duration:g} s per round "
                "(best round; CPU in µs per echo):",
            "", *table(["app", "#", "route", "echoes/s", f"rounds (of {cfg.rounds})", "vs #1", "nginx", "gateway",
                        "app", "clients", "others' CPU"], rows, "lrlrrrrrrrr")]


def _percentile(sorted_values: list[float], pct: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def cpu_table(results: Results) -> list[str]:
    used = {c for m in results.measurements for c in m.best.cpu.components}
    columns = [(c, heading) for c, heading in COMPONENTS if c in used or c in ("nginx", "gateway", "app")]
    header = ["app", "#", *(heading for _, heading in columns), "load generator", "total", "others' CPU"]
    rows = []
    for m in results.measurements:
        best = m.best
        per = {c: best.cpu_per_request(c) for c, _ in (*COMPONENTS, ("wrk", ""))}
        rows.append([m.scenario.upstream, str(m.scenario.row), *(f"{per[c]:.0f}" for c, _ in columns),
                     f"{per['wrk']:.0f}", f"{sum(per.values()):.0f}", f"{best.cpu.foreign_percent:.0f}%"])
    at = sum(1 for m in results.measurements if m.scenario.upstream == "trivial")
    for offset, (number, _, s) in enumerate(results.signin_rows()):
        n = max(1, s.rate.completed)
        per = {c: 1e6 * s.cpu.components.get(c, 0.0) / n for c, _ in COMPONENTS}
        client = 1e6 * s.rate.client_cpu / n
        rows.insert(at + offset, ["trivial", str(number), *(f"{per[c]:.0f}" for c, _ in columns),
                                  f"{client:.0f}", f"{sum(per.values()) + client:.0f}",
                                  f"{s.cpu.foreign_percent:.0f}%"])
    return table(header, rows, "ll" + "r" * (len(header) - 2))


def gateway_ms_per_signin(signins: SignIns) -> float:
    """The gateway's CPU milliseconds per completed sign-in (all its processes)."""
    return 1e3 * signins.cpu.components.get("gateway", 0.0) / max(1, signins.rate.completed)


def added_cpu(results: Results, m: Measurement) -> dict[str, float] | None:
    """µs of CPU per request each server spends on ``m`` beyond its own direct row (same front server, no
    authentication), and ``total``; None for a direct row or when its direct row did not run."""
    base = results.find(m.scenario.upstream, m.scenario.baseline) if m.scenario.baseline else None
    if base is None or base is m or m.scenario.sign_in == "none":
        return None
    added = {c: m.best.cpu_per_request(c) - base.best.cpu_per_request(c) for c in SERVERS}
    added["total"] = sum(added.values())
    return added


def added_cpu_table(results: Results) -> list[str]:
    """Per protected row, the CPU it adds over its own direct row: what authentication costs each design."""
    rows = []
    for m in results.measurements:
        added = added_cpu(results, m)
        if added is None:
            continue
        base = results.find(m.scenario.upstream, m.scenario.baseline)
        assert base is not None
        parts = ", ".join(f"{heading} {added[c]:+.0f}" for c, heading in COMPONENTS
                          if c in SERVERS and abs(added[c]) >= 0.5)
        rows.append([m.scenario.upstream, str(m.scenario.row), m.scenario.label, f"#{base.scenario.row}",
                     f"{added['total']:.0f}", parts or "—"])
    if not rows:
        return []
    return ["", "CPU each protected request adds over its own direct row (the same front server without "
                "authentication), µs per request, servers only (not the load generator):", "",
            *table(["app", "#", "scenario", "over", "added", "where"], rows, "lrlrrl")]


def _growth(soak: Soak) -> float:
    """RSS change over the second half of the run (the first half may still fill caches)."""
    half = soak.samples[-1][0] / 2
    mid = min(soak.samples, key=lambda s: abs(s[0] - half))
    return soak.samples[-1][1] - mid[1]


def memory_lines(results: Results) -> list[str]:
    lines = []
    per = f" of one of its {results.gateway_processes} processes" if results.gateway_processes > 1 else ""
    header = ["gateway", f"peak RSS (VmHWM){per}"]
    rows = [[name, f"{peak:.1f} MiB"] for name, peak in results.peak_memory.items()]
    lines += table(header, rows, "lr")
    for soak in results.soaks:
        samples = ", ".join(f"{rss:.1f}" for _, rss in soak.samples)
        lines += ["", f"Memory over {soak.seconds:g} s of full load, gateway {soak.mode} "
                      f"({soak.requests:,} requests): RSS {soak.samples[0][1]:.1f} MiB at start, "
                      f"{soak.samples[-1][1]:.1f} MiB at the end ({_growth(soak):+.1f} MiB over the second half). "
                      f"Samples (MiB): {samples}."]
    return lines


def _yes(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _target(rows: list[list[str]], target: str, measured: str, ok: bool) -> None:
    rows.append([target, measured, _yes(ok)])


def targets_table(results: Results) -> list[str]:
    """Every target with what this run measured; a target whose rows did not run is left out."""
    rows: list[list[str]] = []
    cfg = results.config

    def get(key: str) -> Measurement | None:
        return results.find("trivial", key)

    direct, ceiling1, mode1, peer, ceiling2, mode2 = (get(k) for k in ("direct", "ceiling1", "mode1", "llng",
                                                                        "ceiling2", "mode2"))
    apache_oidc = get("apache_oidc")
    steady = f"steady ~{cfg.steady_rps:,.0f} req/s"
    if mode1 is not None and ceiling1 is not None:
        ratio = mode1.best.result.rps / ceiling1.best.result.rps
        _target(rows, f"mode 1 ≥ {MODE1_MIN_CEILING_RATIO:.0%} of its ceiling's req/s (#{mode1.scenario.row} vs "
                f"#{ceiling1.scenario.row})", f"{ratio:.0%}", ratio >= MODE1_MIN_CEILING_RATIO)
        if mode1.paced is not None and ceiling1.paced is not None:
            added = mode1.paced.p99 - ceiling1.paced.p99
            _target(rows, f"mode 1 p99 within {MODE1_MAX_CEILING_P99_MS:g} ms of its ceiling's, {steady}",
                    f"{mode1.paced.p99:.2f} vs {ceiling1.paced.p99:.2f} ms ({added:+.2f})",
                    added <= MODE1_MAX_CEILING_P99_MS)
    if mode1 is not None:
        check = mode1.best.cpu_per_request("gateway")
        _target(rows, f"auth check ≤ {MAX_CHECK_CPU_US:g} µs CPU in the stack (gateway per request, "
                f"#{mode1.scenario.row})", f"{check:.0f} µs", check <= MAX_CHECK_CPU_US)
        if ceiling1 is not None:
            ratio = mode1.best.result.rps / ceiling1.best.result.rps
            _target(rows, f"mode 1 ≥ {MODE1_MIN_CEILING_RATIO_25:.0%} of its ceiling's req/s (issue 25)",
                    f"{ratio:.0%}", ratio >= MODE1_MIN_CEILING_RATIO_25)
        ours = added_cpu(results, mode1)
        others = [(name, added_cpu(results, m)) for name, m in (("LemonLDAP::NG", peer),
                                                                 ("mod_auth_openidc", apache_oidc)) if m is not None]
        if ours is not None and others:
            compared = "; ".join(f"{name} {a['total']:.0f}" for name, a in others if a is not None)
            _target(rows, "CPU a protected request adds over its own direct row: ours less than each peer's",
                    f"ours {ours['total']:.0f} µs; {compared}",
                    all(a is not None and ours["total"] < a["total"] for _, a in others))
    uds1 = get("uds1")
    if uds1 is not None:  # the same-machine default since issue 25: the same targets over the Unix socket
        check = uds1.best.cpu_per_request("gateway")
        _target(rows, f"auth check ≤ {MAX_CHECK_CPU_US:g} µs CPU in the stack, Unix socket (the same-machine "
                f"default; #{uds1.scenario.row})", f"{check:.0f} µs", check <= MAX_CHECK_CPU_US)
        if ceiling1 is not None:
            ratio = uds1.best.result.rps / ceiling1.best.result.rps
            _target(rows, f"mode 1 ≥ {MODE1_MIN_CEILING_RATIO_25:.0%} of its ceiling's req/s, Unix socket "
                    f"(#{uds1.scenario.row} vs #{ceiling1.scenario.row})", f"{ratio:.0%}",
                    ratio >= MODE1_MIN_CEILING_RATIO_25)
        over = added_cpu(results, uds1)
        if over is not None and apache_oidc is not None and (theirs := added_cpu(results, apache_oidc)) is not None:
            _target(rows, "CPU a protected request adds over its own direct row, Unix socket: less than "
                    "mod_auth_openidc's", f"ours {over['total']:.0f} µs; mod_auth_openidc {theirs['total']:.0f}",
                    over["total"] < theirs["total"])
    if mode1 is not None and apache_oidc is not None and apache_oidc.paced is not None and mode1.paced is not None:
        _target(rows, f"mode 1 p99 lower than mod_auth_openidc's, {steady}",
                f"{mode1.paced.p99:.2f} vs {apache_oidc.paced.p99:.2f} ms", mode1.paced.p99 < apache_oidc.paced.p99)
    if mode1 is not None and peer is not None:
        factor = mode1.best.result.rps / peer.best.result.rps if peer.best.result.rps else float("inf")
        _target(rows, f"mode 1 ≥ {MODE1_MIN_LLNG_FACTOR:g} times LemonLDAP::NG's req/s (#{mode1.scenario.row} vs "
                f"#{peer.scenario.row})", f"{factor:.1f} times", factor >= MODE1_MIN_LLNG_FACTOR)
        if mode1.paced is not None and peer.paced is not None:
            _target(rows, f"mode 1 p99 lower than LemonLDAP::NG's, {steady}",
                    f"{mode1.paced.p99:.2f} vs {peer.paced.p99:.2f} ms", mode1.paced.p99 < peer.paced.p99)
    if mode2 is not None and ceiling2 is not None:
        ratio = mode2.best.result.rps / ceiling2.best.result.rps
        _target(rows, f"mode 2 ≥ {MODE2_MIN_CEILING_RATIO:.0%} of its ceiling's req/s, two nginx hops "
                f"(#{mode2.scenario.row} vs #{ceiling2.scenario.row})", f"{ratio:.0%}",
                ratio >= MODE2_MIN_CEILING_RATIO)
    if direct is not None and mode1 is not None:
        ratio = mode1.best.result.rps / direct.best.result.rps
        _target(rows, f"mode 1 ≥ {MODE1_MIN_RATIO:.0%} of direct", f"{ratio:.0%}", ratio >= MODE1_MIN_RATIO)
        added = mode1.best.result.p99 - direct.best.result.p99
        _target(rows, f"mode 1 adds ≤ {MODE1_MAX_ADDED_P99_MS:g} ms to p99, {cfg.connections} connections, "
                "saturated", f"{added:+.2f} ms", added <= MODE1_MAX_ADDED_P99_MS)
        if mode1.paced is not None and direct.paced is not None:
            added = mode1.paced.p99 - direct.paced.p99
            _target(rows, f"mode 1 adds ≤ {MODE1_MAX_ADDED_P99_MS:g} ms to p99, {steady}", f"{added:+.2f} ms",
                    added <= MODE1_MAX_ADDED_P99_MS)
    if direct is not None and mode2 is not None:
        ratio = mode2.best.result.rps / direct.best.result.rps
        _target(rows, f"mode 2 ≥ {MODE2_MIN_RATIO:.0%} of direct", f"{ratio:.0%}", ratio >= MODE2_MIN_RATIO)
    if results.signins is not None:
        rate = results.signins.rate
        _target(rows, f"≥ {MIN_SIGNINS_PER_SECOND:g} complete sign-ins/s with 0 errors",
                f"{rate.per_second:.1f}/s, {rate.errors} errors",
                rate.per_second >= MIN_SIGNINS_PER_SECOND and rate.errors == 0)
    if results.signins is not None:
        per = gateway_ms_per_signin(results.signins)
        oidc = results.oidc_signins  # reported beside it, never judged: the target is the bench's OpenID 2.0 row
        _target(rows, f"gateway ≤ {MAX_SIGNIN_CPU_MS:g} ms CPU per complete sign-in", f"{per:.2f} ms"
                + ("" if oidc is None else f" (OpenID Connect: {gateway_ms_per_signin(oidc):.2f} ms, reported)"),
                per <= MAX_SIGNIN_CPU_MS)
    if results.peak_memory:
        peak = max(results.peak_memory.values())
        _target(rows, f"gateway < {MAX_RSS_MIB:g} MiB RSS", f"{peak:.1f} MiB peak", peak < MAX_RSS_MIB)
    for soak in results.soaks:
        growth = _growth(soak)
        _target(rows, f"gateway RSS flat over {soak.seconds:g} s of full load ({soak.mode}; < "
                f"{MAX_GROWTH_MIB:g} MiB growth)", f"{growth:+.1f} MiB", growth < MAX_GROWTH_MIB)
    return table(["target", "measured", ""], rows, "lrl")


def _redis_note(results: Results) -> list[str]:
    rows = [m.scenario.row for m in results.measurements if m.scenario.stack.redis is not None]
    if not rows:
        return []
    return [f"Rows {' and '.join(map(str, rows))}: mode 1 with the gateway's state in Redis (a redis-server of "
            "their own, append-only file fsynced every second), one and two gateway instances behind the round "
            "robin of deploy/nginx/gateway-upstream.conf (no sticky sessions); every other row keeps it in "
            "SQLite. Their Redis column is that server's CPU."]


def _uds_apache_note(results: Results) -> list[str]:
    notes = []
    uds = [m.scenario.row for m in results.measurements if m.scenario.key in ("uds1", "uds2")]
    if uds:
        notes.append(f"Rows {' and '.join(map(str, uds))}: modes 1 and 2 with the gateway listening on a Unix "
                     "socket (setting uds; nginx's upstream `server unix:...`) instead of loopback TCP, otherwise "
                     "the same snippets and settings.")
    apache_rows = [m.scenario.row for m in results.measurements if m.scenario.key in ("apache", "apache_oidc")]
    if apache_rows:
        notes.append(f"Rows {' and '.join(map(str, apache_rows))}: Apache 2.4 (Debian), a child process on "
                     "loopback with a generated configuration: Debian's event MPM and keep-alive defaults "
                     "(MaxKeepAliveRequests 100; nginx allows 1,000) except a fixed pool of 3 child processes "
                     "(StartServers 3, MaxSpareThreads 150: no child started or stopped mid-run), a combined "
                     "access log as Debian's default site, mod_proxy_http to the same app. mod_auth_openidc 2.4.12 "
                     "with its documented defaults "
                     "except OIDCPKCEMethod S256 (the local provider requires PKCE; 2.4.12 sends none by default), "
                     "OIDCCacheType shm (sessions in shared memory, 500 entries by default) and ProxyPass "
                     "/redirect_uri ! (its callback is not the app's); signed in through the stack's OpenID Connect "
                     "provider. Its column is the CPU of all of Apache's processes.")
    return notes


def render(results: Results, context: list[str]) -> str:
    cfg = results.config
    lines = [*context[:-1], context[-1] + f" Other processes used {results.background_percent:.0f}% of one CPU "
             "just before the run.", ""]
    lines += throughput_table(results)
    lines += ["", f"req/s: best of {cfg.rounds} interleaved round(s) of {cfg.duration:g} s, wrk -t{cfg.threads} "
                  f"-c{cfg.connections}; p50/p99 of that round. \"vs #1\": ratio to row 1 (direct) of the same app "
                  "in this run; \"vs ceiling\": ratio to the ceiling row named."]
    if cfg.paced > 0:
        lines += [f"Steady load: the same {cfg.connections} connections, each pausing a random time (exponential, "
                  f"mean {cfg.pace_ms:g} ms) after every answer, offering about {cfg.steady_rps:,.0f} req/s in all "
                  "(a closed loop with think time: wrk2, which holds an open-loop rate, is not in Debian), in "
                  f"{cfg.rounds} more interleaved round(s) of {cfg.paced:g} s, the one with the lowest p99 shown; "
                  "latency counts from each request's send, so it is the cost of a request, not time in a queue."]
    lines += ["Like for like: every trivial row gets the same 5-byte `hello` from the same app (it ignores the "
              "identity); the microblog's row 1 renders its anonymous page, its gated rows the signed-in one.",
              "Ceilings: the project's own snippets (protect.conf and gateway-locations.conf; proxy-mode.conf) with "
              "the gateway replaced by a server block of the same nginx: for mode 1 one answering `return 200` "
              "with identity headers, over keep-alive; for mode 2 a plain proxy hop to the app. Those internal "
              "blocks log nothing.",
              "LemonLDAP::NG: its Debian packages and shipped configuration (Demo backend, user dwho), its "
              "documented nginx blocks without Lua; llng-fastcgi-server with its default 7 processes, FastCGI over "
              "a Unix socket with one connection per check (as its example); its column is the CPU of all its "
              "processes. Caching: its handler keeps a checked session for handlerInternalCache = 15 s in each "
              "process; the gateway keeps a verified session cookie for 5 s (lifetimes, revocation and a fresh "
              "proof are still checked on every request). Its location passes Auth-User and the cookie-less "
              "Cookie to the app; protect.conf passes the identity headers and the proof.",
              *_redis_note(results),
              *_uds_apache_note(results),
              f"Rows {results.signin_row} and {results.signin_row + 1}: p50/p99 are the durations of one whole "
              "sign-in (6 HTTP requests: login page, login form, its redirect to the provider, consent form, its "
              "redirect to the callback, the callback's redirect to the page); the OpenID 2.0 callback discovers "
              "the claimed identifier again (two fetches), the OpenID Connect one redeems the code and asks "
              "userinfo (the local provider's ID token carries no e-mail)."]
    lines += websocket_lines(results)
    lines += ["", "CPU per request, µs (best round; \"others' CPU\": load from processes outside the benchmark, "
                  "in % of one CPU):", ""]
    lines += cpu_table(results)
    lines += added_cpu_table(results)
    lines += ["", *memory_lines(results), "", "Targets (reported, not enforced):", ""]
    lines += targets_table(results)
    lines += error_lines(results)
    return "\n".join(lines)


def error_lines(results: Results) -> list[str]:
    """What broke the run (its exit status is 1), then the peers' own socket errors (reported only)."""
    lines = ["", "ERRORS:", *(f"- {e}" for e in results.errors)] if results.errors else []
    if results.peer_errors:
        lines += ["", "The peers' own socket errors (their servers closed or dropped connections under load; "
                      "reported, the run still counts):", *(f"- {e}" for e in results.peer_errors)]
    return lines


__all__ = ["error_lines", "render", "table"]
