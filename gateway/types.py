"""Shared value types: the identity the gateway vouches for, and ASGI aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


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
    known at sign-in only (never in a cookie).
    """

    user_id: str
    nickname: str
    email: str = ""
    groups: tuple[str, ...] = ()
    provider: str = ""
    link_key: str = ""


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
