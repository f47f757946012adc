"""The provider's signing keys: an ES256 and an RS256 key made at start, rotated on demand.

Rotation follows the usual provider practice: the new key is published *and* used for
signing at once, while the old keys stay in the JWKS so that tokens signed before the
rotation still verify. Keys are a list, newest last (as itsdangerous does).
"""

from __future__ import annotations

import secrets
from typing import Any, Literal

from joserfc import jwt
from joserfc.jwk import ECKey, Key, KeySet, RSAKey

Algorithm = Literal["ES256", "RS256"]
ALGORITHMS: tuple[Algorithm, ...] = ("RS256", "ES256")  # RS256 first: the OpenID Connect default
PUBLISHED = 8  # keys kept in the JWKS per algorithm: older ones are dropped


def new_key(alg: Algorithm) -> ECKey | RSAKey:
    """A fresh private key whose ``kid`` is random, so a kid never names two keys."""
    parameters: Any = {"kid": f"{alg.lower()}-{secrets.token_hex(6)}", "use": "sig", "alg": alg}
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=parameters)
    return RSAKey.generate_key(2048, parameters=parameters)


class KeyRing:
    """The published keys per algorithm; the newest one of each signs."""

    def __init__(self) -> None:
        self._keys: dict[Algorithm, list[ECKey | RSAKey]] = {alg: [new_key(alg)] for alg in ALGORITHMS}

    def current(self, alg: Algorithm) -> ECKey | RSAKey:
        return self._keys[alg][-1]

    def rotate(self) -> dict[Algorithm, str]:
        """Publish and start signing with a new key per algorithm; returns the new kids."""
        for alg in ALGORITHMS:
            self._keys[alg] = [*self._keys[alg], new_key(alg)][-PUBLISHED:]
        return {alg: str(self.current(alg).kid) for alg in ALGORITHMS}

    def jwks(self) -> dict[str, Any]:
        """The public half of every published key (RFC 7517 §5)."""
        keys: list[Key] = [key for alg in ALGORITHMS for key in self._keys[alg]]
        return dict(KeySet(keys).as_dict(private=False))

    def public_key_set(self) -> KeySet:
        return KeySet.import_key_set(self.jwks())  # type: ignore[arg-type]

    def sign(self, claims: dict[str, Any], alg: Algorithm, *, typ: str = "JWT") -> str:
        key = self.current(alg)
        return jwt.encode({"alg": alg, "kid": key.kid, "typ": typ}, claims, key)
