"""The assertion signing keys: one key file shared by every instance, and its rotation.

The file is a JWK Set (JSON) of private keys, each marked with a ``status``
member: exactly one ``current`` key signs; a ``next`` key and a ``previous``
key are published in the JWKS but never sign. A PEM file (one private key,
PKCS#8) works too: it is the current key, its ``kid`` is its RFC 7638
thumbprint, and it cannot rotate.

Rotation keeps every token verifiable, whatever the apps cache:

1. ``openid-gateway keys add-next FILE``: a new key, published only. Copy the
   file to every instance and restart them; wait until the apps' JWKS caches
   have refreshed (the gateway says ``max-age=60``; PyJWT's client keeps keys
   5 minutes by default);
2. ``openid-gateway keys promote FILE``: the next key signs, the current one
   becomes ``previous`` (still published). Copy, restart;
3. ``openid-gateway keys retire FILE`` once every instance signs with the new
   key and its tokens have expired (a minute, plus clock skew): the previous
   key is dropped. Copy, restart.

Each step refuses to run out of order (a second ``next``, a ``promote``
without one or while a ``previous`` key is still published), so the file never
holds a key set that would strand a token.

Supported keys: EC P-256 (``ES256``, the default) and Ed25519 (``EdDSA``).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey

from gateway.errors import GatewayError

Algorithm = Literal["ES256", "EdDSA"]
ALGORITHMS: tuple[Algorithm, ...] = ("ES256", "EdDSA")
Status = Literal["current", "next", "previous"]
STATUSES: tuple[Status, ...] = ("current", "next", "previous")
SigningKey = ECKey | OKPKey
# The key file's own member: says what a key is for; never published.
STATUS_MEMBER = "status"


class KeyFileError(GatewayError):
    """The key file cannot be used; the message is one line naming the file and what is wrong."""


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One private key of the key file."""

    key: SigningKey
    kid: str
    alg: Algorithm
    status: Status

    def public_jwk(self) -> dict[str, Any]:
        """What the JWKS publishes: the public half, its ``kid``, ``alg`` and ``use``."""
        public = self.key.as_dict(private=False)
        public.pop(STATUS_MEMBER, None)
        return {**public, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def private_jwk(self) -> dict[str, Any]:
        private = self.key.as_dict(private=True)
        return {**private, "kid": self.kid, "alg": self.alg, "use": "sig", STATUS_MEMBER: self.status}


@dataclass(frozen=True, slots=True)
class SigningKeys:
    """A validated key set: the one key that signs and every key published."""

    entries: tuple[KeyEntry, ...]

    @property
    def current(self) -> KeyEntry:
        return next(entry for entry in self.entries if entry.status == "current")

    def published(self) -> tuple[KeyEntry, ...]:
        """Current first, then next, then previous: every key a valid token may name."""
        return tuple(sorted(self.entries, key=lambda entry: STATUSES.index(entry.status)))

    def jwks(self) -> dict[str, Any]:
        return {"keys": [entry.public_jwk() for entry in self.published()]}


def algorithm_of(key: SigningKey) -> Algorithm:
    """The JWS algorithm a key signs with; raises :class:`KeyFileError` for any other key."""
    if isinstance(key, ECKey) and key.curve_name == "P-256":
        return "ES256"
    if isinstance(key, OKPKey) and key.curve_name == "Ed25519":
        return "EdDSA"
    raise KeyFileError(f"unsupported key type {key.key_type} {getattr(key, 'curve_name', '')}: use EC P-256 or Ed25519")


def generate_key(alg: Algorithm = "ES256", status: Status = "current") -> KeyEntry:
    """A fresh private key; its ``kid`` is its RFC 7638 thumbprint (stable, says nothing secret)."""
    key: SigningKey = ECKey.generate_key("P-256") if alg == "ES256" else OKPKey.generate_key("Ed25519")
    return KeyEntry(key, key.thumbprint(), alg, status)


def load_signing_keys(path: str | os.PathLike[str]) -> SigningKeys:
    """Read and validate a key file (JWK Set or PEM); raises :class:`KeyFileError`."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"assertion_keys_file {str(path)!r} cannot be read: {exc.strerror}") from None
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            entries: tuple[KeyEntry, ...] = (_pem_entry(data),)
        else:
            entries = tuple(_jwk_entry(item) for item in _jwk_set(data))
        return validated(entries)
    except KeyFileError as exc:
        raise KeyFileError(f"assertion_keys_file {str(path)!r}: {exc}") from None


def validated(entries: Iterable[KeyEntry]) -> SigningKeys:
    """The entries as a :class:`SigningKeys`, if they are a usable set (one current, unique kids)."""
    entries = tuple(entries)
    counts = {status: sum(entry.status == status for entry in entries) for status in STATUSES}
    if counts["current"] != 1:
        raise KeyFileError(f"needs exactly one key with status 'current', found {counts['current']}")
    if counts["next"] > 1 or counts["previous"] > 1:
        raise KeyFileError("holds at most one 'next' and one 'previous' key")
    kids = [entry.kid for entry in entries]
    if len(set(kids)) != len(kids):
        raise KeyFileError("two keys have the same kid")
    return SigningKeys(entries)


def _jwk_set(data: bytes) -> list[Mapping[str, Any]]:
    try:
        document = json.loads(data)
    except ValueError:
        raise KeyFileError("is neither a PEM private key nor a JWK Set (JSON)") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not all(isinstance(item, dict) for item in keys):
        raise KeyFileError('is JSON but not a JWK Set: expected {"keys": [...]}')
    return keys


def _jwk_entry(item: Mapping[str, Any]) -> KeyEntry:
    status = item.get(STATUS_MEMBER, "current")
    if status not in STATUSES:
        raise KeyFileError(f"a key has status {status!r}: use one of {', '.join(STATUSES)}")
    fields = {name: value for name, value in item.items() if name != STATUS_MEMBER}
    try:
        key: SigningKey
        if fields.get("kty") == "EC":
            key = ECKey.import_key(fields)
        elif fields.get("kty") == "OKP":
            key = OKPKey.import_key(fields)
        else:
            raise KeyFileError(f"a key has kty {fields.get('kty')!r}: use EC (P-256) or OKP (Ed25519)")
    except (JoseError, ValueError, TypeError) as exc:
        raise KeyFileError(f"a key cannot be read: {exc}") from None
    if not key.is_private:
        raise KeyFileError("a key is public only: the gateway needs the private key to sign")
    alg = algorithm_of(key)
    if item.get("alg", alg) != alg:
        raise KeyFileError(f"a {key.key_type} key says alg {item.get('alg')!r}: it can only sign {alg}")
    kid = item.get("kid") or key.thumbprint()
    if not isinstance(kid, str):
        raise KeyFileError("a key's kid is not a string")
    return KeyEntry(key, kid, alg, status)


def _pem_entry(data: bytes) -> KeyEntry:
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"is not an unencrypted PEM private key ({exc})") from None
    key: SigningKey
    if isinstance(private, ec.EllipticCurvePrivateKey) and isinstance(private.curve, ec.SECP256R1):
        key = ECKey.import_key(data)
    elif isinstance(private, ed25519.Ed25519PrivateKey):
        key = OKPKey.import_key(data)
    else:
        raise KeyFileError(f"holds a {type(private).__name__}: use EC P-256 or Ed25519")
    return KeyEntry(key, key.thumbprint(), algorithm_of(key), "current")


# -- the key file's life: generate, add-next, promote, retire -----------------------------------

@dataclass(frozen=True, slots=True)
class FileAccess:
    """Who may read a key file: its owner, group and permission bits (None: as before, or the default)."""

    uid: int | None = None
    gid: int | None = None
    mode: int | None = None


NEW_FILE_MODE = 0o600


def write_key_file(path: str | os.PathLike[str], keys: SigningKeys, *, replace: bool,
                   access: FileAccess = FileAccess()) -> os.stat_result:
    """Write ``keys`` as a JWK Set, atomically (readers see the old or the new file); return the new file's stat.

    The file is written beside the old one and renamed over it, so the new
    file is a new inode: it gets the old file's owner, group and mode (a key
    file that root rotates for the service stays readable by the service),
    a new file mode 0600 and its writer's owner; ``access`` overrides either.
    Never a mode open to every user: the gateway refuses such a key file.
    """
    target = Path(path)
    if not replace and target.exists():
        raise KeyFileError(f"{str(target)!r} already exists: keys are rotated with add-next/promote/retire")
    old = target.stat() if replace else None
    uid = access.uid if access.uid is not None else old.st_uid if old else -1  # -1: fchown leaves it
    gid = access.gid if access.gid is not None else old.st_gid if old else -1
    mode = (access.mode if access.mode is not None else stat.S_IMODE(old.st_mode) if old else NEW_FILE_MODE) & 0o770
    text = json.dumps({"keys": [entry.private_jwk() for entry in keys.published()]}, indent=2) + "\n"
    fd, temp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.")  # 0600, ours
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            made = os.fstat(fh.fileno())
            if (uid, gid) != (made.st_uid, made.st_gid) and (uid, gid) != (-1, -1):
                try:
                    os.fchown(fh.fileno(), uid, gid)
                except PermissionError:
                    raise KeyFileError(f"{str(target)!r} cannot be given owner uid {uid} and group gid {gid}:"
                                       " run the command as root") from None
            os.fchmod(fh.fileno(), mode)
            done = os.fstat(fh.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return done


def add_next(keys: SigningKeys, alg: Algorithm = "ES256") -> SigningKeys:
    """Step 1: a new key, published but not yet signing."""
    if any(entry.status == "next" for entry in keys.entries):
        raise KeyFileError("already has a 'next' key: promote it first")
    return validated((*keys.entries, generate_key(alg, "next")))


def promote(keys: SigningKeys) -> SigningKeys:
    """Step 2: the next key signs; the current one stays published as previous."""
    if not any(entry.status == "next" for entry in keys.entries):
        raise KeyFileError("has no 'next' key: add-next first, and wait for the apps to fetch it")
    if any(entry.status == "previous" for entry in keys.entries):
        raise KeyFileError("still publishes a 'previous' key: retire it first")
    moved: dict[Status, Status] = {"current": "previous", "next": "current"}
    return validated(KeyEntry(entry.key, entry.kid, entry.alg, moved[entry.status]) for entry in keys.entries)


def retire(keys: SigningKeys) -> SigningKeys:
    """Step 3: drop the previous key, once its tokens have expired."""
    if not any(entry.status == "previous" for entry in keys.entries):
        raise KeyFileError("has no 'previous' key to retire")
    return validated(entry for entry in keys.entries if entry.status != "previous")


def jwks_etag(body: bytes) -> str:
    """A strong ETag for a JWKS document: the same keys give the same tag on every instance."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


__all__ = [
    "ALGORITHMS", "NEW_FILE_MODE", "Algorithm", "FileAccess", "KeyEntry", "KeyFileError", "SigningKey", "SigningKeys",
    "add_next", "algorithm_of", "generate_key", "jwks_etag", "load_signing_keys", "promote", "retire", "validated",
    "write_key_file",
]
