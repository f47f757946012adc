"""Registered clients (relying parties): given on the command line or as JSON, checked at start.

``redirect_uri`` and ``post_logout_redirect_uri`` are compared exactly with the
registered strings (OpenID Connect Core §3.1.2.1, RP-Initiated Logout §3): no prefix or
pattern matching, so tests of the gateway see the strict behaviour real providers have.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from devtools.oidc_provider.keys import ALGORITHMS, Algorithm


class ClientConfigError(ValueError):
    """A client definition that cannot be used; the message names the client and the key."""


@dataclass(frozen=True)
class Client:
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None
    id_token_signed_response_alg: Algorithm = "RS256"

    def secret_matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.client_secret.encode(), secret.encode())


def _http_url(value: object, where: str) -> str:
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc:
        raise ClientConfigError(f"{where}: {value!r} is not an http(s) URL")
    return value


def _urls(entry: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list):
        raise ClientConfigError(f"{where}.{key}: a list of URLs")
    return tuple(_http_url(item, f"{where}.{key}") for item in value)


def client_from_json(entry: object) -> Client:
    """One client from its JSON object, with a message naming the bad key."""
    if not isinstance(entry, dict):
        raise ClientConfigError(f"a client is a JSON object, not {entry!r}")
    client_id, secret = entry.get("client_id"), entry.get("client_secret")
    where = f"client {client_id!r}"
    if not isinstance(client_id, str) or not client_id or not isinstance(secret, str) or not secret:
        raise ClientConfigError(f"{where}: client_id and client_secret are non-empty strings")
    redirect_uris = _urls(entry, "redirect_uris", where)
    if not redirect_uris:
        raise ClientConfigError(f"{where}: at least one redirect_uri")
    if any("#" in uri for uri in redirect_uris):
        raise ClientConfigError(f"{where}: a redirect_uri has no fragment (RFC 6749 §3.1.2)")
    backchannel = entry.get("backchannel_logout_uri")
    backchannel_uri = None if backchannel is None else _http_url(backchannel, f"{where}.backchannel_logout_uri")
    alg = entry.get("id_token_signed_response_alg", "RS256")
    if alg not in ALGORITHMS:
        raise ClientConfigError(f"{where}: id_token_signed_response_alg is one of {', '.join(ALGORITHMS)}")
    return Client(
        client_id=client_id,
        client_secret=secret,
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=_urls(entry, "post_logout_redirect_uris", where),
        backchannel_logout_uri=backchannel_uri,
        id_token_signed_response_alg=alg,
    )


def clients_from_json(text: str) -> list[Client]:
    """A JSON list of clients (or a file holding one, when ``text`` is a path)."""
    if not text.lstrip().startswith("["):
        text = Path(text).read_text(encoding="utf-8")
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClientConfigError(f"clients: not JSON ({exc})") from exc
    if not isinstance(entries, list):
        raise ClientConfigError("clients: a JSON list of objects")
    return [client_from_json(entry) for entry in entries]


def gateway_client(gateway_url: str, client_id: str = "gateway", client_secret: str = "dev-secret") -> Client:
    """The client a gateway at ``gateway_url`` needs: its one callback and its back-channel logout URI."""
    base = _http_url(gateway_url, "--gateway-url").rstrip("/")
    return Client(
        client_id=client_id,
        client_secret=client_secret,
        redirect_uris=(f"{base}/_gateway/callback",),
        post_logout_redirect_uris=(f"{base}/login?m=signed-out", f"{base}/_gateway/login", f"{base}/"),
        backchannel_logout_uri=f"{base}/_gateway/backchannel-logout",
    )


def basic_credentials(authorization: str | None) -> list[tuple[str, str]]:
    """The (client_id, secret) readings of a client_secret_basic header; empty when there is none.

    RFC 6749 §2.3.1 form-urlencodes both halves before base64; many clients (Authlib
    among them) send them raw, and most providers accept both, so both readings count.
    """
    if not authorization or not authorization.lower().startswith("basic "):
        return []
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return []
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        return []
    return list(dict.fromkeys([(unquote_plus(client_id), unquote_plus(secret)), (client_id, secret)]))


class Clients:
    """The registry: lookup by client_id."""

    def __init__(self, clients: list[Client]) -> None:
        self._clients = {client.client_id: client for client in clients}

    def get(self, client_id: str) -> Client | None:
        return self._clients.get(client_id)

    def all(self) -> list[Client]:
        return list(self._clients.values())

    def add(self, client: Client) -> None:
        self._clients[client.client_id] = client
