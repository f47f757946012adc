"""Switchable misbehaviour, so tests can check that a relying party fails closed.

One mode at a time, for the whole provider, set with ``POST /_dev/misbehave``
``{"mode": "..."}`` and cleared with ``{"mode": "none"}``. Each mode breaks exactly one
thing; the rest of the flow stays correct, so a test learns which check caught it.
"""

from __future__ import annotations

from typing import Literal, get_args

Mode = Literal[
    "none",
    # the ID token
    "wrong-aud",  # aud names another client
    "several-aud",  # aud names us and another client, azp names us (Core §3.1.3.7 items 3-5: accepted)
    "several-aud-no-azp",  # aud names us and another client, and azp is left out (item 4)
    "azp-other",  # azp names another client (item 5)
    "wrong-iss",  # iss is another issuer
    "wrong-nonce",  # nonce differs from the request's
    "no-nonce",  # nonce left out although the request had one
    "expired",  # exp (and iat) an hour in the past
    "no-exp",  # exp left out (Core §2: REQUIRED)
    "issued-in-future",  # iat an hour ahead
    "alg-none",  # unsigned: {"alg": "none"} and an empty signature
    "unknown-kid",  # signed by a key the JWKS does not publish
    "hs256-public-key",  # HS256 keyed with the published RSA public key (key confusion)
    "bad-signature",  # a valid token with its signature's bytes changed
    "email-unverified",  # email_verified false (ID token and userinfo)
    "claims-in-userinfo-only",  # the ID token carries sub alone; e-mail, names, groups only from userinfo (Core §5.4)
    "userinfo-wrong-sub",  # as claims-in-userinfo-only, and userinfo answers for another sub (Core §5.3.2)
    "openid2-id-not-url",  # openid2_id is not a URL (Migration §3 wants the OpenID 2.0 claimed identifier)
    # the code and the authorization response
    "replay-code",  # the code is not single-use
    "no-iss-param",  # the authorization response lacks iss (RFC 9207)
    "wrong-iss-param",  # the authorization response's iss is another issuer
    # the back-channel logout token
    "logout-unsigned",  # alg none
    "logout-garbage",  # not a JWT at all
    "logout-nonce",  # carries a nonce (forbidden, Back-Channel Logout §2.4)
    "logout-no-event",  # events lacks the back-channel logout event
    "logout-wrong-aud",  # aud names another client
    "logout-jti-not-string",  # jti is a number (Back-Channel Logout §2.4: a string)
    # introspection (RFC 7662); wrong-aud, wrong-iss and expired break its answers too
    "introspection-no-aud",  # the answer leaves out aud (§2.2 allows it): only client_id names the token's client
]
MODES: tuple[Mode, ...] = get_args(Mode)
WRONG_ISSUER = "https://wrong-issuer.invalid"
WRONG_AUDIENCE = "some-other-client"


class Misbehaviour:
    """The current mode."""

    def __init__(self) -> None:
        self.mode: Mode = "none"

    def set(self, mode: object) -> Mode:
        """Switch modes; raises ValueError for an unknown one."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
        self.mode = mode
        return self.mode

    def __call__(self, mode: Mode) -> bool:
        return self.mode == mode
