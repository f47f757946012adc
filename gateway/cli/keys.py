"""``openid-gateway keys ...``: make and rotate the assertion key file (:mod:`gateway.gate.signing_keys`).

``keys secret`` prints a new secret key (to append to ``secret_keys``) and a new proof key.

No configuration is read: the commands work on the file named, so a key file
can be made before the configuration that names it exists. Each step prints
what to do next; a step out of order stops with one line and exit status 2.

Run as root on a file the service reads, each step keeps the file's owner,
group and mode (a new file: 0600, its maker's); ``--owner USER[:GROUP]`` and
``--group GROUP`` (mode 0640: the group reads it) set them. The file is never
left open to every user: the gateway would refuse to start on it.
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import secrets
import stat
import sys
from collections.abc import Callable
from typing import Any, cast

from gateway.gate.signing_keys import (
    ALGORITHMS,
    Algorithm,
    FileAccess,
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
        step.add_argument("--owner", metavar="USER[:GROUP]",
                          help="the file's owner (default: the existing file's, or yours for a new file)")
        step.add_argument("--group", metavar="GROUP",
                          help="the file's group, which may read it (mode 0640), e.g. the service's group")


def run(args: argparse.Namespace) -> int:
    """Do one step on ``args.file``; 0, or :data:`EXIT_KEYS` with one line on stderr."""
    step: str = args.keys_command
    if step == "secret":
        print_secret_keys()
        return 0
    try:
        access = file_access(args.owner, args.group)
        if step == "generate":
            done = write_key_file(args.file, validated([generate_key(cast(Algorithm, args.alg))]), replace=False,
                                  access=access)
        else:
            keys = load_signing_keys(args.file)
            changed = {"add-next": lambda: add_next(keys, cast(Algorithm, args.alg)), "promote": lambda: promote(keys),
                       "retire": lambda: retire(keys)}[step]()
            done = write_key_file(args.file, changed, replace=True, access=access)
    except (KeyFileError, OSError) as exc:
        print(f"openid-gateway: keys {step}: {exc}", file=sys.stderr)
        return EXIT_KEYS
    current = load_signing_keys(args.file).current
    print(f"openid-gateway: {args.file}: signing key {current.kid} ({current.alg}); {describe(done)};"
          f" next: {NEXT_STEPS[step]}")
    return 0


def file_access(owner: str | None, group: str | None) -> FileAccess:
    """``--owner USER[:GROUP]`` and ``--group GROUP`` as ids; ``--group`` lets that group read the file (0640)."""
    user, _, owner_group = (owner or "").partition(":")
    if owner_group and group:
        raise KeyFileError("give the group once: --owner USER:GROUP or --group GROUP")
    return FileAccess(_id(user, "user", pwd.getpwnam) if user else None,
                      _id(group or owner_group, "group", grp.getgrnam) if group or owner_group else None,
                      0o640 if group else None)


def _id(name: str, kind: str, lookup: Callable[[str], Any]) -> int:
    """A user or group name (or number) as its id; unknown: one line saying how to make it."""
    if name.isdigit():
        return int(name)
    try:
        entry = lookup(name)
    except KeyError:
        raise KeyFileError(f"no {kind} {name!r} on this machine (deploy/systemd/openid-gateway.sysusers makes"
                           " the service's)") from None
    return int(entry[2])


def describe(done: os.stat_result) -> str:
    """``owner root:openid-gateway, mode 0640``: names where the machine knows them, else ids."""
    try:
        user = pwd.getpwuid(done.st_uid).pw_name
    except KeyError:
        user = str(done.st_uid)
    try:
        group = grp.getgrgid(done.st_gid).gr_name
    except KeyError:
        group = str(done.st_gid)
    return f"owner {user}:{group}, mode {stat.S_IMODE(done.st_mode):04o}"


def print_secret_keys() -> None:
    """A new secret key and proof key, each as long as ``secrets.token_urlsafe(48)`` makes (64 characters)."""
    print(f"secret key: {secrets.token_urlsafe(48)}")
    print("    append it to secret_keys (newest last: it signs, the older ones still verify); drop the oldest")
    print("    once session_max_lifetime and remember_lifetime have passed")
    print(f"proof key:  {secrets.token_urlsafe(48)}")
    print("    proof_key: set it on the gateway and the app at the same time")


__all__ = ["add_parser", "print_secret_keys", "run"]
