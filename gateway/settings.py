"""The gateway's configuration: one typed, frozen object built once at start-up.

Values come from a TOML file (``--config``) and are overridden key by key by
environment variables named ``GATEWAY_<KEY>`` (upper case). Validation reports
*every* problem at once in a :class:`~gateway.errors.ConfigError`, so an
operator fixes a config file in one pass.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
import secrets
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from starlette.datastructures import Secret

from gateway.errors import ConfigError
from gateway.openid.providers import allowlist_problems
from gateway.sessions import is_cookie_name

ENV_PREFIX = "GATEWAY_"
MIN_SECRET_LENGTH = 32

Mode = Literal["auth_request", "proxy"]


@dataclass(frozen=True, slots=True)
class Provider:
    """A one-click sign-in button on the login page."""

    name: str
    identifier: str


DEFAULT_PROVIDERS = (
    Provider("Steam", "https://steamcommunity.com/openid"),
    Provider("Ubuntu One", "https://login.ubuntu.com/"),
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the gateway. See the README's configuration reference."""

    # Where browsers reach the site; OpenID realm and return_to are built from it.
    public_url: str = "http://127.0.0.1:8080"
    # Shown on the login page.
    site_name: str = "OpenID Gateway"
    # itsdangerous key rotation: newest last; the newest signs, all verify.
    secret_keys: tuple[Secret, ...] = ()
    # Shared with the protected app, which checks the identity proof with it.
    proof_key: Secret | None = None
    dev_mode: bool = False
    state_dir: Path = Path("state")
    mode: Mode = "auth_request"
    upstream_url: str = ""

    # Serving.
    host: str = "127.0.0.1"
    port: int = 9000
    workers: int = 1
    loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    http: Literal["auto", "h11", "httptools"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = False

    # Cookies and sessions.
    session_cookie: str = "gw_session"
    remember_cookie: str = "gw_remember"
    cookie_domain: str = ""
    session_idle_timeout: int = 2 * 3600
    session_max_lifetime: int = 24 * 3600
    remember_lifetime: int = 30 * 86400
    remember_grace: int = 10
    revocation_refresh: float = 2.0

    # Sign-in.
    providers: tuple[Provider, ...] = DEFAULT_PROVIDERS
    require_email: bool = False
    next_allowed_hosts: tuple[str, ...] = ()
    provider_allowlist: tuple[str, ...] = ()

    # Trusted identity headers passed to the app.
    header_user: str = "X-Gateway-User"
    header_nickname: str = "X-Gateway-Nickname"
    header_email: str = "X-Gateway-Email"
    header_proof: str = "X-Gateway-Proof"
    proof_max_age: int = 30

    # Fetching provider documents (discovery, association, check_authentication).
    fetch_connect_timeout: float = 3.0
    fetch_read_timeout: float = 5.0
    fetch_max_bytes: int = 1024 * 1024
    fetch_max_redirects: int = 5
    allow_private_addresses: bool = False

    # Abuse limits.
    trusted_proxies: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    login_rate_limit: int = 20
    login_rate_window: int = 60
    failure_rate_limit: int = 10
    failure_rate_window: int = 300
    max_next_length: int = 2048
    max_header_bytes: int = 32 * 1024
    max_form_bytes: int = 16 * 1024

    # Proxy mode (mode 2).
    public_paths: tuple[str, ...] = ()
    upstream_connect_timeout: float = 3.0
    upstream_read_timeout: float = 60.0
    upstream_pool_size: int = 100
    # PEM file of the CAs that may sign an https upstream's certificate; "" = the system's.
    upstream_ca_bundle: str = ""
    # Forward the gateway's own cookies (session, remember-me, CSRF) to the app. They
    # sign a person in: only for an app that needs them (and keeps them out of its logs).
    pass_gateway_cookies: bool = False

    @property
    def https(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def public_origin(self) -> str:
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def sqlite_path(self) -> Path:
        return self.state_dir / "gateway.sqlite3"

    def secret_key_values(self) -> list[str]:
        return [str(key) for key in self.secret_keys]


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_HINTS = typing.get_type_hints(Settings)


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build and validate :class:`Settings` from a TOML file and the environment.

    Raises :class:`ConfigError` listing every problem found.
    """
    env = os.environ if environ is None else environ
    problems: list[str] = []
    raw: dict[str, Any] = {}
    if config_file is not None:
        raw.update(_read_toml(Path(config_file), problems))
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key not in _FIELDS:
            problems.append(f"unknown environment variable {name}")
            continue
        raw[key] = value
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _FIELDS:
            problems.append(f"unknown setting {key!r}")
            continue
        try:
            values[key] = _coerce(key, value)
        except (TypeError, ValueError) as exc:
            problems.append(f"{key}: {exc}")
    if problems:
        raise ConfigError(problems)
    settings = Settings(**values)
    settings = _fill_development_secrets(settings)
    problems.extend(validate(settings))
    if problems:
        raise ConfigError(problems)
    return settings


def validate(settings: Settings) -> list[str]:
    """Return every problem with ``settings``; an empty list means usable."""
    problems: list[str] = []
    parts = urlsplit(settings.public_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(
            f"public_url must be an absolute http(s) URL such as https://example.com, got {settings.public_url!r}"
        )
    elif parts.query or parts.fragment or parts.username or parts.path not in ("", "/"):
        problems.append("public_url must be an origin such as https://example.com: no path, query or user name")
    if not settings.secret_keys:
        problems.append("secret_keys is empty: set GATEWAY_SECRET_KEYS to a random string of 32+ characters")
    elif not settings.dev_mode:
        for index, key in enumerate(settings.secret_keys):
            if len(str(key)) < MIN_SECRET_LENGTH:
                problems.append(
                    f"secret_keys[{index}] is weak: use at least {MIN_SECRET_LENGTH} random characters"
                    " (python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
                )
    for value in (*settings.secret_key_values(), str(settings.proof_key or "")):
        if "REPLACE-ME" in value:
            problems.append("a key still says REPLACE-ME: generate real ones (python3 -c 'import secrets; "
                            "print(secrets.token_urlsafe(32))')")
            break
    if settings.proof_key is None:
        problems.append("proof_key is missing: set GATEWAY_PROOF_KEY (shared with the protected app)")
    elif not settings.dev_mode and len(str(settings.proof_key)) < MIN_SECRET_LENGTH:
        problems.append(f"proof_key is weak: use at least {MIN_SECRET_LENGTH} random characters")
    elif str(settings.proof_key) in settings.secret_key_values():
        problems.append("proof_key must differ from every secret key: the app holds it")
    if settings.mode == "proxy":
        up = urlsplit(settings.upstream_url)
        if up.scheme not in ("http", "https") or not up.hostname:
            problems.append("upstream_url must be an http(s) URL in proxy mode, e.g. http://127.0.0.1:8000")
        if settings.upstream_ca_bundle and not Path(settings.upstream_ca_bundle).is_file():
            problems.append(f"upstream_ca_bundle: {settings.upstream_ca_bundle!r} is not a readable PEM file")
    for name in ("session_idle_timeout", "session_max_lifetime", "remember_lifetime", "proof_max_age",
                 "max_header_bytes", "max_form_bytes", "max_next_length"):
        if getattr(settings, name) <= 0:
            problems.append(f"{name} must be a positive number")
    if settings.workers < 1:
        problems.append("workers must be at least 1")
    if not 0 < settings.port < 65536:
        problems.append("port must be between 1 and 65535")
    for cidr in settings.trusted_proxies:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            problems.append(f"trusted_proxies: {cidr!r} is not an address or network")
    for provider in settings.providers:
        if urlsplit(provider.identifier).scheme not in ("http", "https"):
            problems.append(f"providers: {provider.name!r} needs an http(s) identifier")
    for name in ("session_cookie", "remember_cookie"):
        if not is_cookie_name(getattr(settings, name)) or getattr(settings, name).startswith("gw_state_"):
            problems.append(f"{name} must be a cookie name of letters, digits and -_. (not gw_state_*)")
    headers = [settings.header_user, settings.header_nickname, settings.header_email, settings.header_proof]
    if len({h.lower() for h in headers}) != len(headers):
        problems.append("header_user, header_nickname, header_email and header_proof must differ")
    problems.extend(allowlist_problems(settings.provider_allowlist))
    for host in settings.next_allowed_hosts:
        if not re.fullmatch(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?", host):
            problems.append(f"next_allowed_hosts: {host!r} must be a host name or host:port, without a scheme")
    for path in settings.public_paths:
        if not path.startswith("/"):
            problems.append(f"public_paths: {path!r} must start with '/'")
    return problems


def _fill_development_secrets(settings: Settings) -> Settings:
    """In development mode, missing keys are generated (sessions end on restart)."""
    if not settings.dev_mode:
        return settings
    changes: dict[str, Any] = {}
    if not settings.secret_keys:
        changes["secret_keys"] = (Secret(secrets.token_urlsafe(32)),)
    if settings.proof_key is None:
        changes["proof_key"] = Secret(secrets.token_urlsafe(32))
    return dataclasses.replace(settings, **changes) if changes else settings


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        problems.append(f"config file {str(path)!r} does not exist")
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"config file {str(path)!r} is not valid TOML: {exc}")
    except OSError as exc:
        problems.append(f"config file {str(path)!r} cannot be read: {exc.strerror}")
    return {}


def _coerce(key: str, value: Any) -> Any:
    """Turn a TOML or environment value into the field's type."""
    hint = _HINTS[key]
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if key == "providers":
        return _providers(value)
    if key == "secret_keys":
        return tuple(Secret(str(v)) for v in _as_list(value))
    if key == "proof_key":
        return Secret(str(value))
    if origin is tuple:
        return tuple(str(v) for v in _as_list(value))
    if origin is Literal:
        if value not in args:
            raise ValueError(f"must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if hint is bool:
        return _as_bool(value)
    if hint is int:
        if isinstance(value, bool):
            raise TypeError("must be a whole number")
        return int(value)
    if hint is float:
        return float(value)
    if hint is Path:
        return Path(str(value))
    if hint is str:
        if not isinstance(value, str):
            raise TypeError("must be a string")
        return value
    raise TypeError(f"unsupported type {hint!r}")  # pragma: no cover - a new field without a coercion


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            parsed = json.loads(text)
            if not isinstance(parsed, list):
                raise ValueError("must be a list")
            return parsed
        return [item.strip() for item in text.split(",") if item.strip()]
    raise TypeError("must be a list")


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"must be true or false, got {value!r}")


def _providers(value: Any) -> tuple[Provider, ...]:
    items = json.loads(value) if isinstance(value, str) else value
    if not isinstance(items, list):
        raise TypeError("must be a list of {name, identifier} tables")
    result = []
    for item in items:
        if not isinstance(item, dict) or set(item) != {"name", "identifier"}:
            raise ValueError("each provider needs exactly 'name' and 'identifier'")
        result.append(Provider(str(item["name"]), str(item["identifier"])))
    return tuple(result)


__all__ = ["Mode", "Provider", "Settings", "load_settings", "validate"]
