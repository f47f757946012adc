"""The microblog's configuration: one frozen object built once at start-up.

Every value comes from a ``MICROBLOG_*`` environment variable (the command line
flags of ``python -m backend_app`` are applied as if they were one). Problems
are reported all at once in a :class:`ConfigError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import Secret

from gateway.errors import ConfigError
from gateway.proof import HeaderNames

ENV_PREFIX = "MICROBLOG_"
_DEFAULT_NAMES = HeaderNames()
_HEADER_SETTINGS = ("header_user", "header_nickname", "header_email", "header_groups", "header_proof")
_DEFAULT_HEADERS = dict(zip(_HEADER_SETTINGS, _DEFAULT_NAMES.all(), strict=True))

# Setting name -> environment variable.
ENV_VARS = {
    "proof_key": "MICROBLOG_PROOF_KEY",
    "state_dir": "MICROBLOG_STATE_DIR",
    "proof_max_age": "MICROBLOG_PROOF_MAX_AGE",
    "header_user": "MICROBLOG_HEADER_USER",
    "header_nickname": "MICROBLOG_HEADER_NICKNAME",
    "header_email": "MICROBLOG_HEADER_EMAIL",
    "header_groups": "MICROBLOG_HEADER_GROUPS",
    "header_proof": "MICROBLOG_HEADER_PROOF",
}


@dataclass(frozen=True, slots=True)
class AppSettings:
    """Every setting of the microblog.

    ``proof_key`` is the gateway's ``proof_key``: without it the app cannot tell
    the gateway's identity headers from forged ones, so it has no default.
    """

    proof_key: Secret
    state_dir: Path = Path("state")
    proof_max_age: int = 30
    header_user: str = _DEFAULT_NAMES.user
    header_nickname: str = _DEFAULT_NAMES.nickname
    header_email: str = _DEFAULT_NAMES.email
    header_groups: str = _DEFAULT_NAMES.groups
    header_proof: str = _DEFAULT_NAMES.proof

    @property
    def sqlite_path(self) -> Path:
        return self.state_dir / "microblog.sqlite3"

    def header_names(self) -> HeaderNames:
        return HeaderNames(self.header_user, self.header_nickname, self.header_email, self.header_proof,
                           self.header_groups)


def load_app_settings(environ: Mapping[str, str] | None = None) -> AppSettings:
    """Build :class:`AppSettings` from ``MICROBLOG_*`` variables (``os.environ`` by default).

    Raises :class:`ConfigError` listing every problem found.
    """
    env = os.environ if environ is None else environ
    problems = [
        f"unknown environment variable {name}"
        for name in sorted(env)
        if name.startswith(ENV_PREFIX) and name not in ENV_VARS.values()
    ]
    proof_key = env.get(ENV_VARS["proof_key"], "")
    if not proof_key:
        problems.append("MICROBLOG_PROOF_KEY is not set: use the gateway's proof_key")
    max_age = _positive_int(env.get(ENV_VARS["proof_max_age"], "30"), ENV_VARS["proof_max_age"], problems)
    headers = {name: env.get(ENV_VARS[name], default).strip() for name, default in _DEFAULT_HEADERS.items()}
    for name, value in headers.items():
        if not _is_token(value):
            problems.append(f"{ENV_VARS[name]} must be an HTTP header name such as X-Gateway-User, got {value!r}")
    if len({value.lower() for value in headers.values()}) != len(headers):
        problems.append("the MICROBLOG_HEADER_* names must differ")
    state_dir = env.get(ENV_VARS["state_dir"], "") or "state"
    if problems:
        raise ConfigError(problems)
    return AppSettings(
        proof_key=Secret(proof_key),
        state_dir=Path(state_dir),
        proof_max_age=max_age,
        **headers,
    )


def _positive_int(text: str, name: str, problems: list[str]) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        problems.append(f"{name} must be a positive number of seconds, got {text!r}")
    return value


_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _is_token(value: str) -> bool:
    """RFC 9110 §5.1: a field name is a ``token``."""
    return bool(value) and all(char in _TOKEN_CHARS for char in value)


__all__ = ["ENV_VARS", "AppSettings", "ConfigError", "load_app_settings"]
