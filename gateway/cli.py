"""``openid-gateway``: serve the gateway, or check a configuration file.

A bad configuration stops start-up with one line saying what to fix and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from gateway import keys_command
from gateway.errors import ConfigError
from gateway.settings import Settings, load_settings, provider_address_warnings

EXIT_CONFIG = 2


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
    parser = argparse.ArgumentParser(prog="openid-gateway", description="OpenID 2.0 authentication gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway (uvicorn)")
    check = sub.add_parser("check-config", help="validate a configuration file and exit")
    for command in (serve, check):
        command.add_argument("--config", "-c", default=os.environ.get("GATEWAY_CONFIG"),
                             help="TOML configuration file (default: $GATEWAY_CONFIG)")
    keys_command.add_parser(sub)  # works on a key file, reads no configuration
    return parser


def serve(settings: Settings, config: str | None) -> None:
    import uvicorn

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if config:
        os.environ["GATEWAY_CONFIG"] = os.path.abspath(config)
    uvicorn.run(
        "gateway.app:create_app_from_environ",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop=settings.loop,
        http=settings.http,
        log_level=settings.log_level,
        access_log=settings.access_log,
        proxy_headers=False,
        server_header=False,
        date_header=False,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "keys":
        raise SystemExit(keys_command.run(args))
    settings = _load(args.config)
    if args.command == "check-config":
        print(f"openid-gateway: configuration OK (mode {settings.mode}, public URL {settings.public_url})")
        return
    serve(settings, args.config)


if __name__ == "__main__":  # pragma: no cover
    main()
