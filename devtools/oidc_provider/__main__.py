"""``python -m devtools.oidc_provider``: serve the development OpenID Connect provider with uvicorn."""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Sequence

import uvicorn

from devtools.oidc_provider.app import create_app
from devtools.oidc_provider.clients import Client, ClientConfigError, clients_from_json, gateway_client


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.oidc_provider",
        description="Development OpenID Connect provider (and GitHub-style OAuth 2.0 fake under /github) — "
                    "not for production. Anyone can sign in as anyone.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8002, help="port to listen on (default: %(default)s)")
    parser.add_argument("--base-url", help="issuer, the externally visible URL (default: from each request's Host)")
    parser.add_argument("--clients", metavar="JSON_OR_FILE",
                        help="a JSON list of clients, or a file holding one: objects with client_id, client_secret, "
                             "redirect_uris, and optionally post_logout_redirect_uris, backchannel_logout_uri, "
                             "id_token_signed_response_alg (RS256 or ES256)")
    parser.add_argument("--gateway-url", metavar="URL",
                        help="also register client 'gateway' (secret 'dev-secret') for a gateway at URL: "
                             "URL/_gateway/callback, URL/_gateway/backchannel-logout")
    parser.add_argument("--openid2-provider", metavar="URL",
                        help="a local OpenID 2.0 provider: openid2_id (migration) is the user name's identifier there")
    parser.add_argument("--access-token-audience", metavar="AUDIENCE",
                        help="issue RFC 9068 JWT access tokens for AUDIENCE (authorization code and client "
                             "credentials grants; POST /_dev/access-token mints one for a user name)")
    parser.add_argument("--opaque-access-tokens", action="store_true",
                        help="issue opaque (random) access tokens even with --access-token-audience: resource "
                             "servers introspect them (RFC 7662, /introspect)")
    parser.add_argument("--ignore-step-up", action="store_true",
                        help="disregard max_age, prompt=login, acr_values and claims (still reporting the true "
                             "auth_time, acr and amr): to test a relying party's refusal")
    parser.add_argument("--groups-claim", default="groups", help="name of the groups claim (default: %(default)s)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return parser.parse_args(argv)


class HideTokens(logging.Filter):
    """The access log names each request's URL: the ID token of an RP-initiated logout (``id_token_hint``)
    must not be written there (nor in any log: tests/conftest.py's leak check reads this log too)."""

    TOKEN = re.compile(r"(id_token_hint=)[^&\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self.TOKEN.sub(r"\1(hidden)", arg) if isinstance(arg, str) else arg
                                for arg in record.args)
        return True


def clients_of(args: argparse.Namespace) -> list[Client]:
    clients = clients_from_json(args.clients) if args.clients else []
    return [*clients, gateway_client(args.gateway_url)] if args.gateway_url else clients


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        clients = clients_of(args)
    except (ClientConfigError, OSError) as exc:
        raise SystemExit(f"python -m devtools.oidc_provider: {exc}") from exc
    base_url = args.base_url.rstrip("/") if args.base_url else None
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"Development OpenID Connect provider (not for production): {base_url or f'http://{host}:{args.port}'}",
          flush=True)
    app = create_app(base_url, clients, groups_claim=args.groups_claim, openid2_provider=args.openid2_provider,
                     access_token_audience=args.access_token_audience, ignore_step_up=args.ignore_step_up,
                     opaque_access_tokens=args.opaque_access_tokens)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level)  # sets up logging
    logging.getLogger("uvicorn.access").addFilter(HideTokens())
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
