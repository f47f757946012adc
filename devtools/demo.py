"""``python -m devtools.demo`` (``make demo``): the whole site on this machine, ready to sign in.

Starts the development OpenID 2.0 and OpenID Connect providers, the microblog, the gateway and nginx
(with the project's nginx.conf) on fixed loopback ports, prints where to go,
and stops everything on Ctrl-C or SIGTERM. State (the gateway's store, the
microblog's posts, generated keys) lives in ``state/demo/``, so a restart
keeps sessions and posts; delete that directory to start afresh.

``--instances 3 --store redis`` (``make demo INSTANCES=3 STORE=redis``): the
same site on the same address, with three gateway instances behind nginx's
round robin sharing a Redis the demo starts (its append-only file in
``state/demo/redis/``), as several machines would run it.

Development only: the provider lets anyone sign in as anyone.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType

from devtools.redis_server import RedisNotFound
from devtools.stack import (
    DEMO_ADMIN_MAX_AGE,
    DEMO_ADMIN_USER,
    DEMO_PORTS,
    LOCAL_OIDC_NAME,
    LOCAL_PROVIDER_NAME,
    MODES,
    STORES,
    Mode,
    NginxNotFound,
    Ports,
    Progress,
    Stack,
    StoreKind,
)
from gateway.paths import Paths

DEFAULT_STATE_DIR = Path("state") / "demo"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=MODES, default="auth_request",
                        help="auth_request: nginx asks the gateway (mode 1); proxy: the gateway forwards (mode 2)")
    parser.add_argument("--port", type=int, default=DEMO_PORTS.nginx, help="nginx's port (default: %(default)s)")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="default: %(default)s")
    parser.add_argument("--instances", type=_instances, default=1,
                        help="gateway instances behind nginx's round robin (default: %(default)s)")
    parser.add_argument("--store", choices=STORES, default="sqlite",
                        help="sqlite: the state directory's file; redis: a redis-server the demo starts")
    return parser.parse_args(argv)


def _instances(value: str) -> int:
    """``--instances``: a whole number of at least 1 (argparse reports anything else as a usage error)."""
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {value!r}")
    return int(value)


def demo_secrets(state_dir: Path) -> tuple[list[str], str]:
    """The gateway's secret keys and proof key, generated once and kept in the state directory."""
    path = state_dir / "secrets.json"
    if path.exists():
        data = json.loads(path.read_text())
        return list(data["secret_keys"]), str(data["proof_key"])
    keys, proof = [secrets.token_urlsafe(32)], secrets.token_urlsafe(32)
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"secret_keys": keys, "proof_key": proof}, fh, indent=2)
    return keys, proof


def user_gateway_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The ``GATEWAY_*`` settings of the demo's own environment.

    They are taken over the stack's own (e.g. ``GATEWAY_PROVIDERS`` with a
    provider of your own, or ``GATEWAY_SITE_NAME``): the stack strips them
    from every other child, where a stray one would confuse a test run.
    """
    return {name: value for name, value in environ.items() if name.startswith("GATEWAY_")}


DEMO_AUDIENCE = "openid-gateway-demo"  # the audience of the local OpenID Connect provider's access tokens


def demo_stack(mode: Mode, ports: Ports, state_dir: Path, environ: Mapping[str, str],
               progress: Progress | None = None, instances: int = 1, store: StoreKind = "sqlite") -> Stack:
    """The demo's stack: fixed secrets in ``state_dir``, the demo's access rules, and the caller's GATEWAY_*.

    One gateway listens on a Unix socket, as the production install on nginx's machine does; several
    instances on TCP ports, as ``deploy/nginx/gateway-upstream.conf`` has them.
    """
    secret_keys, proof_key = demo_secrets(state_dir)
    # /api/ answers API clients, and takes the local OpenID Connect provider's access tokens (docs/api-clients.md).
    return Stack(mode, ports=ports, state_dir=state_dir, secret_keys=secret_keys,
                 proof_key=proof_key, progress=progress, demo_rules=True, gateway_env=user_gateway_env(environ),
                 oidc_migration=True, bearer_audience=DEMO_AUDIENCE, api_paths=("/api/",), instances=instances,
                 store=store, uds=instances == 1,
                 # GATEWAY_ROUTE_PREFIX=/sso make demo: nginx's snippets and the microblog's links follow it.
                 route_prefix=environ.get("GATEWAY_ROUTE_PREFIX", "").strip())


def _progress(label: str, event: str) -> None:
    if event == "starting":
        print(f"starting {label}… ", end="", flush=True)
    elif event == "ok":
        print("ok", flush=True)
    else:
        print("FAILED", flush=True)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _stop_on(signum: int, frame: FrameType | None) -> None:
    """The first stop signal unwinds into ``Stack.__exit__``; more of them must not cut that short."""
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise KeyboardInterrupt


def banner(stack: Stack) -> str:
    taken = ""
    if stack.gateway_env:  # names only: values may be secrets
        taken = ("\nTaken from your environment, over the demo's own settings:\n    "
                 + ", ".join(sorted(stack.gateway_env)) + "\n")
    return f"""
The demo is running (mode {stack.mode}{_scaled_out(stack)}). Open:

    {stack.url}/

To sign in, click "{LOCAL_PROVIDER_NAME}" (OpenID 2.0) or "{LOCAL_OIDC_NAME}" (OpenID Connect),
type any user name and press Allow. The two are paired as a site moving from OpenID 2.0 to OpenID
Connect: the same user name at either reaches the same account (OpenID 2.0 to OpenID Connect Migration).

Access rules (devtools/stack.py, demo_access_settings): {stack.url}/about is
public; {stack.url}/admin is for the group admins, which is the user name
"{DEMO_ADMIN_USER}" at "{LOCAL_PROVIDER_NAME}" (anyone else gets a 403 there), signed in within the
last {DEMO_ADMIN_MAX_AGE} seconds (step-up: older, and the gateway asks the provider again); every
other page needs a sign-in.

    nginx      {stack.url}   (what a browser uses)
{_gateway_lines(stack)}
    app        {stack.app_url}   (the microblog; it refuses forged identity headers)
    provider   {stack.provider_url}   (OpenID 2.0; development only: anyone can sign in as anyone)
    oidc       {stack.oidc_url}   (OpenID Connect; development only, likewise)
    logs       {stack.log_dir}/

{taken}
Press Ctrl-C to stop.
"""


def _scaled_out(stack: Stack) -> str:
    """``, 3 gateway instances on Redis`` (nothing for the plain demo)."""
    if stack.instances == 1 and stack.redis is None:
        return ""
    store = "Redis" if stack.redis is not None else "one SQLite file"
    instances = "1 gateway instance" if stack.instances == 1 else f"{stack.instances} gateway instances"
    return f", {instances} on {store}"


def _own_paths(stack: Stack) -> str:
    """The gateway's pages under the stack's route prefix, for the banner."""
    paths = Paths(stack.route_prefix)
    return ", ".join(dict.fromkeys(path for path in (paths.login, paths.logout, paths.space)
                                   if path == paths.space or path in paths.root_pages))


def _listener(stack: Stack, number: int) -> str:
    """Where gateway instance ``number`` listens: its Unix socket, or its URL."""
    sock = stack.gateway_socket(number)
    return stack.instance_url(number) if sock is None else f"unix:{sock}"


def _gateway_lines(stack: Stack) -> str:
    """The banner's gateway line, or one per instance and the shared store."""
    if stack.instances == 1 and stack.redis is None:
        return f"    gateway    {_listener(stack, 1)}   ({_own_paths(stack)})"
    lines = [f"    gateway-{number}  {_listener(stack, number)}   ({_own_paths(stack)})"
             for number in range(1, stack.instances + 1)]
    if stack.instances > 1:
        lines.append("               nginx balances over them round robin, no sticky sessions; each gateway page"
                     " names\n               the instance that answered in its X-Gateway-Instance header")
    if stack.redis is not None:
        lines.append(f"    redis      {stack.redis.url}   (the shared store; append-only file in"
                     f" {stack.redis.directory}/)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    state_dir: Path = args.state_dir.resolve()
    for signum in STOP_SIGNALS:
        signal.signal(signum, _stop_on)
    try:
        stack = demo_stack(args.mode, replace(DEMO_PORTS, nginx=args.port), state_dir, os.environ, _progress,
                           args.instances, args.store)
    except (NginxNotFound, RedisNotFound) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        with stack:
            print(banner(stack), flush=True)
            while not (stopped := stack.stopped()):
                time.sleep(0.5)
            print(f"error: {', '.join(stopped)} stopped unexpectedly; see {stack.log_dir}/", file=sys.stderr)
            for name in stopped:
                print(stack.log(name, tail=20), file=sys.stderr)
            print("stopping…", flush=True)
            return 1
    except KeyboardInterrupt:
        print("\nstopped.", flush=True)
        return 0
    except RuntimeError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
