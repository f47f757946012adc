"""``openid-gateway``: serve the gateway, check a configuration file, explain an access decision.

A bad configuration stops start-up with one line saying what to fix and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

from gateway import __version__
from gateway.cli import health as health_command
from gateway.cli import keys as keys_command
from gateway.cli import listen
from gateway.cli import sessions as admin_command
from gateway.errors import ConfigError, StoreMisconfigured, StoreUnavailable
from gateway.observe.audit import configure_logging
from gateway.paths import Paths
from gateway.settings import Settings, access_summary, load_settings, provider_address_warnings
from gateway.store import describe as store_description

EXIT_CONFIG = 2
EXIT_STARTUP_FAILURE = 3  # uvicorn's, when the application does not start
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
APP = "gateway.app:create_app_from_environ"


def listener(settings: Settings) -> str:
    """Where ``serve`` listens, as nginx's ``upstream`` names it."""
    return f"unix:{settings.uds}" if settings.uds else f"{settings.host}:{settings.port}"


def _load(config: str | None) -> Settings:
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        print(f"openid-gateway: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    for warning in provider_address_warnings(settings):
        print(f"openid-gateway: warning: {warning}", file=sys.stderr)
    return settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openid-gateway",
        description="Authentication gateway: OpenID Connect, GitHub and OpenID 2.0 sign-in in front of any web app")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway (uvicorn)")
    check = sub.add_parser("check-config", help="validate a configuration file and exit")
    access = sub.add_parser("check-access", help="explain the access decision for a person and a request")
    access.add_argument("--user", default="", help="the user identifier (none: an anonymous visitor)")
    access.add_argument("--email", default="", help="an e-mail address the provider vouched for")
    access.add_argument("--group", action="append", default=[], help="a group the provider sent (repeatable)")
    access.add_argument("--provider", default="", help="the provider's name (as configured) or host")
    access.add_argument("--host", default="", help="the Host of the request (default: public_url's)")
    access.add_argument("--path", required=True, help="the request path (a query string is ignored, as rules do)")
    access.add_argument("--method", default="GET")
    access.add_argument("--auth-age", type=_seconds, default=0, metavar="SECONDS",
                        help="how long ago the person authenticated at their provider (step-up rules; default 0)")
    access.add_argument("--acr", default="", help="the acr their provider reported for it (step-up rules)")
    health = sub.add_parser("health", help="ask the running gateway's /_gateway/health (the container's HEALTHCHECK)")
    for command in (serve, check, access, health, *admin_command.add_parser(sub)):
        command.add_argument("--config", "-c", default=os.environ.get("GATEWAY_CONFIG"),
                             help="TOML configuration file (default: $GATEWAY_CONFIG)")
    keys_command.add_parser(sub)  # works on a key file, reads no configuration
    return parser


def _seconds(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def check_access(settings: Settings, args: argparse.Namespace) -> None:
    """Print the decision and the rule that made it, like Authelia's ``access-control check-policy``."""
    import time
    from urllib.parse import urlsplit

    from gateway.gate.access import path_readings
    from gateway.types import Assurance

    policy = settings.access_policy()
    person = policy.person(args.user, args.email, args.provider, provider_groups=args.group) if args.user else None
    host = args.host or (urlsplit(settings.public_url).netloc)
    path = args.path.partition("?")[0]
    now = time.time()
    assurance = Assurance(now - args.auth_age, args.acr)
    decision = policy.decide(person, args.method, host, path, assurance, now)
    outcome = {"allow": "public (no identity passed)" if decision.public else "allow",
               "sign_in": "sign in first", "step_up": "step up: a more recent or stronger sign-in first (401)",
               "forbidden": "forbidden (403)"}[decision.outcome]
    print(f"decision: {outcome}")
    print(f"rule:     {decision.rule}")
    if decision.step_up is not None:
        asked = decision.step_up
        wanted = ([f"max_age {asked.max_age}s"] if asked.max_age is not None else []) \
            + ([f"acr_values {' '.join(asked.acr_values)}"] if asked.acr_values else [])
        print(f"step-up:  asks {', '.join(wanted)}; {asked.shortfall(assurance, now)}")
    if person is None:
        print("person:   anonymous")
    else:
        groups = ", ".join(sorted(person.groups)) or "none"
        provider = f"; provider: {person.provider}" if person.provider else ""
        print(f"person:   {person.user_id}" + (f" <{person.email}>" if person.email else "")
              + f"; groups: {groups}{provider}")
        if args.auth_age or args.acr or decision.step_up is not None:
            print(f"sign-in:  {args.auth_age}s ago, acr {args.acr or '(none)'}")
    print(f"request:  {args.method.upper()} {host} {path}")
    methods = policy.methods_judged(args.method)
    if len(methods) > 1:
        print(f"          judged as each method an override could make it: {', '.join(methods)}")
    readings = path_readings(path).every
    if len(readings) > 1:
        print(f"          judged as each of: {', '.join(readings[:12])}{' ...' if len(readings) > 12 else ''}")


def prepare_multiprocess_dir(environ: MutableMapping[str, str] | None = None) -> tuple[Path, bool]:
    """Point ``PROMETHEUS_MULTIPROC_DIR`` at an empty directory; return it and whether it was made here.

    Here, not in gateway.observe.metrics: it must run before prometheus-client is imported (which reads the
    variable then). A directory the operator set is emptied (an earlier run's values would be summed
    in); otherwise a private temporary one is made, removed at exit.
    """
    env = os.environ if environ is None else environ
    preset = env.get(MULTIPROC_ENV)
    if preset:
        path = Path(preset)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return path, False
    path = Path(tempfile.mkdtemp(prefix="openid-gateway-metrics-"))
    env[MULTIPROC_ENV] = str(path)
    return path, True


def check_store(settings: Settings, unavailable_status: int = 1) -> None:
    """Open the store once before serving or a ``sessions`` command: one line and an exit status, no traceback.

    A Redis that may evict keys (StoreMisconfigured) is a configuration error; a store that cannot be
    opened now stops start-up too (a supervisor restarts the gateway; a running one rides out outages).
    """
    from gateway.runtime import open_store

    try:
        open_store(settings).close()
    except StoreMisconfigured as exc:
        print(f"openid-gateway: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    except StoreUnavailable as exc:
        print(f"openid-gateway: the store is unavailable: {exc}", file=sys.stderr)
        raise SystemExit(unavailable_status) from None


def serve(settings: Settings, config: str | None) -> None:
    """Run uvicorn; with ``metrics_address``, serve the metrics of every worker from this process too."""
    # The workers do it again (gateway.app.create_app_from_environ).
    configure_logging(settings.log_format, settings.log_level, settings.audit_log)
    check_store(settings)
    if config:
        os.environ["GATEWAY_CONFIG"] = os.path.abspath(config)
    if not settings.metrics_address:
        _run_uvicorn(settings)
        return
    # Before prometheus-client is first imported, here and in the workers uvicorn spawns (they inherit it).
    directory, made_here = prepare_multiprocess_dir()
    from gateway.observe import metrics

    try:
        server = metrics.start_server(settings.metrics_address, directory)
    except OSError as exc:
        print(f"openid-gateway: metrics_address {settings.metrics_address}: cannot listen ({exc.strerror or exc})",
              file=sys.stderr)
        raise SystemExit(1) from None
    try:
        _run_uvicorn(settings, supervised=True)
    finally:
        metrics.stop_server(server)
        if made_here:
            metrics.remove_multiprocess_dir(directory)


def _run_uvicorn(settings: Settings, supervised: bool = False) -> None:
    """uvicorn, as ``uvicorn.run`` would; ``supervised``: workers in processes of their own even when one.

    With metrics this process may already have imported prometheus-client before PROMETHEUS_MULTIPROC_DIR
    was set (any gateway import can pull it in): a single worker run in here would then keep its values in
    memory, out of the files /metrics reads. Spawned workers import it afresh, with the variable set.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    options: dict[str, Any] = {
        "factory": True, "host": settings.host, "port": settings.port, "workers": settings.workers,
        "loop": settings.loop, "http": settings.http, "log_level": settings.log_level,
        "access_log": settings.access_log, "proxy_headers": False, "server_header": False, "date_header": False,
    }
    if settings.log_format == "json":  # uvicorn's dictConfig would give its loggers plain-text handlers again,
        options["log_config"] = None   # in this process (the supervisor's lines) and in each worker it spawns
    if settings.uds:
        _serve_unix_socket(settings, uvicorn.Config(APP, **options), supervised)
    elif supervised and settings.workers == 1:  # uvicorn.run would serve in this process
        config = uvicorn.Config(APP, **options)
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.run(APP, **options)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _serve_unix_socket(settings: Settings, config: Any, supervised: bool) -> None:
    """uvicorn on the socket :func:`gateway.cli.listen.unix_socket` binds (mode 0660), removed again at exit."""
    import logging

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    try:
        listener = listen.unix_socket(settings.uds, settings.uds_group)
    except ConfigError as exc:
        print(f"openid-gateway: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    logging.getLogger("uvicorn.error").info("openid-gateway listening on unix:%s (mode %o)", settings.uds,
                                            listen.SOCKET_MODE)
    # The socket accepts from here on, before uvicorn installs its own handlers: a stop meanwhile still
    # unwinds to the finally below, which removes the socket file.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        if supervised or settings.workers > 1:
            Multiprocess(config, sockets=[listener.sock]).run()
        else:
            server = uvicorn.Server(config)
            server.run(sockets=[listener.sock])
            if not server.started:  # as uvicorn.run: the application failed to start
                raise SystemExit(EXIT_STARTUP_FAILURE)
    finally:
        listener.sock.close()
        listener.remove()


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "keys":
        raise SystemExit(keys_command.run(args))
    settings = _load(args.config)
    if args.command == "check-config":
        paths = Paths(settings.route_prefix)
        print(f"openid-gateway: configuration OK (mode {settings.mode}, public URL {settings.public_url})")
        print(f"openid-gateway: {access_summary(settings)}")
        print(f"openid-gateway: store: {store_description(settings.store, settings.state_dir)}")
        print(f"openid-gateway: listens on {listener(settings)}")
        if any(p.type in ("oidc", "oauth2") for p in settings.providers):
            print(f"openid-gateway: redirect URI to register with OpenID Connect providers: "
                  f"{settings.public_origin}{paths.callback}")
        if any(p.type == "oidc" for p in settings.providers):
            print(f"openid-gateway: back-channel logout URI for OpenID Connect providers: "
                  f"{settings.public_origin}{paths.backchannel_logout}")
        if any(p.type == "oidc" and p.logout_at_provider for p in settings.providers):
            print(f"openid-gateway: post-logout redirect URI (logout_at_provider): "
                  f"{settings.public_origin}{paths.post_logout}")
        return
    if args.command == "check-access":
        check_access(settings, args)
        return
    if args.command == "health":
        raise SystemExit(health_command.run(settings))
    if args.command == "sessions":
        check_store(settings, admin_command.EXIT_STORE)
        raise SystemExit(admin_command.run(settings, args))
    serve(settings, args.config)


if __name__ == "__main__":  # pragma: no cover
    main()
