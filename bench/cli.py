"""``python -m bench``: measure the gateway against its ceiling on this machine, in one run.

Exit status: 0 when every request and sign-in succeeded, 1 when something
was broken (an answer other than 200, a socket error on a row of ours or
nginx's, a failed sign-in, a process that died; a peer's own socket errors,
its server dropping connections under load, are reported apart), 2 when the
benchmark could not run (no nginx, no wrk, no LemonLDAP::NG, no Apache with
mod_auth_openidc: ``make system-deps`` installs them).
Speed never decides the exit status.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench import apache, llng, report
from bench.runner import FULL, SMOKE, Config, Runner
from bench.stacks import machine
from bench.wrk import WrkError, find_wrk
from devtools.stack import NginxNotFound, find_nginx
from gateway.settings import Settings

EXIT_BROKEN = 1
EXIT_CANNOT_RUN = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n", 1)[0])
    p.add_argument("--smoke", action="store_true",
                   help="tiny run proving the benchmark works (make test); prints the same tables")
    p.add_argument("--rounds", type=int, help=f"measured rounds per scenario (default {FULL.rounds})")
    p.add_argument("--duration", type=float, help=f"seconds per round (default {FULL.duration:g})")
    p.add_argument("--warmup", type=float, help=f"warm-up seconds per scenario (default {FULL.warmup:g})")
    p.add_argument("--connections", type=int, help=f"wrk connections (default {FULL.connections})")
    p.add_argument("--threads", type=int, help=f"wrk threads (default {FULL.threads})")
    p.add_argument("--paced", type=float,
                   help=f"seconds of each steady-load latency round (default {FULL.paced:g}; 0 skips)")
    p.add_argument("--steady-rps", type=float,
                   help=f"load offered in the steady-load run, req/s (default {FULL.steady_rps:g})")
    p.add_argument("--soak", type=float, help=f"seconds of the memory run per mode (default {FULL.soak:g}; 0 skips)")
    p.add_argument("--signin-concurrency", type=int, help=f"browsers signing in at once (default "
                   f"{FULL.signin_concurrency})")
    p.add_argument("--signin-seconds", type=float, help=f"seconds of sign-ins (default {FULL.signin_seconds:g})")
    p.add_argument("--no-microblog", action="store_true", help="measure the trivial app only")
    p.add_argument("--workers", type=int, help="gateway workers (GATEWAY_WORKERS; default: the setting's default)")
    p.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], help="gateway event loop (GATEWAY_LOOP)")
    p.add_argument("--http", choices=["auto", "h11", "httptools"], help="gateway HTTP parser (GATEWAY_HTTP)")
    p.add_argument("--set", action="append", default=[], metavar="GATEWAY_KEY=VALUE",
                   help="any other gateway setting for this run (repeatable)")
    p.add_argument("--markdown", type=Path, help="also write the report to this file")
    return p


def config_from(args: argparse.Namespace) -> Config:
    base = SMOKE if args.smoke else FULL
    changes: dict[str, object] = {}
    for name in ("rounds", "duration", "warmup", "connections", "threads", "paced", "steady_rps", "soak",
                 "signin_concurrency"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    if args.signin_seconds is not None:
        changes.update(signin_seconds=args.signin_seconds, signin_count=None)
    if args.no_microblog:
        changes["microblog"] = False
    env = dict(base.gateway_env)
    for flag, key in (("workers", "GATEWAY_WORKERS"), ("loop", "GATEWAY_LOOP"), ("http", "GATEWAY_HTTP")):
        if getattr(args, flag) is not None:
            env[key] = str(getattr(args, flag))
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("GATEWAY_"):
            raise SystemExit(f"--set wants GATEWAY_KEY=VALUE, got {item!r}")
        env[key] = value
    changes["gateway_env"] = env
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
    except OSError:
        return "?"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else "?"


def context_lines(config: Config, nginx: str, wrk: str) -> list[str]:
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    settings = {name: str(defaults[name]) for name in ("workers", "loop", "http")}
    settings.update({k.removeprefix("GATEWAY_").lower(): v for k, v in config.gateway_env.items()})
    auto = {"loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
            "http": "httptools" if importlib.util.find_spec("httptools") else "h11"}
    described = ", ".join(f"{k}={v}" + (f" ({auto[k]})" if v == "auto" and k in auto else "")
                          for k, v in sorted(settings.items()))
    return [
        f"Machine: {machine()}; Python {platform.python_version()}; "
        f"{_version([nginx, '-v']).removeprefix('nginx version: ')}; {_version([wrk, '--version']).split(' [')[0]}.",
        f"Gateway: {described}. Servers and load generator share the machine; best of interleaved rounds.",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = config_from(args)
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    try:
        nginx, wrk = find_nginx(), find_wrk()
        llng.check_installed()
        apache.check_installed()
    except (NginxNotFound, WrkError, llng.LLNGNotInstalled, apache.ApacheNotInstalled) as exc:
        print(f"bench: cannot run: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    progress("benchmark " + ("smoke run" if config.smoke else "full run") + " starting")
    try:
        results = Runner(config, progress).run()
    except (RuntimeError, WrkError, OSError) as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        return EXIT_BROKEN
    text = report.render(results, context_lines(config, nginx, wrk))
    print(text, flush=True)
    if args.markdown is not None:
        args.markdown.write_text(text + "\n")
    progress("done" + (f", {len(results.errors)} error(s)" if results.errors else ""))
    return EXIT_BROKEN if results.errors else 0


__all__ = ["main"]
