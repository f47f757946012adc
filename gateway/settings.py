"""The gateway's configuration: one typed, frozen object built once at start-up.

Values come from a TOML file (``--config``) and are overridden key by key by
environment variables named ``GATEWAY_<KEY>`` (upper case). The secrets may come
from files instead (``secret_keys_file``, ``GATEWAY_PROOF_KEY_FILE``: the
container and systemd-credentials convention), so that they sit neither in the
environment, where ``ps e`` and ``/proc/<pid>/environ`` show them, nor in the
TOML file. Validation reports *every* problem at once in a
:class:`~gateway.errors.ConfigError`, so an operator fixes a config file in one
pass.
"""

from __future__ import annotations

import dataclasses
import difflib
import grp
import ipaddress
import json
import os
import re
import secrets
import shlex
import stat
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from starlette.datastructures import Secret

from gateway.errors import ConfigError
from gateway.fetch.addresses import is_forbidden_address, parse_host_address
from gateway.fetch.allowlist import allowlist_problems
from gateway.gate.access import AccessPolicy, Policy, Rule, RuleError, parse_groups, parse_rule
from gateway.gate.signing_keys import KeyFileError, load_signing_keys
from gateway.paths import prefix_problem
from gateway.signin.provider import DEFAULT_SCOPES, Provider
from gateway.state.sessions import is_cookie_name
from gateway.store import is_redis, location_problems, sqlite_path

ENV_PREFIX = "GATEWAY_"
MIN_SECRET_LENGTH = 32

Mode = Literal["auth_request", "proxy"]


DEFAULT_PROVIDERS = (
    Provider("Steam", "https://steamcommunity.com/openid"),
    Provider("Ubuntu One", "https://login.ubuntu.com/"),
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the gateway; docs/configuration.md explains each (tests/test_settings.py checks it)."""

    # Where browsers reach the site; OpenID realm and return_to are built from it.
    # load_settings requires it outside dev_mode; the default serves development.
    public_url: str = "http://127.0.0.1:8080"
    # Shown on the login page.
    site_name: str = "OpenID Gateway"
    # Where the gateway's pages live (oauth2-proxy's --proxy-prefix): "" = /login, /logout and /_gateway/...;
    # "/sso" = /sso/login, /sso/logout, /sso/callback ... so that the app keeps its own /login (gateway.paths).
    route_prefix: str = ""
    # The pages' look (gateway.pages.render): a directory of Jinja templates that replace ours by name
    # (login.html, error.html, base.html ...), a logo on this site (a path: the CSP allows images of this
    # origin only) and the accent colour (#rrggbb) for light and dark schemes.
    templates_dir: str = ""
    logo_url: str = ""
    brand_color: str = ""
    brand_color_dark: str = ""
    # itsdangerous key rotation: newest last; the newest signs, all verify.
    secret_keys: tuple[Secret, ...] = ()
    # Shared with the protected app, which checks the identity proof with it.
    proof_key: Secret | None = None
    dev_mode: bool = False
    state_dir: Path = Path("state")
    # Where sessions, revocations and sign-ins in flight live: "" = SQLite under state_dir, a path = SQLite
    # there, redis://[:password@]host:port/db, rediss://… or unix:///path?db=N = Redis (several instances).
    # Not in repr: the URL may hold a password (check-config shows it masked).
    store: str = field(default="", repr=False)
    mode: Mode = "auth_request"
    upstream_url: str = ""

    # Serving.
    host: str = "127.0.0.1"
    port: int = 9000
    # A Unix domain socket to listen on instead of host:port (nginx on the same machine: `upstream` to
    # `unix:`). The gateway makes it mode 0660, owned by its user and by uds_group ("" = its own group):
    # nginx's user connects through that group, nobody else may. Its peers count as trusted proxies (they
    # carry no address). "" = TCP on host:port.
    uds: str = ""
    uds_group: str = ""
    # uvicorn (httptools) caps neither header size nor header read time: a host
    # other than loopback needs this set, saying nginx (or another proxy that
    # does) is the only client.
    behind_proxy: bool = False
    workers: int = 1
    loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    http: Literal["auto", "h11", "httptools"] = "auto"
    # Log lines as text (the default: readable in a terminal) or one JSON object per line; every line
    # carries the request id. The audit log (gateway.observe.audit) goes to stderr with the rest, or to this
    # file (JSON).
    log_format: Literal["console", "json"] = "console"
    audit_log: str = "stderr"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = False
    # Prometheus metrics (gateway.observe.metrics) on a listener of their own, "host:port"; "" = off.
    metrics_address: str = ""

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
    # The login page's "Your OpenID" address field (any OpenID 2.0 provider, typed in): "auto" shows it with no
    # buttons or an OpenID 2.0 button among them, "show" always, "hide" never. Hidden, it is refused too: only
    # the configured buttons sign anyone in.
    openid_field: Literal["auto", "show", "hide"] = "auto"

    # Trusted identity headers passed to the app.
    header_user: str = "X-Gateway-User"
    header_nickname: str = "X-Gateway-Nickname"
    header_email: str = "X-Gateway-Email"
    header_groups: str = "X-Gateway-Groups"
    header_proof: str = "X-Gateway-Proof"
    # When and how the person last authenticated at their provider (step-up): epoch seconds, acr.
    header_auth_time: str = "X-Gateway-Auth-Time"
    header_acr: str = "X-Gateway-Acr"
    # What vouches for the identity: the HMAC proof (proof_key), a signed JWT (public keys at
    # /.well-known/openid-gateway/jwks.json; gateway.gate.assertion), or both.
    identity_assertion: Literal["proof", "jwt", "both"] = "proof"
    # The JWT signing keys (a JWK Set or a PEM file), the same file on every instance. Published
    # whenever set, so that apps can fetch them before identity_assertion turns the JWT on.
    assertion_keys_file: str = ""
    header_assertion: str = "X-Gateway-Assertion"

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
    # Sign-ins (OpenID exchanges, which wait on providers) running at once per process, on
    # threads of their own; beyond it a sign-in gets "try again in a moment" (503), the site carries on.
    max_signins_in_flight: int = 32
    max_next_length: int = 2048
    max_header_bytes: int = 32 * 1024
    max_form_bytes: int = 16 * 1024

    # Access rules (gateway.gate.access): the first matching rule decides, default_policy the rest.
    rules: tuple[Rule, ...] = ()
    default_policy: Policy = "signed_in"
    # Group name -> members (user identifiers, or e-mail addresses a provider vouched for).
    groups: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    # Path prefixes of an API: a refused request there gets JSON 401/403, never a redirect.
    api_paths: tuple[str, ...] = ()
    # Path prefixes anyone may see: shorthand for `public` rules placed before the others.
    public_paths: tuple[str, ...] = ()
    # Apps may turn a POST into another method (_method, X-HTTP-Method-Override: Rails, Laravel,
    # Symfony, Express's method-override): judge a POST also as every method the rules name.
    method_override: bool = True

    # Proxy mode (mode 2).
    upstream_connect_timeout: float = 3.0
    upstream_read_timeout: float = 60.0
    upstream_pool_size: int = 100
    # PEM file of the CAs that may sign an https upstream's certificate; "" = the system's.
    upstream_ca_bundle: str = ""
    # Forward the gateway's own cookies (session, remember-me, CSRF) to the app. They
    # sign a person in: only for an app that needs them (and keeps them out of its logs).
    pass_gateway_cookies: bool = False
    # Forward a bearer token that authenticated a request (Authorization) to the app. Off: the app gets the
    # identity headers and proof instead; the token is a credential for every service of its audience, and the
    # app (or its logs) could replay it elsewhere. Mode 1 (nginx) and mode 2; Caddy/Traefik pass it regardless.
    pass_bearer_token: bool = False

    @property
    def https(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def typed_openid(self) -> bool:
        """Whether a typed-in OpenID address is accepted (and its field shown): ``openid_field``."""
        if self.openid_field != "auto":
            return self.openid_field == "show"
        return not self.providers or any(p.type == "openid2" for p in self.providers)

    @property
    def public_origin(self) -> str:
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file when the store is SQLite (the default: ``state_dir/gateway.sqlite3``)."""
        return sqlite_path(self.store, self.state_dir)

    def secret_key_values(self) -> list[str]:
        return [str(key) for key in self.secret_keys]

    def access_policy(self) -> AccessPolicy:
        """The access decision: ``public_paths`` as public rules first, then ``rules``, then ``default_policy``."""
        public = tuple(Rule(f"public_paths[{i}]", "public", paths=(path,)) for i, path in enumerate(self.public_paths))
        return AccessPolicy(public + self.rules, self.default_policy, self.groups, self.method_override)


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_HINTS = typing.get_type_hints(Settings)
# Never echoed back in an error message.
_SECRET_FIELDS = frozenset({"secret_keys", "proof_key", "store"})
# Each may be given as <key>_file (GATEWAY_<KEY>_FILE): the path of a file holding the value, one value per
# file, secret_keys one key per line (newest last). A provider's client_secret has client_secret_file.
SECRET_FILE_SETTINGS = ("secret_keys", "proof_key", "store")
FILE_SUFFIX = "_file"
_KNOWN_KEYS = (*_FIELDS, *(key + FILE_SUFFIX for key in SECRET_FILE_SETTINGS))
# A secret file is a few lines; a bigger one is a wrong path (a log, a device), not read whole.
MAX_SECRET_FILE_BYTES = 64 * 1024

# Kubernetes gives every pod the address of each Service of its namespace in variables named after the
# Service (docker links' format; https://kubernetes.io/docs/concepts/services-networking/service/
# #environment-variables): a Service "gateway", or "gateway-redis", brings GATEWAY_SERVICE_HOST,
# GATEWAY_SERVICE_PORT, GATEWAY_SERVICE_PORT_<PORT NAME>, GATEWAY_PORT=tcp://10.0.0.7:9000,
# GATEWAY_PORT_9000_TCP and GATEWAY_PORT_9000_TCP_ADDR/_PORT/_PROTO (GATEWAY_REDIS_... for the other).
# Those exact shapes are not settings and are ignored; any other unknown GATEWAY_* stays an error.
_SERVICE_LINK_NAME = re.compile(r"GATEWAY_(?:[A-Z0-9_]+_)?(?:SERVICE_HOST|SERVICE_PORT(?:_[A-Z0-9_]+)?"
                                r"|PORT_[0-9]+_(?:TCP|UDP|SCTP)(?:_ADDR|_PORT|_PROTO)?)")
# GATEWAY_PORT is also the port setting: a link when its value is an address, the setting when a number.
_SERVICE_LINK_ADDRESS = re.compile(r"GATEWAY_(?:[A-Z0-9_]+_)?PORT")
_SERVICE_LINK_VALUE = re.compile(r"(?:tcp|udp|sctp)://[^\s/]+:[0-9]+")

Source = Literal["file", "env"]


class _BadValue(ValueError):
    """A value of the wrong type; the message completes "<key> must be ..."."""


class _BadFile(ValueError):
    """A secret file that cannot be used; the message is the whole problem, naming the setting and the path."""


def is_service_link(name: str, value: str) -> bool:
    """Whether the environment variable ``name`` is one Kubernetes made for a Service, not a setting."""
    if _SERVICE_LINK_NAME.fullmatch(name):
        return True
    return bool(_SERVICE_LINK_ADDRESS.fullmatch(name) and _SERVICE_LINK_VALUE.fullmatch(value.strip()))


def open_to_others(label: str, path: str, mode: int) -> str | None:
    """The problem with a secret or key file every user of the machine may read or change, or None.

    ``mode`` is the file's ``st_mode``. Group access is left to the operator
    (``root:openid-gateway`` 0640 is the usual way to let the service read a
    file it must not rewrite); systemd's credentials are 0400.
    """
    if not mode & 0o007:
        return None
    return (f"{label} {path!r} is open to every user of this machine (mode {stat.S_IMODE(mode):04o}):"
            f" chmod o-rwx {shlex.quote(path)}")


def read_secret_file(label: str, path: Any) -> str:
    """The secret in the file at ``path``, surrounding whitespace (its trailing newline) stripped.

    Raises :class:`_BadFile` naming ``label`` and the path, never the contents: a
    missing or unreadable file, one open to other users, one that is empty.
    """
    if not isinstance(path, str) or not path.strip():
        raise _BadFile(f"{label} must be the path of a file (a string)")
    try:
        with open(path, "rb") as fh:  # one open: the mode checked is the mode of the file read
            mode = os.fstat(fh.fileno()).st_mode
            data = fh.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise _BadFile(f"{label} {path!r} cannot be read: {exc.strerror}") from None
    problem = open_to_others(label, path, mode)
    if problem:
        raise _BadFile(problem)
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise _BadFile(f"{label} {path!r} is larger than {MAX_SECRET_FILE_BYTES} bytes: not a secret file")
    try:
        text = data.decode().strip()
    except UnicodeDecodeError:
        raise _BadFile(f"{label} {path!r} is not UTF-8 text") from None
    if not text:
        raise _BadFile(f"{label} {path!r} is empty")
    return text


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build and validate :class:`Settings` from a TOML file and the environment.

    Raises :class:`ConfigError` listing every problem found: unknown keys,
    values of the wrong type and invalid values together, so one run of
    ``check-config`` shows everything to fix.
    """
    env = os.environ if environ is None else environ
    problems: list[str] = []
    values: dict[str, Any] = {}
    failed: set[str] = set()
    tables: list[tuple[Source, dict[str, Any]]] = []
    if config_file is not None:
        tables.append(("file", _read_toml(Path(config_file), problems)))
    tables.append(("env", {name[len(ENV_PREFIX):].lower(): value for name, value in env.items()
                           if name.startswith(ENV_PREFIX) and name != ENV_PREFIX + "CONFIG"
                           and not is_service_link(name, value)}))
    for source, table in tables:  # the environment last: it overrides the file key by key
        for key, value in _with_secret_files(table, source, values, failed, problems).items():
            _take(key, value, source, values, failed, problems)
    if "public_url" not in values and "public_url" not in failed and not values.get("dev_mode", False):
        problems.append("public_url is missing: set it to the address browsers use, e.g. https://example.com")
    settings = _fill_development_secrets(Settings(**values))
    # A key whose value was refused keeps its default: do not report the default's problems too.
    problems.extend(p for p in validate(settings) if _subject(p) not in failed)
    if problems:
        raise ConfigError(problems)
    return settings


def _with_secret_files(table: dict[str, Any], source: Source, values: dict[str, Any], failed: set[str],
                       problems: list[str]) -> dict[str, Any]:
    """``table`` with each ``<key>_file`` replaced by ``<key>`` and the file's contents.

    Both in one source is an error; across sources the environment wins, as
    for every key (``GATEWAY_SECRET_KEYS_FILE`` overrides the TOML file's
    ``secret_keys``). A file that cannot be used refuses the setting: it keeps
    no value from the TOML file either.
    """
    taken = dict(table)
    for key in SECRET_FILE_SETTINGS:
        name = key + FILE_SUFFIX
        if name not in taken:
            continue
        path = taken.pop(name)
        try:
            if key in taken:
                raise _BadFile(f"give {_label(key, source)} or {_label(name, source)}, not both")
            text = read_secret_file(_label(name, source), path)
        except _BadFile as exc:
            taken.pop(key, None)
            values.pop(key, None)
            failed.add(key)
            problems.append(str(exc))
            continue
        taken[key] = [line.strip() for line in text.splitlines() if line.strip()] if key == "secret_keys" else text
    return taken


def _take(key: str, value: Any, source: Source, values: dict[str, Any], failed: set[str],
          problems: list[str]) -> None:
    """Coerce one TOML key or ``GATEWAY_*`` variable into ``values``, or record why not."""
    label = _label(key, source)
    if key not in _FIELDS:
        what = "setting" if source == "file" else "environment variable"
        near = difflib.get_close_matches(key, _KNOWN_KEYS, n=1, cutoff=0.75)
        hint = f" (did you mean {_label(near[0], source)}?)" if near else ""
        problems.append(f"unknown {what} {label}{hint}")
        return
    try:
        values[key] = _coerce(key, value, source)
    except _BadValue as exc:
        failed.add(key)
        values.pop(key, None)
        problems.append(f"{label} must be {exc}")
    except RuleError as exc:  # names the rule itself: "rules[2] (admin): policy must be ..."
        failed.add(key)
        values.pop(key, None)
        problems.append(str(exc))


def _label(key: str, source: Source) -> str:
    return key if source == "file" else ENV_PREFIX + key.upper()


def _subject(problem: str) -> str:
    """The setting a validation message is about: its first word ("secret_keys[0] is weak" -> secret_keys)."""
    match = re.match(r"[a-z_]+", problem)
    return match.group(0) if match else ""


def _assertion_problems(settings: Settings) -> list[str]:
    """The JWT assertion's settings: a readable, usable key file whenever the JWT is on or keys are named."""
    problems = []
    if settings.identity_assertion != "proof" and not settings.assertion_keys_file:
        problems.append(f"assertion_keys_file is missing: identity_assertion = {settings.identity_assertion!r}"
                        " signs with it (make one: openid-gateway keys generate FILE)")
    elif settings.assertion_keys_file:
        try:
            load_signing_keys(settings.assertion_keys_file)
        except KeyFileError as exc:
            problems.append(str(exc))
        else:
            problem = open_to_others("assertion_keys_file", settings.assertion_keys_file,
                                     Path(settings.assertion_keys_file).stat().st_mode)
            problems.extend([problem] if problem else [])
    others = identity_header_settings(settings)
    if settings.header_assertion.lower() in {name.lower() for name in others}:
        problems.append(f"header_assertion {settings.header_assertion!r} must differ from the other identity headers")
    return problems


def identity_header_settings(settings: Settings) -> tuple[str, ...]:
    """The configured identity and proof header names (the JWT assertion's is checked against them)."""
    return (settings.header_user, settings.header_nickname, settings.header_email, settings.header_groups,
            settings.header_auth_time, settings.header_acr, settings.header_proof)


def _store_key_file_problems(store: str) -> list[str]:
    """The Redis client's TLS private key (``ssl_keyfile=`` in the store URL) is a key file like the others."""
    if not is_redis(store):
        return []
    try:
        query = parse_qsl(urlsplit(store.strip()).query)
    except ValueError:  # location_problems reports the URL
        return []
    problems = []
    for name, path in query:
        if name == "ssl_keyfile":
            try:
                mode = Path(path).stat().st_mode
            except OSError as exc:
                problems.append(f"store: ssl_keyfile {path!r} cannot be read: {exc.strerror}")
                continue
            problem = open_to_others("store: ssl_keyfile", path, mode)
            problems.extend([problem] if problem else [])
    return problems


def validate(settings: Settings) -> list[str]:
    """Return every problem with ``settings``; an empty list means usable."""
    problems: list[str] = location_problems(settings.store)
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
    for name in ("session_idle_timeout", "session_max_lifetime", "remember_lifetime",
                 "max_header_bytes", "max_form_bytes", "max_next_length", "max_signins_in_flight"):
        if getattr(settings, name) <= 0:
            problems.append(f"{name} must be a positive number")
    if settings.workers < 1:
        problems.append("workers must be at least 1")
    if not 0 < settings.port < 65536:
        problems.append("port must be between 1 and 65535")
    problems.extend(_uds_problems(settings.uds, settings.uds_group))
    upstream = urlsplit(settings.upstream_url)
    if settings.mode == "proxy" and upstream.hostname and (
            upstream.path not in ("", "/") or upstream.query or upstream.fragment or upstream.username is not None):
        problems.append(
            f"upstream_url must be an origin such as http://127.0.0.1:8000, got {settings.upstream_url!r}:"
            " the app receives the path the browser asked for, which is what the identity proof signs,"
            " so a path, query or user name here cannot be added"
        )
    if not settings.behind_proxy and not is_loopback_host(settings.host):
        problems.append(
            f"host = {settings.host!r} is not a loopback address: without nginx in front the gateway has no limit"
            " on request header size or header read time (slow or huge headers tie it up); listen on 127.0.0.1,"
            " or set behind_proxy = true if nginx (or another proxy that sets those limits) is its only client"
        )
    problems.extend(_metrics_address_problems(settings))
    prefix = prefix_problem(settings.route_prefix)
    if prefix is not None:
        problems.append(prefix)
    problems.extend(_branding_problems(settings))
    for cidr in settings.trusted_proxies:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            problems.append(f"trusted_proxies: {cidr!r} is not an address or network")
    if settings.audit_log != "stderr" and not Path(settings.audit_log).parent.is_dir():
        problems.append(f"audit_log {settings.audit_log!r}: its directory does not exist (or say \"stderr\")")
    for provider in settings.providers:
        if urlsplit(provider.identifier).scheme not in ("http", "https"):
            problems.append(f"providers: {provider.name!r} needs an http(s) identifier")
    for name in ("session_cookie", "remember_cookie"):
        if not is_cookie_name(getattr(settings, name)) or getattr(settings, name).startswith("gw_state_"):
            problems.append(f"{name} must be a cookie name of letters, digits and -_. (not gw_state_*)")
    headers = identity_header_settings(settings)
    if len({h.lower() for h in headers}) != len(headers):
        problems.append("header_user, header_nickname, header_email, header_groups, header_auth_time, header_acr "
                        "and header_proof must differ")
    problems.extend(_assertion_problems(settings))
    problems.extend(_store_key_file_problems(settings.store))
    problems.extend(allowlist_problems(settings.provider_allowlist))
    for host in settings.next_allowed_hosts:
        if not re.fullmatch(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?", host):
            problems.append(f"next_allowed_hosts: {host!r} must be a host name or host:port, without a scheme")
    for setting in ("public_paths", "api_paths"):
        for path in getattr(settings, setting):
            if not path.startswith("/"):
                problems.append(f"{setting}: {path!r} must start with '/'")
    problems.extend(_bearer_problems(settings))
    if settings.default_policy == "allow":
        problems.append("default_policy must be 'signed_in', 'public' or 'deny': 'allow' needs subjects,"
                        " which only a rule has")
    known_groups = set(settings.groups)
    for rule in settings.rules:
        for subject in rule.subjects:
            if subject.kind == "group" and subject.value not in known_groups:
                problems.append(f"rules: {rule.name!r} names group {subject.value!r}, which [groups] does not define"
                                " (a group no one is in lets no one in: define it, or remove the subject)")
    return problems


def _branding_problems(settings: Settings) -> list[str]:
    """The look: an existing templates directory, a logo on this site, colours the stylesheet can carry."""
    problems = []
    if settings.templates_dir and not Path(settings.templates_dir).is_dir():
        problems.append(f"templates_dir {settings.templates_dir!r} is not a directory")
    logo = settings.logo_url
    if logo and (not logo.startswith("/") or logo.startswith("//") or not re.fullmatch(r"[A-Za-z0-9/._~%-]+", logo)):
        problems.append(f"logo_url must be a path on this site such as /static/logo.svg (the pages' CSP allows"
                        f" images of this origin only), got {logo!r}")
    for name in ("brand_color", "brand_color_dark"):
        value = getattr(settings, name)
        if value and not re.fullmatch(r"#(?:[0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})", value):
            problems.append(f"{name} must be a colour such as #2f5fd0, got {value!r}")
    return problems
def _bearer_problems(settings: Settings) -> list[str]:
    """Rules that accept bearer tokens need a provider whose tokens are accepted (its bearer_audiences); opaque
    tokens go to one provider's introspection at most (a token names no issuer: sent to several, one provider's
    tokens would be shown to the others)."""
    problems = [f"providers: {p.name!r} has bearer_introspection = true without bearer_audiences (an introspected"
                " token's aud, or client_id, must be one of them)"
                for p in settings.providers if p.bearer_introspection and not p.bearer_audiences]
    introspecting = [p.name for p in settings.providers if p.bearer_introspection]
    if len(introspecting) > 1:
        problems.append(f"providers: bearer_introspection is set on {', '.join(map(repr, introspecting))}: an opaque"
                        " token names no issuer, and sending it to several providers shows each the others' tokens;"
                        " set it on one")
    if not any(p.bearer_audiences for p in settings.providers):
        problems.extend(f"rules: {rule.name!r} has bearer = true, but no oidc provider sets bearer_audiences (whose"
                        " tokens, for which audience?)" for rule in settings.rules if rule.bearer)
    return problems


def access_summary(settings: Settings) -> str:
    """One line for ``check-config``: how many rules, and what decides everything else."""
    public = f" (+{len(settings.public_paths)} public_paths)" if settings.public_paths else ""
    default = {"signed_in": "anyone signed in may reach every other path",
               "public": "everyone, signed in or not, may reach every other path",
               "allow": "", "deny": "nobody may reach any other path"}.get(settings.default_policy, "")
    return (f"access: {len(settings.rules)} rule(s){public}; default_policy = {settings.default_policy!r}:"
            f" {default}")


def _metrics_address_problems(settings: Settings) -> list[str]:
    """The metrics listener must parse and never share the public port (metrics are for the operator)."""
    if not settings.metrics_address:
        return []
    host, sep, port = settings.metrics_address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return [f"metrics_address must be host:port, e.g. 127.0.0.1:9100, got {settings.metrics_address!r}"]
    wildcard = {"0.0.0.0", "::"}  # noqa: S104 (compared with, never bound)
    if int(port) == settings.port and (host == settings.host or host in wildcard or settings.host in wildcard):
        return [f"metrics_address {settings.metrics_address!r} is the public listener ({settings.host}:"
                f"{settings.port}): give the metrics a port of their own, reachable by Prometheus only"]
    return []


UDS_MAX_PATH = 107


def _uds_problems(uds: str, group: str) -> list[str]:
    """A Unix socket path must be absolute, in an existing directory, and short enough for ``sun_path``;
    ``uds_group`` must name a group of this machine (whether the gateway may use it shows when it starts)."""
    if not uds:
        return []  # uds_group without uds: TCP (the instance template's GATEWAY_UDS= over a TOML that sets both)
    if group and not _group_exists(group):
        return [f"uds_group {group!r} is not a group on this machine (nginx's workers' group, e.g. www-data)"]
    path = Path(uds)
    if not path.is_absolute():
        return [f"uds {uds!r} must be an absolute path, e.g. /run/openid-gateway/gateway.sock"]
    if len(os.fsencode(uds)) > UDS_MAX_PATH:  # sun_path is 108 bytes on Linux, with its final NUL
        return [f"uds {uds!r} is longer than {UDS_MAX_PATH} bytes: Unix sockets cannot have such a path"]
    if not path.parent.is_dir():
        return [f"uds {uds!r}: directory {str(path.parent)!r} does not exist (systemd: RuntimeDirectory=)"]
    if path.exists() and not path.is_socket():
        return [f"uds {uds!r} exists and is not a socket: it would be replaced; remove it or choose another path"]
    return []


def _group_exists(group: str) -> bool:
    try:
        grp.getgrgid(int(group)) if group.isdigit() else grp.getgrnam(group)
    except KeyError:
        return False
    return True


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) can only be reached from this machine."""
    if _is_localhost_name(host):
        return True
    address = parse_host_address(host)
    return address is not None and address.is_loopback


def _is_localhost_name(host: str) -> bool:
    """``localhost`` and ``*.localhost`` always mean loopback (RFC 6761 section 6.3)."""
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def provider_address_warnings(settings: Settings) -> list[str]:
    """Provider buttons the SSRF guard will refuse: on loopback or private addresses, the setting off.

    Only literal addresses and ``localhost`` names are judged, without DNS: the
    answer a resolver gives here (at deploy time, possibly on another network)
    need not be the one the gateway gets at sign-in, where every address is
    checked anyway, and a check must not hang on a slow resolver.
    """
    if settings.allow_private_addresses:
        return []
    found = []
    for provider in settings.providers:
        host = urlsplit(provider.identifier).hostname or ""
        address = parse_host_address(host)
        if _is_localhost_name(host) or (address is not None and is_forbidden_address(address)):
            found.append(
                f"provider {provider.name!r} ({provider.identifier}) is on a loopback or private address and"
                " allow_private_addresses = false: its button will fail; set allow_private_addresses = true"
                " (development only) or remove the provider"
            )
    return found


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


def _coerce(key: str, value: Any, source: Source) -> Any:
    """Turn a TOML or environment value into the field's type, or raise :class:`_BadValue`.

    TOML values must have the TOML type (a string is not a list, ``"9000"`` is
    not a number); environment variables are strings, parsed as documented
    (lists comma-separated or JSON, booleans true/false/1/0/yes/no/on/off).
    """
    hint = _HINTS[key]
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    shown = "" if key in _SECRET_FIELDS else f", got {value!r}"
    if key == "providers":
        return _providers(value, source)
    if key == "rules":
        tables = _json_env(value, source, "a list of [[rules]] tables")
        if not isinstance(tables, list):
            raise _BadValue("a list of [[rules]] tables (JSON objects in the environment)")
        return tuple(parse_rule(index, table) for index, table in enumerate(tables))
    if key == "groups":
        return parse_groups(_json_env(value, source, "a [groups] table of name = [members]"))
    if key == "secret_keys":
        return tuple(Secret(v) for v in _strings(value, source, 'a list of strings, e.g. ["key1", "key2"]'))
    if origin is tuple:
        return tuple(_strings(value, source, 'a list of strings, e.g. ["a", "b"]'))
    if key == "proof_key":
        if not isinstance(value, str):
            raise _BadValue(f"a string, got a {_toml_type(value)}")
        return Secret(value)
    if origin is Literal:
        if value not in args:
            near = difflib.get_close_matches(str(value), [str(a) for a in args], n=1, cutoff=0.6)
            hint_text = f" (did you mean {near[0]!r}?)" if near else ""
            raise _BadValue(f"one of {', '.join(map(repr, args))}{shown}{hint_text}")
        return value
    if hint is bool:
        return _as_bool(value, source, shown)
    if hint is int:
        return _as_number(value, source, int, f"a whole number{shown}")
    if hint is float:
        return _as_number(value, source, float, f"a number{shown}")
    if not isinstance(value, str):
        raise _BadValue(f"a string{shown}")
    return Path(value) if hint is Path else value


def _json_env(value: Any, source: Source, expected: str) -> Any:
    """A structured value: as is from TOML, parsed as JSON from the environment."""
    if source == "env" and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise _BadValue(f"{expected} (JSON in the environment)") from None
    return value


def _toml_type(value: Any) -> str:
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "list", dict: "table"}
    return names.get(type(value), type(value).__name__)


def _strings(value: Any, source: Source, expected: str) -> list[str]:
    """A list of strings: a TOML array, or (environment) comma-separated or a JSON array."""
    if source == "env" and isinstance(value, str):
        text = value.strip()
        if not text.startswith("["):
            return [item.strip() for item in text.split(",") if item.strip()]
        try:
            value = json.loads(text)
        except ValueError:
            raise _BadValue(f"{expected} (the value starts with '[' but is not JSON)") from None
    if not isinstance(value, list):
        raise _BadValue(f"{expected}, got a {_toml_type(value)}")
    for item in value:
        if not isinstance(item, str):
            raise _BadValue(f"{expected}, got a list with a {_toml_type(item)} in it")
    return value


def _as_number(value: Any, source: Source, kind: type[int] | type[float], expected: str) -> Any:
    if isinstance(value, bool):
        raise _BadValue(expected)
    if isinstance(value, int) or (kind is float and isinstance(value, float)):
        return kind(value)
    if isinstance(value, str):
        try:
            number = kind(value.strip())
        except ValueError:
            raise _BadValue(expected) from None
        if number != number or abs(number) == float("inf"):  # NaN, infinite
            raise _BadValue(expected)
        if source == "file":
            raise _BadValue(expected + " (a TOML string: write the number without quotes)")
        return number
    raise _BadValue(expected)


def _as_bool(value: Any, source: Source, shown: str) -> bool:
    if isinstance(value, bool):
        return value
    if source == "env":
        text = value.strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
    raise _BadValue(f"true or false{shown}")


def _providers(value: Any, source: Source) -> tuple[Provider, ...]:
    expected = "a list of {name, identifier} tables"
    if source == "env" and isinstance(value, str):
        expected = 'a JSON list of {"name": ..., "identifier": ...} objects'
        try:
            value = json.loads(value)
        except ValueError:
            raise _BadValue(expected) from None
    if not isinstance(value, list):
        raise _BadValue(expected)
    result = [_provider(item, expected) for item in value]
    names = [p.name for p in result]
    if len(set(names)) != len(names):
        raise _BadValue(f"provider names must differ, got {names!r}")
    return tuple(result)


# Presets for common OpenID Connect providers: only the client id and secret are needed.
OIDC_PRESETS = {
    "google": ("Google", "https://accounts.google.com"),
    "microsoft": ("Microsoft", "https://login.microsoftonline.com/{tenant}/v2.0"),
    "gitlab": ("GitLab", "https://gitlab.com"),
}
_OIDC_KEYS = {"type", "name", "issuer", "client_id", "client_secret", "client_secret_file", "scopes", "groups_claim",
              "preset", "tenant", "logout_at_provider", "openid2_migration", "bearer_audiences", "bearer_clients",
              "bearer_introspection", "bearer_introspection_cache"}
_OIDC_LISTS = ("bearer_audiences", "bearer_clients")  # lists of names without spaces, held space-separated
_OIDC_BOOLEANS = ("logout_at_provider", "openid2_migration", "bearer_introspection")
# Seconds an introspection answer is used at most: introspection exists so that a revocation at the provider is seen.
INTROSPECTION_CACHE = 60
MAX_INTROSPECTION_CACHE = 300


def _shown(item: Any) -> str:
    """A provider table for a message, its secret left out."""
    if isinstance(item, dict):
        return repr({k: ("…" if k == "client_secret" else v) for k, v in item.items()})
    return repr(item)


def _provider(item: Any, expected: str) -> Provider:
    if isinstance(item, dict):  # the boolean keys
        item = {**item, **{k: "true" if item[k] else "false" for k in _OIDC_BOOLEANS if isinstance(item.get(k), bool)}}
    if isinstance(item, dict) and item.get("type") == "oidc":  # the list-valued keys, as one string each
        item = {**item, **{k: " ".join(str(v) for v in item[k]) for k in _OIDC_LISTS if isinstance(item.get(k), list)}}
    if isinstance(item, dict) and isinstance(item.get("bearer_introspection_cache"), int) \
            and not isinstance(item["bearer_introspection_cache"], bool):  # the one number, as a string
        item = {**item, "bearer_introspection_cache": str(item["bearer_introspection_cache"])}
    if isinstance(item, dict) and item.get("type") == "oauth2" and isinstance(item.get("groups_from"), list):
        item = {**item, "groups_from": ",".join(str(v) for v in item["groups_from"])}  # the one list-valued key
    if not isinstance(item, dict) or not all(isinstance(v, str) for v in item.values()):
        raise _BadValue(f"{expected}, each a table of strings, got {_shown(item)}")
    kind = item.get("type", "openid2")
    if kind == "openid2":
        if set(item) - {"type"} != {"name", "identifier"}:
            raise _BadValue(f"{expected}, each with exactly a 'name' and an 'identifier' string, got {_shown(item)}")
        return Provider(item["name"], item["identifier"])
    if kind == "oauth2":
        return _oauth2_provider(item)
    if kind != "oidc":
        raise _BadValue(f"provider type must be \"openid2\", \"oidc\" or \"oauth2\", got {kind!r}")
    return _oidc_provider(item)


def _oidc_provider(item: dict[str, str]) -> Provider:
    """An ``oidc`` provider table; its secret never appears in a message."""
    label = repr(item.get("name") or item.get("preset") or "oidc")
    unknown = set(item) - _OIDC_KEYS
    if unknown:
        raise _BadValue(f"oidc provider {label}: unknown key(s) {', '.join(sorted(unknown))}")
    name, issuer = item.get("name", ""), item.get("issuer", "")
    preset = item.get("preset")
    if preset is not None:
        if preset not in OIDC_PRESETS:
            raise _BadValue(f"oidc provider {label}: preset must be one of {', '.join(OIDC_PRESETS)}, got {preset!r}")
        preset_name, preset_issuer = OIDC_PRESETS[preset]
        if preset == "microsoft":
            tenant = item.get("tenant", "")
            if not re.fullmatch(r"[A-Za-z0-9.-]+", tenant) or tenant in ("common", "organizations", "consumers"):
                raise _BadValue(f"oidc provider {label}: preset microsoft needs tenant = your directory (tenant) id"
                                " or domain (not common/organizations/consumers: their tokens name each tenant)")
            preset_issuer = preset_issuer.format(tenant=tenant)
        name, issuer = name or preset_name, issuer or preset_issuer
    if "tenant" in item and preset != "microsoft":
        raise _BadValue(f"oidc provider {label}: tenant goes with preset = \"microsoft\"")
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment or "#" in issuer:
        raise _BadValue(f"oidc provider {label}: issuer must be an http(s) URL without query or fragment,"
                        f" got {issuer!r}")
    secret = _client_secret(item, f"oidc provider {label}")
    if not name or not item.get("client_id") or not secret:
        raise _BadValue(f"oidc provider {label}: name (or preset), client_id and client_secret"
                        " (or client_secret_file) are required")
    scopes = item.get("scopes", DEFAULT_SCOPES)
    if "openid" not in scopes.split():
        raise _BadValue(f"oidc provider {label}: scopes must include openid, got {scopes!r}")
    for key in _OIDC_BOOLEANS:
        if item.get(key, "false") not in ("true", "false"):
            raise _BadValue(f"oidc provider {label}: {key} must be true or false, got {item[key]!r}")
    cache = item.get("bearer_introspection_cache", str(INTROSPECTION_CACHE))
    if not cache.isdigit() or not 1 <= int(cache) <= MAX_INTROSPECTION_CACHE:
        raise _BadValue(f"oidc provider {label}: bearer_introspection_cache must be 1 to {MAX_INTROSPECTION_CACHE}"
                        f" seconds (a revocation at the provider is seen only after it), got {cache!r}")
    return Provider(name, issuer, "oidc", item["client_id"], Secret(secret), scopes, item.get("groups_claim", ""),
                    logout_at_provider=item.get("logout_at_provider") == "true",
                    openid2_migration=item.get("openid2_migration") == "true",
                    bearer_audiences=tuple(item.get("bearer_audiences", "").split()),
                    bearer_clients=tuple(item.get("bearer_clients", "").split()),
                    bearer_introspection=item.get("bearer_introspection") == "true",
                    bearer_introspection_cache=int(cache))


def _client_secret(item: dict[str, str], subject: str) -> str:
    """``client_secret``, or the contents of ``client_secret_file``; never both."""
    secret = item.get("client_secret", "")
    if "client_secret_file" in item:
        if secret:
            raise _BadValue(f"{subject}: give client_secret or client_secret_file, not both")
        try:
            secret = read_secret_file("client_secret_file", item["client_secret_file"])
        except _BadFile as exc:
            raise _BadValue(f"{subject}: {exc}") from None
    return secret


# OAuth 2.0 presets: (button name, authorize_url, token_url, api_url); GitHub Enterprise overrides the URLs.
OAUTH2_PRESETS = {
    "github": ("GitHub", "https://github.com/login/oauth/authorize", "https://github.com/login/oauth/access_token",
               "https://api.github.com"),
}
_OAUTH2_KEYS = {"type", "name", "preset", "client_id", "client_secret", "client_secret_file", "authorize_url",
                "token_url", "api_url", "groups_from"}
GROUP_SOURCES = ("orgs", "teams")


def _oauth2_provider(item: dict[str, str]) -> Provider:
    """An ``oauth2`` provider table (``preset = "github"``); its secret never appears in a message."""
    label = repr(item.get("name") or item.get("preset") or "oauth2")
    subject = f"oauth2 provider {label}"
    unknown = set(item) - _OAUTH2_KEYS
    if unknown:
        raise _BadValue(f"{subject}: unknown key(s) {', '.join(sorted(unknown))}")
    preset = item.get("preset")
    if preset not in OAUTH2_PRESETS:
        raise _BadValue(f"{subject}: preset must be one of {', '.join(OAUTH2_PRESETS)}, got {preset!r}")
    name, authorize_url, token_url, api_url = OAUTH2_PRESETS[preset]
    urls = [item.get("authorize_url", authorize_url), item.get("token_url", token_url),
            item.get("api_url", api_url).rstrip("/")]
    for key, url in zip(("authorize_url", "token_url", "api_url"), urls, strict=True):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment or "#" in url:
            raise _BadValue(f"{subject}: {key} must be an http(s) URL without fragment, got {url!r}")
    sources = tuple(s.strip() for s in item.get("groups_from", "").split(",") if s.strip())
    if any(s not in GROUP_SOURCES for s in sources) or len(set(sources)) != len(sources):
        raise _BadValue(f"{subject}: groups_from must be \"orgs\", \"teams\" or [\"orgs\", \"teams\"],"
                        f" got {item.get('groups_from')!r}")
    secret = _client_secret(item, subject)
    if not item.get("client_id") or not secret:
        raise _BadValue(f"{subject}: client_id and client_secret (or client_secret_file) are required")
    scopes = "read:user user:email" + (" read:org" if sources else "")
    return Provider(item.get("name") or name, urls[0], "oauth2", item["client_id"], Secret(secret), scopes,
                    token_url=urls[1], api_url=urls[2], groups_from=sources)


__all__ = ["SECRET_FILE_SETTINGS", "Mode", "Provider", "Settings", "access_summary", "is_loopback_host",
           "is_service_link", "load_settings", "open_to_others", "provider_address_warnings", "read_secret_file",
           "validate"]
