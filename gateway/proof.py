"""Trusted identity headers and the proof that the gateway sent them.

Headers alone can be forged by anyone who reaches the app directly. So next to
the identity headers the gateway sends a *proof*: a short-lived HMAC-SHA256
over the request method, the ``Host`` the request was sent to, the request URI
and the identity header values. An app holding the shared ``proof_key`` checks
it with :class:`ProofVerifier`; a request with identity headers but no valid
proof must be refused.

The signed message is a list of netstrings (``<length>:<bytes>,``), so no value
can run into the next one whatever it contains (the first format joined values
with separators, and moving the tail of an e-mail address into the proof kept
it valid). The proof is ``v3.<timestamp>.<signature>`` and nothing else is
accepted: v3 added the authentication time and context class (step-up) to the
signed values, and a v2 proof must not pass where they are expected.
docs/apps.md ("Identity headers") gives the same recipe for other languages; ``tests/test_proof.py`` checks it.

Header values are UTF-8, percent-encoded outside printable ASCII and for ``%``
itself (an ASCII nickname or e-mail arrives unchanged). The groups header is a
comma-separated, sorted list of names, each encoded the same way and with ``,``
encoded too, so a name containing a comma stays one name. The auth-time header
is the person's last authentication at their provider in whole epoch seconds,
the acr header its authentication context class ("" when none was reported). The proof signs the
values *as sent*, so an app verifies first and decodes after.

This module needs nothing beyond the standard library, so that protected
Python apps can import it on its own.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote

from gateway.errors import InvalidProof
from gateway.types import Assurance, Identity

PROOF_VERSION = "v3"
# The first signed field: names what is signed, so this HMAC can never be mistaken for another use of the key.
PROOF_CONTEXT = b"openid-gateway.identity-proof.v3"
_CONTEXT_FIELD = b"%d:%b," % (len(PROOF_CONTEXT), PROOF_CONTEXT)
DEFAULT_MAX_AGE = 30
# v3.<decimal Unix time, no leading zero>.<base64url HMAC-SHA256, no padding: 43 characters>
_PROOF_FORMAT = re.compile(re.escape(PROOF_VERSION) + r"\.([1-9][0-9]{0,11})\.([A-Za-z0-9_-]{43})", re.ASCII)
_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
_SAFE_IN_GROUP = _SAFE.replace(",", "")
_URLSAFE = bytes.maketrans(b"+/", b"-_")  # base64 to base64url (RFC 4648 §5)

Clock = Callable[[], float]


def encode_header_value(value: str) -> str:
    """Make ``value`` safe for an HTTP header (no CR/LF, latin-1 clean)."""
    return quote(value, safe=_SAFE)


def encode_identity(identity: Identity) -> tuple[str, str, str]:
    """The user, nickname and e-mail header values, as sent and as signed."""
    return (encode_header_value(identity.user_id), encode_header_value(identity.nickname),
            encode_header_value(identity.email))


def encode_groups(groups: Iterable[str]) -> str:
    """The groups header value: the names sorted, deduplicated, each encoded, joined by ``,``.

    Sorted so that the same groups always give the same signed value. An empty
    name is not a group and is left out.
    """
    return ",".join(quote(name, safe=_SAFE_IN_GROUP) for name in sorted(set(groups)) if name)


def encode_assurance(assurance: Assurance) -> tuple[str, str]:
    """The auth-time (whole epoch seconds; "" when unknown, as for a bearer token without ``auth_time``) and acr
    header values, as sent and as signed."""
    auth_time = str(int(assurance.auth_time)) if assurance.auth_time >= 1 else ""
    return auth_time, encode_header_value(assurance.acr) if assurance.acr else ""  # most sessions report no acr


def decode_header_value(value: str) -> str:
    return unquote(value, errors="strict")


def decode_groups(value: str) -> tuple[str, ...]:
    """The group names of a groups header value (:func:`encode_groups`'s inverse); ``""`` is no groups."""
    return tuple(unquote(name, errors="strict") for name in value.split(",") if name)


def request_uri(scope: Mapping[str, Any]) -> str:
    """The request target of an ASGI request as the client sent it: what the proof signs.

    One definition for the gateway, its proxy and the apps, so that both ends
    of the proof build the same string. ``scope["path"]`` is already
    percent-decoded, so it is used (re-encoded) only by servers that do not
    provide ``raw_path``. An empty query adds nothing, as in the proof.
    """
    raw_path: bytes | None = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path is not None else quote(scope["path"])
    query: bytes = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def proof_message(timestamp: str, method: str, host: str, uri: str, *values: str) -> bytes:
    """The bytes the proof's HMAC covers: every signed field as a netstring, in order.

    ``values`` are the identity header values in :meth:`HeaderNames.identity`
    order (user, nickname, e-mail, groups, auth time, acr), as sent (a new identity header is
    signed by adding it there).
    Strings carry the bytes as received (latin-1, as ASGI and WSGI decode
    them, so a netstring's length in characters is its length in bytes);
    ``UnicodeEncodeError`` means a value that cannot have come off the wire.
    The method is upper-cased and the Host lower-cased (ASCII letters only),
    and one trailing ``?`` is dropped from the URI: ``/path?`` reaches most
    apps as ``/path``.
    """
    return _request_fields(timestamp, method, host, uri) + signed_values(*values)


def signed_values(*values: str) -> bytes:
    """The identity values' part of :func:`proof_message`: the same for every request of one session.

    The gateway works it out once per session (:meth:`ProofSigner.sign_values`); only the request's
    own fields are encoded per request.
    """
    return "".join([f"{len(value)}:{value}," for value in values]).encode("latin-1")


def _request_fields(timestamp: str, method: str, host: str, uri: str) -> bytes:
    """The context, timestamp, method, Host and URI fields of :func:`proof_message`: one format per request."""
    if uri.endswith("?"):
        uri = uri[:-1]
    method = method.upper() if method.isascii() else _ascii_case(method, str.upper)
    host = host.lower() if host.isascii() else _ascii_case(host, str.lower)
    return _CONTEXT_FIELD + (f"{len(timestamp)}:{timestamp},{len(method)}:{method},{len(host)}:{host},"
                             f"{len(uri)}:{uri},").encode("latin-1")


def _ascii_case(value: str, change: Callable[[str], str]) -> str:
    """``change`` applied to ASCII letters only, the same in every language (``str.upper`` maps ``ß`` to ``SS``)."""
    if value.isascii():
        return change(value)
    return "".join(change(c) if c.isascii() else c for c in value)


def _keyed(key: bytes) -> hmac.HMAC:
    """HMAC-SHA256 with ``key`` set up once: each proof copies it (:func:`_signature`).

    ``hmac.digest(key, message, "sha256")`` looks the MAC up in OpenSSL 3 and derives the key's pads on
    every call; a copy of a keyed HMAC skips both (about a quarter of the instructions per proof).
    """
    return hmac.new(key, digestmod=hashlib.sha256)


def _signature(keyed: hmac.HMAC, message: bytes) -> bytes:
    """The HMAC in base64url without padding: a SHA-256 digest (32 bytes) always ends in exactly one ``=``.

    binascii and a translation table rather than ``base64.urlsafe_b64encode(...).rstrip``: two Python
    frames fewer per proof, the same bytes (tests/test_proof.py).
    """
    mac = keyed.copy()
    mac.update(message)
    return binascii.b2a_base64(mac.digest(), newline=False)[:-1].translate(_URLSAFE)


def _key_bytes(key: str | bytes) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else key


class HeaderNames:
    """The identity and proof header names, configurable on both sides."""

    __slots__ = ("acr", "auth_time", "email", "groups", "nickname", "proof", "user")

    def __init__(
        self,
        user: str = "X-Gateway-User",
        nickname: str = "X-Gateway-Nickname",
        email: str = "X-Gateway-Email",
        proof: str = "X-Gateway-Proof",
        groups: str = "X-Gateway-Groups",
        auth_time: str = "X-Gateway-Auth-Time",
        acr: str = "X-Gateway-Acr",
    ) -> None:
        self.user = user
        self.nickname = nickname
        self.email = email
        self.proof = proof
        self.groups = groups
        self.auth_time = auth_time
        self.acr = acr

    def identity(self) -> tuple[str, ...]:
        """The identity headers, in the order the proof signs their values."""
        return (self.user, self.nickname, self.email, self.groups, self.auth_time, self.acr)

    def all(self) -> tuple[str, ...]:
        return (*self.identity(), self.proof)


class ProofSigner:
    """Produces identity headers with a proof; used by the gateway."""

    def __init__(self, key: str | bytes, clock: Clock = time.time) -> None:
        self._keyed = _keyed(_key_bytes(key))
        self._clock = clock

    def sign(self, method: str, host: str, uri: str, user: str, nickname: str, email: str, *,
             groups: str = "", auth_time: str = "", acr: str = "") -> str:
        """The proof (``v3.<timestamp>.<signature>``) for this request and these encoded header values.

        The values are as sent (:func:`encode_identity`, :func:`encode_groups`, :func:`encode_assurance`;
        see :func:`proof_message`). Every value is always signed, empty or not,
        so that adding a header to a proof made without it breaks it.
        """
        return self.sign_values(method, host, uri, signed_values(user, nickname, email, groups, auth_time, acr))

    def sign_values(self, method: str, host: str, uri: str, values: bytes) -> str:
        """:meth:`sign` with the identity values already encoded by :func:`signed_values` (once per session)."""
        timestamp = str(int(self._clock()))
        message = _request_fields(timestamp, method, host, uri) + values
        return f"{PROOF_VERSION}.{timestamp}.{_signature(self._keyed, message).decode('ascii')}"

    def headers(self, identity: Identity, method: str, host: str, uri: str,
                names: HeaderNames) -> list[tuple[str, str]]:
        """Every identity header (in :meth:`HeaderNames.identity` order) and the proof.

        The auth time and acr are ``identity.assurance``'s (both empty without one).
        """
        assured = encode_assurance(identity.assurance) if identity.assurance is not None else ("", "")
        values = (*encode_identity(identity), encode_groups(identity.groups), *assured)
        proof = self.sign(method, host, uri, *values[:3], groups=values[3], auth_time=values[4], acr=values[5])
        return [*zip(names.identity(), values, strict=True), (names.proof, proof)]


class ProofVerifier:
    """Checks identity headers on the app's side of the gateway.

    ``host`` and ``uri`` are what the app received: the ``Host`` header
    (port included when sent) and the request target (:func:`request_uri`).
    A proof made for another site, page, method or person, in any other
    format, or older than ``max_age`` seconds is refused.
    """

    def __init__(self, key: str | bytes, max_age: int = DEFAULT_MAX_AGE, names: HeaderNames | None = None,
                 clock: Clock = time.time) -> None:
        self._keyed = _keyed(_key_bytes(key))
        self.max_age = max_age
        self.names = names or HeaderNames()
        self._clock = clock

    def verify(self, headers: Mapping[str, str], method: str, host: str, uri: str) -> Identity | None:
        """Return the vouched-for identity, ``None`` when no identity is claimed.

        Raises :class:`InvalidProof` when identity headers are present but the
        proof is missing, malformed, forged, for another request, or expired.
        """
        user = headers.get(self.names.user)
        proof = headers.get(self.names.proof)
        if user is None and proof is None:
            return None
        if not user or not proof:
            raise InvalidProof("identity header without proof")
        found = _PROOF_FORMAT.fullmatch(proof)
        if found is None:
            if proof.startswith("v2."):
                raise InvalidProof("proof is in the v2 format: this app needs the gateway's v3 proof (upgrade both)")
            raise InvalidProof("proof is not in the v3 format")
        timestamp, signature = found.groups()
        values = [headers.get(name, "") for name in self.names.identity()]
        try:
            expected = _signature(self._keyed, proof_message(timestamp, method, host, uri, *values))
        except UnicodeEncodeError as exc:
            raise InvalidProof("a signed value is not latin-1") from exc
        if not hmac.compare_digest(expected, signature.encode("ascii")):
            raise InvalidProof("proof does not match")
        age = int(self._clock()) - int(timestamp)
        if age > self.max_age:
            raise InvalidProof("proof expired")
        if age < 0:
            raise InvalidProof("proof from the future (are the clocks in sync?)")
        user, nickname, email, groups, auth_time, acr = values
        try:
            assurance = Assurance(float(auth_time), decode_header_value(acr)) if auth_time.isdigit() else None
            return Identity(decode_header_value(user), decode_header_value(nickname), decode_header_value(email),
                            decode_groups(groups), assurance=assurance)
        except UnicodeDecodeError as exc:
            raise InvalidProof("identity header is not UTF-8") from exc


__all__ = ["DEFAULT_MAX_AGE", "HeaderNames", "InvalidProof", "ProofSigner", "ProofVerifier", "decode_groups",
           "decode_header_value", "encode_assurance", "encode_groups", "encode_header_value", "encode_identity",
           "proof_message", "request_uri", "signed_values"]
