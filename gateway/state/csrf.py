"""CSRF tokens for the gateway's own forms (login, logout, account).

Signed double submit: a random value in a SameSite=Lax, HttpOnly cookie and
the same value, signed, in a hidden form field. A cross-site POST carries
neither a Lax cookie nor a token the attacker could compute.
"""

from __future__ import annotations

import hmac
import secrets

from gateway.state.sessions import TokenCodec

CSRF_SALT = "openid-gateway.state.csrf"


class CSRFTokens:
    """Makes and checks form tokens bound to the browser's CSRF cookie."""

    def __init__(self, secret_keys: list[str]) -> None:
        self.codec = TokenCodec(secret_keys, CSRF_SALT)

    @staticmethod
    def new_cookie_value() -> str:
        return secrets.token_urlsafe(24)

    def form_token(self, cookie_value: str) -> str:
        return self.codec.encode(cookie_value)

    def is_valid(self, cookie_value: str | None, form_token: str | None) -> bool:
        if not cookie_value or not form_token:
            return False
        expected = self.codec.decode(form_token)
        return expected is not None and hmac.compare_digest(expected, cookie_value)
