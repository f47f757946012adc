"""``next`` carried through the provider's end-session endpoint in the RP-initiated logout's ``state``.

The provider sends the browser back to exactly the ``post_logout_redirect_uri``
registered with it (``/login?m=signed-out``), so ``next`` cannot ride in that
URI. RP-Initiated Logout 1.0 §2 and §3 give the ``state`` parameter for this:
the provider returns it unchanged as a query parameter. Ours is ``next``
signed with the gateway's secret keys (itsdangerous, newest key signs, all
verify) under a salt of its own, so a session cookie or a login-state id can
never pass for one nor the reverse, and it is accepted for
:data:`MAX_AGE` seconds only.

The signature only says *we* wrote it: whoever reads the state back checks
the target again with :mod:`gateway.gate.redirects` (the one ``next`` check), as
for any ``next`` a browser brings. The target is readable by the provider
(signed, not encrypted); it is the path the person was going to anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from itsdangerous import BadData, URLSafeTimedSerializer

from gateway.errors import GatewayError
from gateway.state.sessions import ClockedSigner

SALT = "openid-gateway.logout-return"
MAX_AGE = 600  # seconds from /logout to the provider sending the browser back (it may ask for confirmation)
MAX_STATE_LENGTH = 8192  # next is at most max_next_length (2048 by default): signed, well under this
STATE_PARAM = "state"  # the query parameter the provider returns it in (RP-Initiated Logout §3)


class LogoutStateRefused(GatewayError):
    """A ``state`` on our login page that we did not sign for a logout, or signed too long ago."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LogoutReturn:
    """Signs ``next`` into a logout ``state`` and reads it back; ``clock`` stamps and judges the age."""

    def __init__(self, secret_keys: list[str], clock: Callable[[], float] = time.time,
                 max_age: int = MAX_AGE) -> None:
        self._serializer = URLSafeTimedSerializer(secret_keys, salt=SALT, signer=ClockedSigner,
                                                  signer_kwargs={"clock": clock})
        self.max_age = max_age

    def state(self, next_target: str) -> str:
        """The ``state`` to send to the end-session endpoint for ``next_target`` (already checked)."""
        return self._serializer.dumps(next_target)

    def next_of(self, state: str) -> str:
        """The ``next`` a state carries, not yet checked as a redirect target; :class:`LogoutStateRefused`."""
        if not state or len(state) > MAX_STATE_LENGTH:
            raise LogoutStateRefused("logout state missing or too long")
        try:
            value = self._serializer.loads(state, max_age=self.max_age)
        except BadData as exc:  # a bad signature, another salt's value, too old, or no timestamp
            raise LogoutStateRefused(f"logout state not ours or expired ({type(exc).__name__})") from exc
        except (UnicodeError, ValueError, TypeError) as exc:
            raise LogoutStateRefused(f"logout state malformed ({type(exc).__name__})") from exc
        if not isinstance(value, str):
            raise LogoutStateRefused("logout state does not carry a target")
        return value


__all__ = ["MAX_AGE", "SALT", "STATE_PARAM", "LogoutReturn", "LogoutStateRefused"]
