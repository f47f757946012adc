"""Sign-ins in flight: kept in the store, used once, bound to the browser that started them.

``POST /login`` picks a random state id and :meth:`LoginStates.begin` keeps a
:class:`~gateway.store.LoginStateRecord` (provider, ``next``, remember-me, the
protocol's own data) in the store and returns a signed cookie
``gw_state_<id>`` for the callback path only. The provider's answer carries
just the id (in ``return_to``). At the callback, :meth:`LoginStates.bound`
checks the cookie first (no store call for an answer opened in another
browser: login CSRF), then :meth:`LoginStates.take` removes the record as it
reads it: a replayed answer finds nothing, and since nothing stays in the
process that began, any worker or instance can finish the sign-in.

``next`` and ``remember`` come from the record, never from the answer's
query, so nobody on the way can change where the person lands. So does what a
step-up asked of the provider (:func:`step_up_of`): the answer is judged
against what was asked, never against what it says was asked.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping

from gateway.errors import LoginFailed
from gateway.state.sessions import CookiePolicy, TokenCodec
from gateway.store import LoginStateRecord, Store
from gateway.store.base import SignInProtocol
from gateway.types import StepUp

STATE_COOKIE_PREFIX = "gw_state_"
STATE_LIFETIME = 900  # seconds: the cookie's and the record's
STATE_FIELD = "gw_state"  # the query parameter of return_to that names the state
_STATE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # secrets.token_urlsafe's alphabet
STEP_UP_KEY = "step_up"  # the login state's data: what a step-up asked ({"max_age": ..., "acr_values": [...]})


def step_up_data(step_up: StepUp | None) -> dict[str, object]:
    """What a login state's data keeps of ``step_up`` (nothing for a plain sign-in)."""
    if step_up is None:
        return {}
    return {STEP_UP_KEY: {"max_age": step_up.max_age, "acr_values": list(step_up.acr_values)}}


def step_up_of(data: Mapping[str, object]) -> StepUp | None:
    """The step-up a login state's data recorded (:func:`step_up_data`), or None."""
    asked = data.get(STEP_UP_KEY)
    if not isinstance(asked, Mapping):
        return None
    max_age, acr_values = asked.get("max_age"), asked.get("acr_values")
    return StepUp(max_age if isinstance(max_age, int) else None,
                  tuple(str(value) for value in acr_values) if isinstance(acr_values, list) else ())


def new_state_id() -> str:
    return secrets.token_urlsafe(16)


def state_id_of(query: Mapping[str, str]) -> str:
    """The state id an answer names, or '' when it is not one we could have issued (it names a cookie).

    OpenID 2.0 answers carry it in ``return_to``'s ``gw_state``; OpenID Connect
    answers in the ``state`` parameter.
    """
    state_id = query.get(STATE_FIELD) or query.get("state", "")
    return state_id if _STATE_ID.fullmatch(state_id) else ""


def cookie_name(state_id: str) -> str:
    return STATE_COOKIE_PREFIX + state_id


class LoginStates:
    """Begins and takes login states; store calls block (run them in a worker thread)."""

    def __init__(self, store: Store, codec: TokenCodec, cookies: CookiePolicy, clock: Callable[[], float],
                 callback_path: str, lifetime: int = STATE_LIFETIME) -> None:
        self.store = store
        # The cookie goes back to the callback only (gateway.paths): no other request carries it.
        self.callback_path = callback_path
        self.codec = codec
        self.cookies = cookies
        self.clock = clock
        self.lifetime = lifetime

    def begin(self, state_id: str, protocol: SignInProtocol, provider: str, next_target: str, remember: bool,
              data: Mapping[str, object]) -> str:
        """Keep the sign-in's record; return the ``Set-Cookie`` value that binds it to this browser."""
        now = self.clock()
        self.store.put_login_state(LoginStateRecord(state_id, protocol, provider, next_target, remember,
                                                    now, now + self.lifetime, dict(data)))
        return self.cookies.set(cookie_name(state_id), self.codec.encode(state_id), max_age=self.lifetime,
                                path=self.callback_path)

    def bound(self, cookies: Mapping[str, str], state_id: str) -> bool:
        """Whether this browser holds the signed cookie for ``state_id`` (it started this sign-in)."""
        return bool(state_id) and self.codec.decode(cookies.get(cookie_name(state_id))) == state_id

    def take(self, state_id: str) -> LoginStateRecord:
        """The record, removed as it is read; :class:`LoginFailed` ("expired") if used, expired or unknown."""
        record = self.store.take_login_state(state_id, self.clock())
        if record is None:
            raise LoginFailed(f"login state {state_id} is used, expired or unknown (a replayed or late answer)",
                              "expired")
        return record

    def give_back(self, record: LoginStateRecord) -> None:
        """Put back a record taken for an answer that could not be judged yet (no free sign-in thread).

        Being turned away busy is not a use: the person's retry must still finish.
        """
        self.store.put_login_state(record)

    def clear_cookie(self, state_id: str) -> str:
        return self.cookies.delete(cookie_name(state_id), path=self.callback_path)


__all__ = ["STATE_COOKIE_PREFIX", "STATE_FIELD", "STATE_LIFETIME", "STEP_UP_KEY", "LoginStates", "cookie_name",
           "new_state_id", "state_id_of", "step_up_data", "step_up_of"]
