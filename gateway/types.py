"""Shared value types: the identity the gateway vouches for, and ASGI aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Assurance:
    """When and how the person last authenticated at their provider: what step-up rules judge.

    ``auth_time`` (epoch seconds) is the provider's ``auth_time`` claim (OpenID Connect Core §2) or PAPE's
    ``auth_time`` (OpenID 2.0); where the provider says nothing (GitHub, a provider that omits it), the time
    the gateway completed the sign-in. ``acr`` is the authentication context class the provider reported
    ("" when it reported none) and ``amr`` its authentication methods (RFC 8176). A remember-me restore
    carries the series' recorded assurance, never a new one: a restore is not an authentication.
    """

    auth_time: float
    acr: str = ""
    amr: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StepUp:
    """What a rule asks of the sign-in beyond "signed in": ``max_age`` seconds at most since it was made,
    and/or one of ``acr_values`` (OpenID Connect Core §3.1.2.1's request parameters of the same names).

    The same check, exact, judges a session at the gate and a provider's answer at the callback: an answer
    the callback accepts is one the gate accepts, so a provider whose clock runs behind is refused once,
    never sent round again (a leeway on one side only would be a loop).
    """

    max_age: int | None = None
    acr_values: tuple[str, ...] = ()

    def met_by(self, assurance: Assurance, now: float) -> bool:
        if self.max_age is not None and now - assurance.auth_time > self.max_age:
            return False
        return not self.acr_values or assurance.acr in self.acr_values

    def shortfall(self, assurance: Assurance, now: float) -> str:
        """Why ``assurance`` falls short, for logs and refusal pages ("" when it does not)."""
        if self.max_age is not None and now - assurance.auth_time > self.max_age:
            return f"authenticated {max(0, int(now - assurance.auth_time))}s ago, more than max_age {self.max_age}s"
        if self.acr_values and assurance.acr not in self.acr_values:
            return f"acr {assurance.acr or '(none)'!r} is not one of {', '.join(self.acr_values)}"
        return ""

    def joined(self, other: StepUp) -> StepUp | None:
        """What meets both ``self`` and ``other`` (the smaller max_age, the common acr values); None when no
        sign-in can (their acr values have nothing in common)."""
        ages = [age for age in (self.max_age, other.max_age) if age is not None]
        acr = self.acr_values
        if acr and other.acr_values:
            acr = tuple(value for value in acr if value in other.acr_values)
            if not acr:
                return None
        return StepUp(min(ages) if ages else None, acr or other.acr_values)


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified OpenID user.

    ``user_id`` is the verified claimed identifier (OpenID 2.0 §11): the only
    field that identifies the account. ``nickname`` and ``email`` are what the
    provider said in *signed* SReg/AX fields and are informational only.
    ``groups`` are the names of the groups the gateway's configuration puts
    this person in, sorted (computed per request, never stored in a cookie).
    ``provider`` says who vouched for the sign-in: a configured provider's
    name, else its host (:func:`gateway.signin.openid2.providers.provider_label`).
    ``link_key`` is the sign-in's own key when a link made it reach ``user_id``
    (:class:`gateway.store.base.LinkRecord`), else "": recorded with the session
    and the remember-me series it starts, so that unlinking ends them. It is
    known at sign-in only (never in a cookie). ``assurance`` is how the sign-in
    that produced this identity was made, set by the sign-in methods (None
    elsewhere); like ``link_key`` it is known at sign-in only, and it is not
    part of the identity's equality (the gate keeps per-identity caches).
    """

    user_id: str
    nickname: str
    email: str = ""
    groups: tuple[str, ...] = ()
    provider: str = ""
    link_key: str = ""
    assurance: Assurance | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A bearer token a provider signed, checked: whose it is, and when it was issued and expires (epoch seconds).

    ``recheck``: when the provider must be asked again (an introspected token, RFC 7662: so that a revocation
    there is seen); infinity for a signed token, which its ``exp`` alone bounds.
    Made by :mod:`gateway.signin.oidc.bearer`, judged by :mod:`gateway.gate.bearer`; it lives on the floor so
    that neither of those sibling packages imports the other.
    """

    identity: Identity
    issued: float
    expires: float
    recheck: float = float("inf")
