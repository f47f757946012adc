"""The results as README-ready markdown: throughput and latency, CPU per request, memory, targets.

Targets are reported, never enforced: a slow machine is not a broken build.
"""

from __future__ import annotations

from collections.abc import Iterable

from bench.runner import Results, Soak

COMPONENTS = ("nginx", "gateway", "app", "provider")
# The targets (2 CPUs, servers and load generator on the same machine).
MODE1_MIN_RATIO = 0.50
MODE1_MAX_ADDED_P99_MS = 1.0
MODE2_MIN_RATIO = 0.30
MAX_RSS_MIB = 80.0
MAX_GROWTH_MIB = 1.0
MIN_SIGNINS_PER_SECOND = 100.0


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


def throughput_table(results: Results) -> list[str]:
    cfg = results.config
    steady = cfg.paced > 0
    header = ["app", "#", "scenario", "req/s", f"rounds (of {cfg.rounds})", "vs #1", "p50 ms", "p99 ms",
              "p99 vs #1"]
    if steady:
        header += ["steady load: req/s", "p50 ms", "p99 ms", "p99 vs #1"]
    rows = []
    for m in results.measurements:
        best = m.best.result
        direct = results.direct(m.scenario.upstream)
        ref = direct.best.result if direct is not None else None
        row = [m.scenario.upstream, str(m.scenario.row), m.scenario.label, f"{best.rps:,.0f}",
               " / ".join(f"{r.result.rps:,.0f}" for r in m.rounds),
               f"{best.rps / ref.rps:.0%}" if ref and ref.rps else "—",
               _ms(best.p50), _ms(best.p99),
               "—" if m.scenario.row == 1 or ref is None else _signed_ms(best.p99 - ref.p99)]
        if steady:
            paced, ref_paced = m.paced, direct.paced if direct is not None else None
            if paced is None:
                row += ["—"] * 4
            else:
                row += [f"{paced.rps:,.0f}", _ms(paced.p50), _ms(paced.p99),
                        "—" if m.scenario.row == 1 or ref_paced is None else _signed_ms(paced.p99 - ref_paced.p99)]
        rows.append(row)
    if results.signins is not None:
        s = results.signins
        lat = sorted(s.latencies)
        p50 = 1000 * _percentile(lat, 50) if lat else 0.0
        p99 = 1000 * _percentile(lat, 99) if lat else 0.0
        row = ["trivial", "5", f"complete sign-ins, {s.concurrency} browsers at once (errors: {s.rate.errors})",
               f"{s.rate.per_second:,.1f}/s", f"{s.rate.completed} in {s.rate.seconds:.1f} s", "—",
               _ms(p50), _ms(p99), "—"]
        rows.append(row + (["—"] * 4 if steady else []))
    return table(header, rows, "lrlrrrrrr" + ("rrrr" if steady else ""))


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
    header = ["app", "#", *COMPONENTS, "load generator", "total", "others' CPU"]
    rows = []
    for m in results.measurements:
        best = m.best
        per = {c: best.cpu_per_request(c) for c in (*COMPONENTS, "wrk")}
        rows.append([m.scenario.upstream, str(m.scenario.row), *(f"{per[c]:.0f}" for c in COMPONENTS),
                     f"{per['wrk']:.0f}", f"{sum(per.values()):.0f}", f"{best.cpu.foreign_percent:.0f}%"])
    if results.signins is not None:
        s = results.signins
        n = max(1, s.rate.completed)
        per = {c: 1e6 * s.cpu.components.get(c, 0.0) / n for c in COMPONENTS}
        client = 1e6 * s.rate.client_cpu / n
        rows.append(["trivial", "5", *(f"{per[c]:.0f}" for c in COMPONENTS), f"{client:.0f}",
                     f"{sum(per.values()) + client:.0f}", f"{s.cpu.foreign_percent:.0f}%"])
    return table(header, rows, "llrrrrrrr")


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


def targets_table(results: Results) -> list[str]:
    rows = []
    by_row = {m.scenario.row: m for m in results.measurements if m.scenario.upstream == "trivial"}
    direct = by_row.get(1)
    if direct is not None and 2 in by_row:
        ratio = by_row[2].best.result.rps / direct.best.result.rps
        rows.append([f"mode 1 ≥ {MODE1_MIN_RATIO:.0%} of direct (trivial app)", f"{ratio:.0%}",
                     _yes(ratio >= MODE1_MIN_RATIO)])
        added = by_row[2].best.result.p99 - direct.best.result.p99
        rows.append([f"mode 1 adds ≤ {MODE1_MAX_ADDED_P99_MS:g} ms to p99, {results.config.connections} "
                     "connections, saturated", f"{added:+.2f} ms", _yes(added <= MODE1_MAX_ADDED_P99_MS)])
        if by_row[2].paced is not None and direct.paced is not None:
            added = by_row[2].paced.p99 - direct.paced.p99
            rows.append([f"mode 1 adds ≤ {MODE1_MAX_ADDED_P99_MS:g} ms to p99, {results.config.connections} "
                         f"connections, steady {direct.paced.rps:,.0f} req/s", f"{added:+.2f} ms",
                         _yes(added <= MODE1_MAX_ADDED_P99_MS)])
    if direct is not None and 3 in by_row:
        ratio = by_row[3].best.result.rps / direct.best.result.rps
        rows.append([f"mode 2 ≥ {MODE2_MIN_RATIO:.0%} of direct (trivial app)", f"{ratio:.0%}",
                     _yes(ratio >= MODE2_MIN_RATIO)])
    if results.peak_memory:
        peak = max(results.peak_memory.values())
        rows.append([f"gateway < {MAX_RSS_MIB:g} MB RSS", f"{peak:.1f} MiB peak", _yes(peak < MAX_RSS_MIB)])
    for soak in results.soaks:
        growth = _growth(soak)
        rows.append([f"no RSS growth over {soak.seconds:g} s ({soak.mode})", f"{growth:+.1f} MiB",
                     _yes(growth < MAX_GROWTH_MIB)])
    if results.signins is not None:
        rate = results.signins.rate.per_second
        rows.append([f"≥ {MIN_SIGNINS_PER_SECOND:g} complete sign-ins/s", f"{rate:.1f}/s",
                     _yes(rate >= MIN_SIGNINS_PER_SECOND)])
    return table(["target", "measured", ""], rows, "lrl")


def render(results: Results, context: list[str]) -> str:
    cfg = results.config
    lines = [*context[:-1], context[-1] + f" Other processes used {results.background_percent:.0f}% of one CPU "
             "just before the run.", ""]
    lines += throughput_table(results)
    lines += ["", f"req/s: best of {cfg.rounds} interleaved round(s) of {cfg.duration:g} s, wrk -t{cfg.threads} "
                  f"-c{cfg.connections}; p50/p99 of that round. \"vs #1\": ratio to row 1 of the same app in "
                  "this run."]
    if cfg.paced > 0:
        lines += [f"Steady load: the same {cfg.connections} connections, each pausing a random time (mean "
                  f"{cfg.pace_ms:g} ms) after every answer: latency is the cost of a request, not time in a queue."]
    lines += ["Row 5: p50/p99 are the durations of one whole sign-in (6 HTTP requests: login page, login form, "
              "its redirect to the provider, consent form, its redirect to the callback, the callback's redirect "
              "to the page)."]
    lines += websocket_lines(results)
    lines += ["", "CPU per request, µs (best round; \"others' CPU\": load from processes outside the benchmark, "
                  "in % of one CPU):", ""]
    lines += cpu_table(results)
    lines += ["", *memory_lines(results), "", "Targets (reported, not enforced):", ""]
    lines += targets_table(results)
    if results.errors:
        lines += ["", "ERRORS:", *(f"- {e}" for e in results.errors)]
    return "\n".join(lines)


__all__ = ["render", "table"]
