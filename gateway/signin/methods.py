"""One interface for every sign-in protocol, and the one registry that picks the protocol.

As oauth2-proxy puts every provider behind ``Provider`` and one ``NewProvider`` factory (and as our
own stores sit behind :class:`~gateway.store.Store` and :func:`~gateway.store.open_store`), each
protocol here is a :class:`SignInMethod`: :meth:`~SignInMethod.begin` says where to send the browser,
:meth:`~SignInMethod.complete` turns the provider's answer into an :class:`~gateway.types.Identity`.
:class:`SignInMethods` is the only place that decides which protocol handles a sign-in: from the
login page's choice when one starts, from the login state's recorded protocol when it comes back.
The pages, the callback and account linking call it and never ask which protocol they are talking to.

Step-up (a rule's ``max_age``/``acr_values``, :class:`~gateway.types.StepUp`) is asked by each protocol
in its own terms (OpenID Connect's request parameters, OpenID 2.0's PAPE; GitHub cannot be asked), and
judged here, the same for all: :meth:`SignInMethods.complete` checks the answer's
:class:`~gateway.types.Assurance` against what the login state recorded, exactly as the gate will
(:meth:`~gateway.types.StepUp.met_by`), and refuses (:class:`~gateway.errors.StepUpRefused`) an answer
that does not meet it. A provider that ignored the request is refused once, never sent back to itself
in a loop.

Both calls block on the network (discovery, the token endpoint, JWKS), so the registry runs them on
the sign-in threads (:class:`~gateway.signin.capacity.SignInCapacity`), refusing the excess at once.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple, Protocol, TypeVar

from gateway.errors import LoginFailed, StepUpRefused
from gateway.fetch.allowlist import host_of
from gateway.signin.capacity import SignInCapacity
from gateway.signin.loginstate import step_up_of
from gateway.signin.provider import Provider
from gateway.store.base import LoginStateRecord, SignInProtocol
from gateway.types import Assurance, Identity, StepUp

# Seconds an auth_time may lie in the future (the provider's clock ahead of ours), as for iat; beyond, it is bogus.
STEP_UP_LEEWAY = 60

T = TypeVar("T")


class Started(NamedTuple):
    """Where a sign-in sends the browser, and what its login state keeps until the answer comes back."""

    url: str  # the provider's URL: a redirect, or the action of an auto-submitted form
    form_fields: Mapping[str, str] | None  # None: a redirect (OpenID 2.0 sends long requests as a form)
    provider: str  # recorded in the login state: the endpoint (OpenID 2.0) or the issuer
    label: str  # the provider as events and logs name it (a configured name, else the host)
    data: Mapping[str, object]  # what complete() needs back, kept server-side (never in the URL)


class SignInMethod(Protocol):
    """A sign-in protocol. Both calls block (they run on a sign-in thread) and raise ``LoginFailed``."""

    protocol: SignInProtocol

    def handles(self, choice: str) -> bool:
        """Whether the login page's ``choice`` (a button's value or a typed OpenID) is this protocol's."""
        ...

    def begin(self, choice: str, state_id: str, step_up: StepUp | None = None) -> Started:
        """Discover the provider ``choice`` names and build the request to send the browser to.

        ``step_up``: ask the provider for a sign-in that meets it (as far as the protocol can ask).
        """
        ...

    def complete(self, query: Mapping[str, str], current_url: str, data: Mapping[str, object]) -> Identity:
        """Judge the provider's answer (``query``, arrived at ``current_url``) against what ``begin`` kept.

        The identity's ``assurance`` is what the provider said of the authentication; None when it said
        nothing of its time (:meth:`SignInMethods.complete` then decides).
        """
        ...

    def name_of(self, choice: str) -> str:
        """The configured provider ``choice`` names, or "" (a typed-in identifier: the visitor's, not ours)."""
        ...

    def label(self, record: LoginStateRecord) -> str:
        """The provider of a login state as events name it."""
        ...


class ButtonMethod:
    """What the protocols whose providers are all configured buttons share (OpenID Connect, GitHub).

    The button's value is the provider's identifier (the issuer, or GitHub's authorization URL); the
    login state keeps the button's name, since several buttons may share an origin (tenants, realms).
    """

    protocol: SignInProtocol
    providers: dict[str, Provider]

    def provider_for(self, choice: str) -> Provider | None:
        """The provider a login button names, or None."""
        return next((p for p in self.providers.values() if p.identifier == choice), None)

    def handles(self, choice: str) -> bool:
        return self.provider_for(choice) is not None

    def name_of(self, choice: str) -> str:
        provider = self.provider_for(choice)
        return provider.name if provider is not None else ""

    def begin(self, choice: str, state_id: str, step_up: StepUp | None = None) -> Started:
        provider = self.provider_for(choice)
        if provider is None:
            raise LoginFailed(f"no {self.protocol} provider is configured for {choice[:200]!r}", "no-provider")
        url, data = self.authorize(provider, state_id, step_up)
        return Started(url, None, provider.identifier, provider.name, {"provider": provider.name, **data})

    def authorize(self, provider: Provider, state: str,
                  step_up: StepUp | None = None) -> tuple[str, dict[str, object]]:
        """The authorization URL for ``provider`` and the secrets to keep for the answer (may block)."""
        raise NotImplementedError

    def label(self, record: LoginStateRecord) -> str:
        named = record.data.get("provider")
        return named if isinstance(named, str) else host_of(record.provider)


class SignInMethods:
    """The registry: one :class:`SignInMethod` per protocol, on ``capacity``'s threads.

    ``methods`` is in order of precedence for :meth:`method_for`: the configured buttons' protocols
    first, the catch-all (OpenID 2.0, any typed-in identifier) last.
    """

    def __init__(self, methods: list[SignInMethod], capacity: SignInCapacity,
                 clock: Callable[[], float] = time.time) -> None:
        self.methods = {method.protocol: method for method in methods}
        self._order = tuple(methods)
        self.capacity = capacity
        self.clock = clock

    def method_for(self, choice: str) -> SignInMethod:
        """The protocol that handles the login page's ``choice``."""
        for method in self._order:
            if method.handles(choice):
                return method
        raise LoginFailed(f"no sign-in method accepts {choice[:200]!r}", "no-provider")

    async def begin(self, method: SignInMethod, choice: str, state_id: str, step_up: StepUp | None = None) -> Started:
        """``method.begin`` on a sign-in thread; :class:`SignInBusy` when all are taken."""
        return await self.capacity.run(lambda: method.begin(choice, state_id, step_up))

    async def begin_and_keep(self, method: SignInMethod, choice: str, state_id: str,
                             keep: Callable[[Started], T], step_up: StepUp | None = None) -> tuple[Started, T]:
        """:meth:`begin`, then ``keep(started)`` (the login state's store write) on the same sign-in thread.

        One thread hop per started sign-in instead of two: each hop wakes a thread and then the event
        loop again, which cost more CPU than the store write it carries.
        """
        def work() -> tuple[Started, T]:
            started = method.begin(choice, state_id, step_up)
            return started, keep(started)

        return await self.capacity.run(work)

    def label(self, record: LoginStateRecord) -> str:
        method = self.methods.get(record.protocol)
        return method.label(record) if method is not None else ""

    async def complete(self, record: LoginStateRecord, query: Mapping[str, str], current_url: str,
                       resolve: Callable[[Identity], Identity]) -> Identity:
        """Finish the sign-in ``record`` began, then ``resolve`` the identity, on the same sign-in thread.

        The record's protocol, not the answer's shape, picks the method: an OpenID 2.0 assertion cannot
        finish an OpenID Connect sign-in or the reverse. Raises :class:`SignInBusy` (the record is not
        used up then: the caller gives it back) or :class:`LoginFailed`.
        """
        method = self.methods.get(record.protocol)
        if method is None:
            raise LoginFailed(f"login state {record.state_id} is for {record.protocol}, not supported here")
        if record.protocol != "openid2" and "openid.mode" in query:
            raise LoginFailed(f"login state {record.state_id} is for {record.protocol}, answered as OpenID 2.0")
        asked = step_up_of(record.data)
        return await self.capacity.run(
            lambda: resolve(self.assured(method.complete(query, current_url, record.data), asked, self.clock())))

    @staticmethod
    def assured(identity: Identity, asked: StepUp | None, now: float) -> Identity:
        """``identity`` with its assurance, judged against what the sign-in ``asked``.

        A provider that says nothing of when the person authenticated: without a step-up, the time the
        sign-in completes counts; with one that asks a ``max_age``, the answer cannot be judged and is
        refused (OpenID Connect Core §3.1.2.1 makes ``auth_time`` required then). An answer that falls
        short of ``asked``, judged exactly as the gate judges it, is refused; so is an ``auth_time`` more
        than :data:`STEP_UP_LEEWAY` in the future.
        """
        assurance = identity.assurance
        if asked is not None:
            if assurance is None and asked.max_age is not None:
                raise StepUpRefused(f"{identity.provider or 'the provider'} asked for a sign-in of at most "
                                    f"{asked.max_age}s did not say when the person authenticated (no auth_time)")
            if assurance is not None and assurance.auth_time > now + STEP_UP_LEEWAY:
                raise StepUpRefused(f"{identity.provider or 'the provider'} says the person authenticated "
                                    f"{int(assurance.auth_time - now)}s in the future (its clock?)")
            shortfall = asked.shortfall(assurance or Assurance(now), now)
            if shortfall:
                raise StepUpRefused(f"{identity.provider or 'the provider'} ignored the step-up request: {shortfall}")
        return identity if assurance is not None else dataclasses.replace(identity, assurance=Assurance(now))

    def close(self) -> None:
        self.capacity.close()


__all__ = ["STEP_UP_LEEWAY", "ButtonMethod", "SignInMethod", "SignInMethods", "Started"]
