"""Drive wrk and read its result exactly.

wrk counts a 3xx as a success and prints rounded numbers; a benchmark of an
authentication gateway must notice a redirect to the login page. So every run
loads a small Lua script that counts answers other than 200 and prints one
JSON line with exact figures (latencies in microseconds). With ``pace_ms``
each connection pauses a random time of that mean after every answer: a
steady offered load below saturation, where latency shows the cost of a
request rather than the length of a queue.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MARKER = "BENCH_RESULT "

_SCRIPT = """
-- bench/wrk.py: count non-200 answers, print one JSON line of exact figures.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
  first_bad = 0
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%%x+)") or "0", 16))
end

function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
    if first_bad == 0 then first_bad = status end
  end
end
%(delay)s
function done(summary, latency, requests)
  local bad, first = 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("bad")
    if first == 0 then first = thread:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format(
    '%(marker)s{"requests": %%d, "duration_us": %%d, "bytes": %%d, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "timeout": %%d, "non_200": %%d, "first_non_200": %%d, ' ..
    '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d, "mean_us": %%.1f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout, bad, first,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed no result."""


def find_wrk() -> str:
    found = shutil.which("wrk") or ("/usr/bin/wrk" if os.access("/usr/bin/wrk", os.X_OK) else None)
    if found is None:
        raise WrkError("wrk not found: apt-get install wrk")
    return found


@dataclass(frozen=True, slots=True)
class WrkResult:
    """One wrk run. Latencies in milliseconds; ``cpu`` is wrk's own CPU seconds."""

    requests: int
    seconds: float
    non_200: int
    first_non_200: int
    socket_errors: int
    p50: float
    p90: float
    p99: float
    max: float
    mean: float
    cpu: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.non_200 + self.socket_errors

    def describe_errors(self) -> str:
        parts = []
        if self.non_200:
            parts.append(f"{self.non_200} answers other than 200 (first: {self.first_non_200})")
        if self.socket_errors:
            parts.append(f"{self.socket_errors} socket errors/timeouts")
        return ", ".join(parts)


# Exponentially distributed pauses (mean ``pace``): with a fixed pause the
# connections stay in step and arrive in bursts, whose queueing then shows as
# latency; random pauses spread them out, as independent users are.
_DELAY = """
function delay()
  return -%(pace)g * math.log(1 - math.random())
end
"""


def script(pace_ms: float = 0.0) -> str:
    delay = _DELAY % {"pace": pace_ms} if pace_ms > 0 else ""
    return _SCRIPT % {"delay": delay, "marker": MARKER}


def parse(output: str, cpu: float = 0.0) -> WrkResult:
    for line in output.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            break
    else:
        raise WrkError(f"wrk printed no result:\n{output[-2000:]}")
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        non_200=data["non_200"],
        first_non_200=data["first_non_200"],
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        p50=data["p50_us"] / 1000,
        p90=data["p90_us"] / 1000,
        p99=data["p99_us"] / 1000,
        max=data["max_us"] / 1000,
        mean=data["mean_us"] / 1000,
        cpu=cpu,
    )


def run(
    url: str,
    *,
    duration: float,
    connections: int,
    threads: int,
    headers: Mapping[str, str] | None = None,
    pace_ms: float = 0.0,
    wrk: str | None = None,
) -> WrkResult:
    """``wrk -t<threads> -c<connections> -d<duration>s --latency`` against ``url``."""
    wrk = wrk or find_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        lua = Path(tmp) / "bench.lua"
        lua.write_text(script(pace_ms))
        argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency", "--timeout", "5s",
                "-s", str(lua)]
        for name, value in (headers or {}).items():
            argv += ["-H", f"{name}: {value}"]
        argv.append(url)
        out = Path(tmp) / "out"
        with out.open("wb") as sink:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT)
            # wait4, not wait: wrk's own CPU time is part of the picture on a shared machine.
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        output = out.read_text(errors="replace")
    if proc.returncode != 0:
        raise WrkError(f"wrk exited with status {proc.returncode}:\n{output[-2000:]}")
    return parse(output, usage.ru_utime + usage.ru_stime)


__all__ = ["WrkError", "WrkResult", "find_wrk", "parse", "run", "script"]
