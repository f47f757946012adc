"""The gateway's signed JWT assertion, checked the way any app would: with PyJWT and the gateway's JWKS.

Another library than the gateway's signer (joserfc), on purpose: what this
accepts is what a standard JWT library accepts, nothing our own code agrees
with itself about. The public keys come from the gateway's
``/.well-known/openid-gateway/jwks.json`` through PyJWT's ``PyJWKClient``,
which keeps them ``lifespan`` seconds and fetches again for an unknown ``kid``
at most once per ``cooldown`` (a forged ``kid`` cannot make the app hammer
the gateway). The fetch is blocking (urllib), a short pause once per lifespan
in this sample app.

Refused: a token not signed by a published key, an ``alg`` other than the
key's own (``none``, ``HS256`` keyed with the public key), another issuer,
another Host (``aud``), an expired token, one issued in the future, one
without the claims it must carry.
"""

from __future__ import annotations

from collections.abc import Mapping

import jwt

from gateway.errors import InvalidProof
from gateway.proof import HeaderNames
from gateway.types import Assurance, Identity

# What the gateway signs with; the key's own algorithm must also match the token's.
ALGORITHMS = ("ES256", "EdDSA")
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "exp"]
MAX_TOKEN_LENGTH = 8192
LEEWAY = 5  # seconds of clock difference between the gateway and the app


class AssertionVerifier:
    """Checks the identity on the app's side from the gateway's JWT, as :class:`~gateway.proof.ProofVerifier` does.

    ``names.proof`` is the assertion header: the one header that vouches for the
    identity here. The plain identity headers are not believed (the claims
    are); one of them arriving without an assertion is refused, never taken
    as anonymous.
    """

    def __init__(self, jwks_url: str, issuer: str, names: HeaderNames, *, lifespan: float = 300,
                 cooldown: float = 10, timeout: float = 5) -> None:
        self.issuer = issuer
        self.names = names
        self.keys = jwt.PyJWKClient(jwks_url, lifespan=lifespan, timeout=timeout, cooldown_duration=cooldown)

    def verify(self, headers: Mapping[str, str], method: str, host: str, uri: str) -> Identity | None:
        """The identity the token vouches for, ``None`` when no identity is claimed; else :class:`InvalidProof`.

        ``host`` is the Host this request arrived with: the token must have
        been made for it (ASCII-lower-cased, port kept, as the gateway does).
        """
        token = headers.get(self.names.proof)
        if token is None:
            if any(name in headers for name in self.names.identity()):
                raise InvalidProof("identity header without assertion")
            return None
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidProof("assertion too long")
        try:
            key = self.keys.get_signing_key_from_jwt(token)
            if key.algorithm_name not in ALGORITHMS:
                raise InvalidProof(f"key algorithm {key.algorithm_name} not accepted")
            claims = jwt.decode(
                token, key, algorithms=[key.algorithm_name], audience=_ascii_lower(host), issuer=self.issuer,
                leeway=LEEWAY, options={"require": REQUIRED_CLAIMS, "strict_aud": True},
            )
        except jwt.PyJWKClientConnectionError as exc:
            raise InvalidProof(f"the gateway's keys cannot be fetched: {exc}") from exc
        except (jwt.PyJWTError, ValueError) as exc:
            raise InvalidProof(f"assertion refused: {type(exc).__name__}: {exc}") from exc
        return _identity(claims)


def _identity(claims: Mapping[str, object]) -> Identity:
    sub, nickname, email = claims.get("sub"), claims.get("nickname", ""), claims.get("email", "")
    groups = claims.get("groups", [])
    if not isinstance(sub, str) or not sub or not isinstance(nickname, str) or not isinstance(email, str):
        raise InvalidProof("assertion claims sub, nickname or email are not strings")
    if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
        raise InvalidProof("assertion claim groups is not a list of strings")
    auth_time, acr, amr = claims.get("auth_time"), claims.get("acr", ""), claims.get("amr", [])
    if not isinstance(acr, str) or not isinstance(amr, list) or not all(isinstance(m, str) for m in amr):
        raise InvalidProof("assertion claims acr or amr are not strings")
    assurance = (Assurance(float(auth_time), acr, tuple(amr))
                 if isinstance(auth_time, int) and not isinstance(auth_time, bool) else None)
    return Identity(sub, nickname, email, tuple(sorted(groups)), assurance=assurance)


def _ascii_lower(host: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in host)


__all__ = ["ALGORITHMS", "AssertionVerifier"]
