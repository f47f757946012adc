"""The provider allow list (``provider_allowlist``) and the URL origins it compares (pure).

When the operator lists URL prefixes, only endpoints (and, in the fetcher, only documents) under one of
them are acceptable. ``https://steamcommunity.com/openid`` admits ``https://steamcommunity.com/openid/login``
but not ``/openidx`` nor ``http://`` nor ``steamcommunity.com.evil.example``. The fetcher and the OpenID
2.0 exchange both ask, so it lives with the fetcher, below every protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from gateway.errors import ProviderNotAllowed

DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int


def origin(url: str) -> Origin | None:
    """Scheme, host and port; ``None`` unless an http(s) URL with a host and no user name."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = host_of(url)
    if scheme not in DEFAULT_PORTS or not host or parts.username is not None:
        return None
    return Origin(scheme, host, port or DEFAULT_PORTS[scheme])


def host_of(url: str) -> str:
    """Lower-case host without a trailing dot (``Example.COM.`` names ``example.com``)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.rstrip(".")


def is_url_allowed(url: str, allowlist: Sequence[str]) -> bool:
    """True when ``url`` lies under one of the ``allowlist`` prefixes (or the list is empty).

    Scheme, host and port compare exactly; the path compares as a prefix on a
    segment boundary. URLs with dot segments (``/openid/../admin``, also
    percent-encoded) or backslashes never match: a server may normalise them
    to a path outside the prefix after the check.
    """
    if not allowlist:
        return True
    url_origin = origin(url)
    if url_origin is None:
        return False
    path = urlsplit(url).path or "/"
    decoded = unquote(path)
    if "\\" in decoded or any(segment in (".", "..") for segment in decoded.split("/")):
        return False
    for entry in allowlist:
        if origin(entry) != url_origin:
            continue
        prefix = urlsplit(entry).path or "/"
        if prefix.endswith("/"):
            if path.startswith(prefix):
                return True
        elif path == prefix or path.startswith(prefix + "/"):
            return True
    return False


def check_endpoint_allowed(endpoint_url: str, allowlist: Sequence[str]) -> None:
    """Raise :class:`ProviderNotAllowed` unless the answering endpoint is on the allow list."""
    if not is_url_allowed(endpoint_url, allowlist):
        raise ProviderNotAllowed(f"endpoint {endpoint_url!r} is not on the provider allow list")


def allowlist_problems(allowlist: Sequence[str]) -> list[str]:
    """Every unusable allow list entry, worded for ``settings.validate``."""
    problems = []
    for entry in allowlist:
        parts = urlsplit(entry)
        if origin(entry) is None or parts.query or parts.fragment:
            problems.append(
                f"provider_allowlist: {entry!r} must be an http(s) URL prefix such as"
                " https://steamcommunity.com/openid (no user name, query or fragment)"
            )
    return problems


__all__ = ["DEFAULT_PORTS", "Origin", "allowlist_problems", "check_endpoint_allowed", "host_of", "is_url_allowed",
           "origin"]
