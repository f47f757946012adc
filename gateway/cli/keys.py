"""``openid-gateway keys ...``: make and rotate the assertion key file (:mod:`gateway.gate.signing_keys`).

``keys secret`` prints a new secret key (to append to ``secret_keys``) and a new proof key.

No configuration is read: the commands work on the file named, so a key file
can be made before the configuration that names it exists. Each step prints
what to do next; a step out of order stops with one line and exit status 2.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from typing import Any, cast

from gateway.gate.signing_keys import (
    ALGORITHMS,
    Algorithm,
    KeyFileError,
    add_next,
    generate_key,
    load_signing_keys,
    promote,
    retire,
    validated,
    write_key_file,
)

EXIT_KEYS = 2
NEXT_STEPS = {
    "generate": "set assertion_keys_file to it on every instance (the same file everywhere)",
    "add-next": "copy it to every instance and restart them; wait until the apps have fetched the JWKS again"
                " (at least 5 minutes), then run `keys promote`",
    "promote": "copy it to every instance and restart them; after a few minutes (every token signed with the"
               " old key has expired) run `keys retire`",
    "retire": "copy it to every instance and restart them",
}


def add_parser(sub: Any) -> None:
    """The ``keys`` command and its steps, on the main parser's subparsers."""
    keys = sub.add_parser("keys", help="make secret keys, or make or rotate the JWT assertion key file")
    steps = keys.add_subparsers(dest="keys_command", required=True)
    steps.add_parser("secret", help="print a new secret key (append it to secret_keys) and a new proof key")
    for name, help_text in (("generate", "write a new key file with one current key"),
                            ("add-next", "add the next key (published, not signing yet)"),
                            ("promote", "the next key signs; the current one stays published as previous"),
                            ("retire", "drop the previous key")):
        step = steps.add_parser(name, help=help_text)
        step.add_argument("file", help="the key file (a JWK Set, JSON)")
        if name in ("generate", "add-next"):
            step.add_argument("--alg", choices=ALGORITHMS, default="ES256", help="default: %(default)s")


def run(args: argparse.Namespace) -> int:
    """Do one step on ``args.file``; 0, or :data:`EXIT_KEYS` with one line on stderr."""
    step: str = args.keys_command
    if step == "secret":
        print_secret_keys()
        return 0
    try:
        if step == "generate":
            write_key_file(args.file, validated([generate_key(cast(Algorithm, args.alg))]), replace=False)
        else:
            keys = load_signing_keys(args.file)
            changed = {"add-next": lambda: add_next(keys, cast(Algorithm, args.alg)), "promote": lambda: promote(keys),
                       "retire": lambda: retire(keys)}[step]()
            write_key_file(args.file, changed, replace=True)
    except (KeyFileError, OSError) as exc:
        print(f"openid-gateway: keys {step}: {exc}", file=sys.stderr)
        return EXIT_KEYS
    current = load_signing_keys(args.file).current
    print(f"openid-gateway: {args.file}: signing key {current.kid} ({current.alg}); next: {NEXT_STEPS[step]}")
    return 0


def print_secret_keys() -> None:
    """A new secret key and proof key, each as long as ``secrets.token_urlsafe(48)`` makes (64 characters)."""
    print(f"secret key: {secrets.token_urlsafe(48)}")
    print("    append it to secret_keys (newest last: it signs, the older ones still verify); drop the oldest")
    print("    once session_max_lifetime and remember_lifetime have passed")
    print(f"proof key:  {secrets.token_urlsafe(48)}")
    print("    proof_key: set it on the gateway and the app at the same time")


__all__ = ["add_parser", "print_secret_keys", "run"]
