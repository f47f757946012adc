"""``python -m devtools.openid_provider``: serve the development provider with uvicorn."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from devtools.openid_provider.app import create_app


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.openid_provider",
        description="Development OpenID 2.0 provider — not for production. Anyone can sign in as anyone.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8001, help="port to listen on (default: %(default)s)")
    parser.add_argument("--base-url", help="externally visible URL (default: taken from each request's Host)")
    parser.add_argument("--oidc-issuer", metavar="URL",
                        help="the OpenID Connect issuer this provider moves to: identifiers name it as JSON iss")
    parser.add_argument("--ignore-step-up", action="store_true",
                        help="disregard PAPE max_auth_age and policies (still reporting the true auth_time and "
                             "policies): to test a relying party's refusal")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    base_url = args.base_url.rstrip("/") if args.base_url else None
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"Development OpenID provider (not for production): {base_url or f'http://{host}:{args.port}'}", flush=True)
    app = create_app(base_url, oidc_issuer=args.oidc_issuer, ignore_step_up=args.ignore_step_up)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
