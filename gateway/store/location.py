"""The ``store`` setting: which store, where, read and checked without connecting anywhere.

``""`` is the SQLite file under the state directory; any other value without
a URL scheme is a SQLite file path; ``redis://``, ``rediss://`` (TLS) and
``unix://`` URLs name a Redis server. Pure functions: settings validation and
``check-config`` use them, so a bad URL stops start-up with one line, and a
password never reaches a log line or the terminal (:func:`masked`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDIS_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_PREFIX = "gw:"
DEFAULT_TIMEOUT = 2.0
# Query parameters of ours, taken out before the URL goes to redis-py.
OWN_PARAMETERS = ("timeout", "prefix")
# redis-py's own that make sense here: the database of a unix:// URL, TLS files and checks of rediss://.
REDIS_PARAMETERS = ("db", "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile",
                    "ssl_check_hostname", "client_name")
MASK = "***"


class BadStoreLocation(ValueError):
    """The ``store`` setting cannot be used; the message completes "store …" and never holds the password."""


@dataclass(frozen=True, slots=True)
class RedisLocation:
    """A Redis store's address: the URL for redis-py (our parameters removed), timeout and key prefix."""

    url: str
    timeout: float
    prefix: str

    @property
    def shown(self) -> str:
        return masked(self.url)

    @property
    def password(self) -> str | None:
        return urlsplit(self.url).password


def is_redis(location: str) -> bool:
    scheme, found, _ = location.strip().partition("://")
    return bool(found) and scheme.lower() in REDIS_SCHEMES


def masked(location: str) -> str:
    """``location`` with its password (if any) replaced by ``***``: what logs and ``check-config`` show."""
    try:
        parts = urlsplit(location)
        password = parts.password
    except ValueError:  # an unparsable netloc (a bad port): show nothing of what may follow the scheme
        return location.split("://", 1)[0] + "://" + MASK if "://" in location else MASK
    if not password:
        return location
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def parse_redis(location: str) -> RedisLocation:
    """Check a Redis URL and split off our parameters; :class:`BadStoreLocation` says what is wrong."""
    location = location.strip()
    shown = masked(location)
    try:
        parts = urlsplit(location)
        port = parts.port
    except ValueError as exc:
        raise BadStoreLocation(f"{shown!r} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in REDIS_SCHEMES:
        raise BadStoreLocation(f"{shown!r}: the scheme must be redis://, rediss:// or unix://")
    if parts.fragment:
        raise BadStoreLocation(f"{shown!r}: no #fragment")
    if scheme == "unix":
        if not parts.path.startswith("/"):
            raise BadStoreLocation(f"{shown!r}: a unix:// URL names a socket path, e.g. unix:///run/redis/redis.sock")
    else:
        if not parts.hostname:
            raise BadStoreLocation(f"{shown!r}: no host, e.g. redis://127.0.0.1:6379/0")
        if port == 0:
            raise BadStoreLocation(f"{shown!r}: port 0")
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise BadStoreLocation(f"{shown!r}: the path must be a database number, e.g. /0")
    timeout, prefix = DEFAULT_TIMEOUT, DEFAULT_PREFIX
    kept: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "timeout":
            try:
                timeout = float(value)
            except ValueError:
                timeout = math.nan
            if not (math.isfinite(timeout) and 0 < timeout <= 60):
                raise BadStoreLocation(f"{shown!r}: timeout must be a number of seconds in (0, 60]")
        elif name == "prefix":
            if not value or len(value) > 64 or any(ch.isspace() for ch in value):
                raise BadStoreLocation(f"{shown!r}: prefix must be 1-64 characters without spaces")
            prefix = value
        elif name in REDIS_PARAMETERS:
            if name == "db" and not value.isdigit():
                raise BadStoreLocation(f"{shown!r}: db must be a database number")
            kept.append((name, value))
        else:
            known = ", ".join(OWN_PARAMETERS + REDIS_PARAMETERS)
            raise BadStoreLocation(f"{shown!r}: unknown parameter {name!r} (known: {known})")
    url = urlunsplit(parts._replace(query=urlencode(kept)))
    return RedisLocation(url, timeout, prefix)


def location_problems(location: str) -> list[str]:
    """The ``store`` setting's problems, as settings validation lists them ("store …")."""
    if not is_redis(location):
        if "://" in location:
            return [f"store {masked(location)!r}: the scheme must be redis://, rediss:// or unix:// "
                    "(or give a SQLite file path)"]
        return []
    try:
        parse_redis(location)
    except BadStoreLocation as exc:
        return [f"store {exc}"]
    return []


__all__ = ["BadStoreLocation", "RedisLocation", "is_redis", "location_problems", "masked", "parse_redis"]
