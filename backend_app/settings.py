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
from urllib.parse import urlsplit

from starlette.datastructures import Secret

from gateway.errors import ConfigError
from gateway.paths import prefix_problem
from gateway.proof import HeaderNames

ENV_PREFIX = "MICROBLOG_"
_DEFAULT_NAMES = HeaderNames()
_HEADER_SETTINGS = ("header_user", "header_nickname", "header_email", "header_groups", "header_auth_time", "header_acr",
                    "header_proof")
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
    "header_auth_time": "MICROBLOG_HEADER_AUTH_TIME",
    "header_acr": "MICROBLOG_HEADER_ACR",
    "header_proof": "MICROBLOG_HEADER_PROOF",
    # The gateway's JWT instead of the proof (identity_assertion = "jwt" or "both" there).
    "jwks_url": "MICROBLOG_JWKS_URL",
    "issuer": "MICROBLOG_ISSUER",
    "header_assertion": "MICROBLOG_HEADER_ASSERTION",
    # The gateway's route_prefix: where its login, logout and account pages are.
    "gateway_prefix": "MICROBLOG_GATEWAY_PREFIX",
}


@dataclass(frozen=True, slots=True)
class AppSettings:
    """Every setting of the microblog.

    ``proof_key`` is the gateway's ``proof_key``: without it the app cannot tell
    the gateway's identity headers from forged ones, so it has no default
    (``None`` only when ``jwks_url`` is set: the gateway's JWT vouches instead).
    """

    proof_key: Secret | None
    state_dir: Path = Path("state")
    proof_max_age: int = 30
    header_user: str = _DEFAULT_NAMES.user
    header_nickname: str = _DEFAULT_NAMES.nickname
    header_email: str = _DEFAULT_NAMES.email
    header_groups: str = _DEFAULT_NAMES.groups
    header_auth_time: str = _DEFAULT_NAMES.auth_time
    header_acr: str = _DEFAULT_NAMES.acr
    header_proof: str = _DEFAULT_NAMES.proof
    # With jwks_url set the app believes the gateway's signed JWT (backend_app.assertion), not the proof:
    # keys from the JWKS, iss = issuer (the gateway's public URL), aud = the Host each request arrived with.
    jwks_url: str = ""
    issuer: str = ""
    header_assertion: str = "X-Gateway-Assertion"
    gateway_prefix: str = ""

    @property
    def sqlite_path(self) -> Path:
        return self.state_dir / "microblog.sqlite3"

    def header_names(self) -> HeaderNames:
        return HeaderNames(self.header_user, self.header_nickname, self.header_email, self.header_proof,
                           self.header_groups, self.header_auth_time, self.header_acr)


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
    jwt = {name: env.get(ENV_VARS[name], "").strip() for name in ("jwks_url", "issuer")}
    jwt["issuer"] = jwt["issuer"].rstrip("/")  # the gateway's iss is its public URL's origin, no slash
    problems.extend(_proof_problems(bool(proof_key), jwt["jwks_url"], jwt["issuer"]))
    header_assertion = env.get(ENV_VARS["header_assertion"], "X-Gateway-Assertion").strip()
    if not _is_token(header_assertion):
        problems.append(f"MICROBLOG_HEADER_ASSERTION must be an HTTP header name, got {header_assertion!r}")
    max_age = _positive_int(env.get(ENV_VARS["proof_max_age"], "30"), ENV_VARS["proof_max_age"], problems)
    headers = {name: env.get(ENV_VARS[name], default).strip() for name, default in _DEFAULT_HEADERS.items()}
    for name, value in headers.items():
        if not _is_token(value):
            problems.append(f"{ENV_VARS[name]} must be an HTTP header name such as X-Gateway-User, got {value!r}")
    if len({value.lower() for value in headers.values()}) != len(headers):
        problems.append("the MICROBLOG_HEADER_* names must differ")
    state_dir = env.get(ENV_VARS["state_dir"], "") or "state"
    gateway_prefix = env.get(ENV_VARS["gateway_prefix"], "").strip()
    prefix = prefix_problem(gateway_prefix)
    if prefix is not None:
        problems.append(f"MICROBLOG_GATEWAY_PREFIX: {prefix}")
    if problems:
        raise ConfigError(problems)
    return AppSettings(
        proof_key=Secret(proof_key) if proof_key else None,
        state_dir=Path(state_dir),
        proof_max_age=max_age,
        **headers,
        **jwt,
        header_assertion=header_assertion,
        gateway_prefix=gateway_prefix,
    )


def _proof_problems(proof_key: bool, jwks_url: str, issuer: str) -> list[str]:
    """One way of believing the gateway: its proof (proof_key) or its JWT (jwks_url and issuer)."""
    if not jwks_url:
        problems = [] if proof_key else ["MICROBLOG_PROOF_KEY is not set: use the gateway's proof_key"]
        return problems + (["MICROBLOG_ISSUER is only used with MICROBLOG_JWKS_URL"] if issuer else [])
    problems = []
    if proof_key:
        problems.append("MICROBLOG_PROOF_KEY and MICROBLOG_JWKS_URL are both set: the app checks one proof, pick one")
    if urlsplit(jwks_url).scheme not in ("http", "https") or not urlsplit(jwks_url).hostname:
        problems.append(f"MICROBLOG_JWKS_URL must be an http(s) URL such as"
                        f" https://example.com/.well-known/openid-gateway/jwks.json, got {jwks_url!r}")
    if not issuer:
        problems.append("MICROBLOG_ISSUER is not set: use the gateway's public_url (the JWT's iss)")
    return problems


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
