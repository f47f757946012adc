"""Which providers may speak here, and for which identifiers (pure).

Two separate questions, both asked after python3-openid has verified a
positive assertion:

* **Allow list** (``provider_allowlist``, :mod:`gateway.fetch.allowlist`):
  when the operator lists URL prefixes, only endpoints under one of them are
  acceptable (the fetcher applies the same list to every document).
* **Authority**: a successful OpenID response proves only that the answering
  endpoint vouches for the claimed identifier (OpenID 2.0 §11). The gateway
  uses the claimed identifier as the account key, so for providers it knows it
  also insists that their identifiers come from their endpoint and that their
  endpoint asserts only identifiers of their own shape. A Steam ID asserted by
  any other endpoint is refused, whatever discovery said.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.errors import ProviderNotAllowed
from gateway.fetch.allowlist import DEFAULT_PORTS, Origin, host_of, origin


def _canonical(url: str) -> tuple[Origin, str, str] | None:
    url_origin = origin(url)
    if url_origin is None:
        return None
    parts = urlsplit(url)
    return url_origin, parts.path or "/", parts.query


@dataclass(frozen=True, slots=True)
class ProviderRule:
    """A provider's authority: its one endpoint and the identifiers it may assert.

    ``claimed_id_pattern`` must match the whole claimed identifier; write it
    with ``[0-9]`` rather than ``\\d`` (which also matches non-ASCII digits).
    ``identifier_host`` defaults to the endpoint's host: claimed identifiers on
    that host are accepted from ``endpoint`` only.
    """

    name: str
    endpoint: str
    claimed_id_pattern: re.Pattern[str]
    identifier_host: str = ""

    def __post_init__(self) -> None:
        if not self.identifier_host:
            object.__setattr__(self, "identifier_host", host_of(self.endpoint))

    def is_endpoint(self, endpoint_url: str) -> bool:
        return _canonical(endpoint_url) == _canonical(self.endpoint)


STEAM = ProviderRule(
    name="Steam",
    endpoint="https://steamcommunity.com/openid/login",
    claimed_id_pattern=re.compile(r"https://steamcommunity\.com/openid/id/7656119[0-9]{10}"),
)
UBUNTU_ONE = ProviderRule(
    name="Ubuntu One",
    endpoint="https://login.ubuntu.com/+openid",
    claimed_id_pattern=re.compile(r"https://login\.ubuntu\.com/\+id/[A-Za-z0-9]+"),
)
DEFAULT_RULES: tuple[ProviderRule, ...] = (STEAM, UBUNTU_ONE)


def provider_label(endpoint_url: str, named: Sequence[tuple[str, str]] = ()) -> str:
    """Who vouched for a sign-in, for ``provider:`` subjects and the app: a configured name, else the host.

    ``named`` is ``(name, identifier)`` of the configured provider buttons; the
    first whose identifier shares the verified endpoint's origin names it
    (Steam's ``/openid`` and its ``/openid/login`` endpoint). Any other
    provider is known by its endpoint's host (and port, when not the default).
    """
    endpoint = origin(endpoint_url)
    if endpoint is None:
        return ""
    for name, identifier in named:
        if origin(identifier) == endpoint:
            return name
    return endpoint.host if endpoint.port == DEFAULT_PORTS[endpoint.scheme] else f"{endpoint.host}:{endpoint.port}"


def check_authority(claimed_id: str, endpoint_url: str, rules: Sequence[ProviderRule] = DEFAULT_RULES) -> None:
    """Refuse an assertion that a known provider's rule forbids.

    Raises :class:`ProviderNotAllowed` when ``claimed_id`` lives on a known
    provider's host but ``endpoint_url`` is not that provider's endpoint, or
    when a known endpoint asserts an identifier not of its shape. Identifiers
    of unknown hosts from unknown endpoints pass: python3-openid's discovery
    check already ties them to their endpoint (OpenID 2.0 §11.2).
    """
    claimed_host = host_of(claimed_id)
    for rule in rules:
        from_endpoint = rule.is_endpoint(endpoint_url)
        if from_endpoint and not rule.claimed_id_pattern.fullmatch(claimed_id):
            raise ProviderNotAllowed(f"{rule.name} endpoint asserted a foreign identifier {claimed_id!r}")
        if claimed_host == rule.identifier_host and not from_endpoint:
            raise ProviderNotAllowed(f"{rule.name} identifier {claimed_id!r} asserted by {endpoint_url!r}")


__all__ = [
    "DEFAULT_RULES",
    "STEAM",
    "UBUNTU_ONE",
    "ProviderRule",
    "check_authority",
]
