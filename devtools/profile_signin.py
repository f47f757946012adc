"""``python -m devtools.profile_signin``: where a complete sign-in spends its CPU.

Runs the benchmark's sign-in row as the benchmark does (:class:`bench.stacks.BenchStack`
in mode 1: nginx, the gateway, the development OpenID provider; browsers from
:func:`bench.signin_load.sign_in_rate`) and reports, per completed sign-in, the CPU
milliseconds of every process, read from ``/proc`` (the machine is shared:
wall-clock rates are noisy, CPU per sign-in is not). ``--protocol oidc`` signs in
with the stack's OpenID Connect provider instead (its button; the same browsers).

With ``--profile gateway,provider`` those processes run under a profiler of
every thread (cProfile with a per-thread CPU clock, installed by this module
as a wrapper: ``python -m devtools.profile_signin --child OUT -- -m gateway
serve``), and the report adds their top functions and how often the work that
matters was done per sign-in (HTTP fetches, store writes, discovery,
associations, HMAC, template renders). The profiler slows the processes
down: read CPU milliseconds from a run without it, proportions from one with it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import marshal
import os
import pstats
import runpy
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from io import StringIO
from pathlib import Path
from types import FrameType
from typing import Any

PROFILED = ("gateway", "provider")
RESET_SIGNAL = signal.SIGUSR1  # the child forgets what it measured so far
DUMP_SIGNAL = signal.SIGUSR2  # the child writes what it measured since the reset

# (label, substring of "file:line(function)") counted per sign-in in the gateway's or the provider's profile.
GATEWAY_COUNTS: tuple[tuple[str, str, str], ...] = (
    ("HTTP requests served (uvicorn on_message_complete)", "httptools_impl.py:", "on_message_complete"),
    ("HTTP fetches by the gateway (SafeFetcher.fetch)", "fetch/fetcher.py:", "fetch"),
    ("Yadis discovery (yadis discover)", "yadis/discover.py:", "discover"),
    ("OpenID discovery (discover.discover)", "consumer/discover.py:", "discover"),
    ("associations requested (_requestAssociation)", "consumer/consumer.py:", "_requestAssociation"),
    ("check_authentication (_checkAuth)", "consumer/consumer.py:", "_checkAuth"),
    ("signature checks (_idResCheckSignature)", "consumer/consumer.py:", "_idResCheckSignature"),
    ("claimed id verification (_verifyDiscoveryResults)", "consumer/consumer.py:", "_verifyDiscoveryResults"),
    ("HMAC objects (hmac.new)", "hmac.py:", "new"),
    ("itsdangerous signs", "itsdangerous/signer.py:", "sign"),
    ("itsdangerous unsigns", "itsdangerous/signer.py:", "unsign"),
    ("template renders (jinja2 Template.render)", "jinja2/environment.py:", "render"),
    ("SQLite commits (Connection.commit)", "", "<method 'commit' of 'sqlite3.Connection' objects>"),
    ("SQLite statements (execute)", "", "<method 'execute' of 'sqlite3.Connection' objects>"),
    ("re calls with a pattern string (re._compile, cache hits too)", "re/__init__.py:", "_compile"),
    ("XML parses (defusedxml/ElementTree)", "ElementTree.py:", "XML"),
)
PROVIDER_COUNTS: tuple[tuple[str, str, str], ...] = (
    ("HTTP requests served (uvicorn on_message_complete)", "httptools_impl.py:", "on_message_complete"),
    ("template renders (jinja2 Template.render)", "jinja2/environment.py:", "render"),
    ("associations made (createAssociation)", "server/server.py:", "createAssociation"),
    ("HMAC objects (hmac.new)", "hmac.py:", "new"),
)


# -- the child: a process under a profiler of every thread ------------------------------------


class ThreadProfiles:
    """One cProfile per thread, timed by that thread's CPU clock, snapshotted on demand.

    ``threading.setprofile`` runs a Python hook in every new thread; its first
    call swaps itself for a cProfile of that thread (``enable`` installs the C
    profiler on the calling thread only).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.profiles: list[cProfile.Profile] = []
        self.baseline: dict[Any, Any] = {}

    def start(self) -> None:
        threading.setprofile(self._hook)
        self._enable()

    def _enable(self) -> None:
        profile = cProfile.Profile(time.thread_time)
        with self.lock:
            self.profiles.append(profile)
        profile.enable()

    def _hook(self, frame: FrameType, event: str, arg: object) -> None:
        sys.setprofile(None)
        self._enable()

    def totals(self) -> dict[Any, Any]:
        """Every thread's stats summed, in pstats' raw form ``{func: (cc, nc, tt, ct, callers)}``."""
        merged: dict[Any, Any] = {}
        with self.lock:
            profiles = list(self.profiles)
        for profile in profiles:
            profile.snapshot_stats()
            for func, (cc, nc, tt, ct, callers) in profile.stats.items():
                old = merged.get(func)
                if old is None:
                    merged[func] = (cc, nc, tt, ct, dict(callers))
                    continue
                both = dict(old[4])
                for caller, value in callers.items():
                    both[caller] = _add(both[caller], value) if caller in both else value
                merged[func] = (old[0] + cc, old[1] + nc, old[2] + tt, old[3] + ct, both)
        return merged

    def reset(self) -> None:
        self.baseline = self.totals()

    def dump(self, path: str) -> None:
        """What was measured since :meth:`reset`, as a file ``pstats.Stats`` reads."""
        now = self.totals()
        diff: dict[Any, Any] = {}
        for func, (cc, nc, tt, ct, callers) in now.items():
            if _is_profiler(func):  # the snapshots themselves are no part of a sign-in
                continue
            old = self.baseline.get(func)
            if old is not None:
                cc, nc, tt, ct = cc - old[0], nc - old[1], tt - old[2], ct - old[3]
                callers = {c: _sub(v, old[4].get(c)) for c, v in callers.items()}
            if nc > 0:
                diff[func] = (cc, nc, tt, ct, {c: v for c, v in callers.items() if v[0] > 0})
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            marshal.dump(diff, f)
        os.replace(tmp, path)


GETSTATS = "<method 'getstats' of '_lsprof.Profiler' objects>"


def _is_profiler(func: tuple[str, int, str]) -> bool:
    filename, _, name = func
    return filename.endswith(("profile_signin.py", "cProfile.py")) or name == GETSTATS


def _add(a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def _sub(a: tuple[Any, ...], b: tuple[Any, ...] | None) -> tuple[Any, ...]:
    return a if b is None else tuple(x - y for x, y in zip(a, b, strict=True))


def child(out: str, argv: list[str]) -> None:
    """Run ``python <argv>`` (``-m module args`` or ``script args``) in this process, profiled."""
    profiles = ThreadProfiles()
    signal.signal(RESET_SIGNAL, lambda *_: profiles.reset())
    signal.signal(DUMP_SIGNAL, lambda *_: profiles.dump(out))
    profiles.start()
    if argv[:1] == ["-m"]:
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(argv)
        runpy.run_path(argv[0], run_name="__main__")


# -- the parent: the stack, the sign-ins, the report -------------------------------------------


def _stack_class(profiled: Sequence[str], out_dir: Path) -> type:
    from bench.stacks import BenchStack
    from devtools.processes import Process

    class ProfiledStack(BenchStack):
        """The benchmark's stack, with some processes started under :func:`child`."""

        def _process(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> Process:
            if name in profiled:
                argv = [argv[0], "-m", "devtools.profile_signin", "--child", str(out_dir / f"{name}.prof"), "--",
                        *argv[1:]]
            process: Process = super()._process(name, argv, env)
            return process

    return ProfiledStack


def _signal_and_wait(pids: Mapping[str, int], signum: int, files: Sequence[Path] = ()) -> None:
    for path in files:
        path.unlink(missing_ok=True)
    for pid in pids.values():
        os.kill(pid, signum)
    deadline = time.monotonic() + 60
    while not all(path.exists() for path in files):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no profile written: {[str(p) for p in files if not p.exists()]}")
        time.sleep(0.05)


def thread_cpu(pid: int, tid: int | None = None) -> tuple[float, float]:
    """User and system CPU seconds of one thread of ``pid`` (/proc/<pid>/task/<tid>/stat), or of all of them."""
    text = Path(f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def _matches(func: tuple[str, int, str], where: str, name: str) -> bool:
    filename, _, function = func
    return function == name and (not where or filename.replace("\\", "/").endswith(where.rstrip(":"))
                                 or where.rstrip(":") in filename)


def count_calls(stats: Mapping[Any, Any], where: str, name: str) -> int:
    return sum(value[1] for func, value in stats.items() if _matches(func, where, name))


def profile_report(path: Path, signins: int, counts: Sequence[tuple[str, str, str]], top: int) -> str:
    raw = marshal.loads(path.read_bytes())
    out = StringIO()
    total = sum(value[2] for value in raw.values())
    calls = sum(value[1] for value in raw.values())  # the profiler's cost grows with them; so, roughly, does CPU
    out.write(f"profiled CPU: {1000 * total / signins:.2f} ms per sign-in (inflated by the profiler); "
              f"{calls / signins:.0f} function calls per sign-in\n")
    for label, where, name in counts:
        out.write(f"  {count_calls(raw, where, name) / signins:7.2f}  {label}\n")
    stats = pstats.Stats(str(path), stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def run(args: argparse.Namespace) -> int:
    from bench import procstat, signin_load
    from bench.stacks import TRIVIAL_PATH, TRIVIAL_UPSTREAM

    profiled = [name for name in args.profile.split(",") if name] if args.profile else []
    out_dir = Path(args.out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    stack_class = _stack_class(profiled, out_dir)

    def progress(label: str, event: str) -> None:
        print(f"  {label}: {event}", file=sys.stderr, flush=True)

    with stack_class("auth_request", upstream=TRIVIAL_UPSTREAM, progress=progress) as stack:
        site = stack.url
        identifier = stack.oidc_url if args.protocol == "oidc" else stack.provider_identifier
        if args.warmup > 0:
            warm = asyncio.run(signin_load.sign_in_rate(site, identifier, concurrency=args.concurrency,
                                                   duration=args.warmup, next_path=TRIVIAL_PATH))
            print(f"warm-up: {warm.completed} sign-ins, {warm.errors} errors {warm.first_error}", file=sys.stderr)
        pids = {name: stack.pid(name) for name in profiled}
        _signal_and_wait(pids, RESET_SIGNAL)
        meter = procstat.CPUMeter(stack.pids())
        gateway = stack.pid("gateway")
        loop_before, all_before = thread_cpu(gateway, gateway), thread_cpu(gateway)
        meter.start()
        rate = asyncio.run(signin_load.sign_in_rate(site, identifier, concurrency=args.concurrency,
                                               duration=args.seconds, next_path=TRIVIAL_PATH))
        usage = meter.stop()
        loop_after, all_after = thread_cpu(gateway, gateway), thread_cpu(gateway)
        loop_cpu = sum(loop_after) - sum(loop_before)
        system_cpu = all_after[1] - all_before[1]
        memory = procstat.memory(gateway)
        files = [out_dir / f"{name}.prof" for name in profiled]
        _signal_and_wait(pids, DUMP_SIGNAL, files)
        stack.check_running()
    n = max(rate.completed, 1)
    print(f"sign-ins: {rate.completed} in {rate.seconds:.1f} s = {rate.per_second:.1f}/s, {rate.errors} errors"
          + (f" (first: {rate.first_error})" if rate.errors else "")
          + (" [under the profiler]" if profiled else ""))
    print("CPU per sign-in (ms): " + ", ".join(
        f"{name} {1000 * seconds / n:.2f}" for name, seconds in sorted(usage.components.items()))
        + f", client {1000 * rate.client_cpu / n:.2f}; other processes {usage.foreign_percent:.0f}% of one CPU")
    print(f"gateway main thread (event loop): {1000 * loop_cpu / n:.2f} ms per sign-in; the other threads (sign-in "
          f"threads, Starlette's thread pool): {1000 * (usage.components.get('gateway', 0.0) - loop_cpu) / n:.2f}; "
          f"in the kernel (system time): {1000 * system_cpu / n:.2f}")
    print(f"gateway memory after the sign-ins: {memory.rss:.1f} MiB RSS, peak {memory.peak:.1f} MiB")
    for name in profiled:
        print(f"\n===== {name} =====")
        counts = GATEWAY_COUNTS if name == "gateway" else PROVIDER_COUNTS
        print(profile_report(out_dir / f"{name}.prof", n, counts, args.top))
    return 0 if not rate.errors and rate.completed else 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m devtools.profile_signin", description=__doc__.split("\n", 1)[0])
    p.add_argument("--seconds", type=float, default=10.0, help="seconds of measured sign-ins (default %(default)s)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of sign-ins first (default %(default)s)")
    p.add_argument("--protocol", choices=("openid2", "oidc"), default="openid2",
                   help="sign in with the local OpenID 2.0 provider (as the bench) or the local OpenID Connect one")
    p.add_argument("--concurrency", type=int, default=32, help="browsers at once (default %(default)s, as the bench)")
    p.add_argument("--profile", default="", help=f"processes to profile, comma-separated: {', '.join(PROFILED)}")
    p.add_argument("--top", type=int, default=30, help="functions listed per profile (default %(default)s)")
    p.add_argument("--out", default="test-output/profile-signin", help="where .prof files go (default %(default)s)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        out, rest = argv[1], argv[2:]
        child(out, rest[1:] if rest[:1] == ["--"] else rest)
        return 0
    args = _parser().parse_args(argv)
    unknown = set(filter(None, args.profile.split(","))) - set(PROFILED)
    if unknown:
        raise SystemExit(f"--profile takes {', '.join(PROFILED)}, not {', '.join(sorted(unknown))}")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
