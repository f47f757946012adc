"""``/_gateway/callback``: the provider's answer (``return_to``), judged and turned into a session.

A provider may answer with a cross-site auto-submitted POST, which
SameSite=Lax cookies do not accompany; such a callback is re-posted once from
our own origin (a same-origin POST carries the cookie) before it is judged.

The login state (:mod:`gateway.signin.loginstate`) is taken from the store only once
the browser's cookie matches it, and taking it uses it up; where the person
lands (``next``) and whether they are remembered come from it, not from the query.

Every protocol's identity then goes through :meth:`Identities.resolve
<gateway.signin.identities.Identities.resolve>` (linked sign-ins, the OpenID 2.0
migration) before a session starts; a sign-in the account page started to
link another sign-in method (:class:`~gateway.signin.identities.LinkIntent`) starts
no session: it is linked, only when it finishes in the very session that
started it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import BadRequest, LoginFailed, SignInBusy, StepUpRefused
from gateway.observe.events import IdentityLinkRefused, SignedIn, SignInFailed
from gateway.pages.forms import MAX_FIELDS, read_form
from gateway.pages.languages import N_
from gateway.pages.render import add_cookies, redirect
from gateway.pages.services import Services
from gateway.pages.session_start import start_session
from gateway.pages.signout import SignOut
from gateway.pages.threads import run_in_threadpool
from gateway.signin.identities import LinkIntent, LinkRefused, session_digest
from gateway.signin.loginstate import STATE_COOKIE_PREFIX, STATE_LIFETIME, state_id_of, step_up_of
from gateway.state.sessions import state_cookie_returns
from gateway.store import LoginStateRecord
from gateway.types import Identity

logger = logging.getLogger("gateway.login")

RESUBMIT_FIELD = "gw_resubmit"


class CallbackEndpoint:
    """``GET/POST /_gateway/callback``."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.runtime = services.runtime
        self.paths = services.runtime.paths
        self.states = self.runtime.login_states
        self.identities = self.runtime.identities
        self.sign_out = SignOut(self.runtime)

    async def callback(self, request: Request) -> Response:
        runtime = self.runtime
        client = self.services.client(request)
        await run_in_threadpool(runtime.failure_limiter.check, client)
        query: dict[str, str] = dict(request.query_params)
        if len(request.query_params) > MAX_FIELDS * 2:
            raise BadRequest("too many query parameters")
        if request.method == "POST":
            form = await read_form(request, runtime.settings.max_form_bytes)
            query.update({k: v for k, v in form.items() if isinstance(v, str)})
        state_id = state_id_of(query)
        bound = self.states.bound(request.cookies, state_id)
        looks_like_answer = bool(state_id) and any(key in query for key in ("openid.mode", "code", "error"))
        if not bound and looks_like_answer and request.method == "POST" and RESUBMIT_FIELD not in query:
            # A cross-site POST carries no SameSite=Lax cookie: re-post from our origin once.
            fields = sorted({k: v for k, v in query.items() if k not in request.query_params}.items())
            fields.append((RESUBMIT_FIELD, "1"))
            pages = self.services.pages
            return pages.render(
                "autopost.html", title=pages.translate(N_("Signing you in")),
                action=str(request.url.path) + "?" + request.url.query,
                fields=fields, detail=pages.translate(N_("Finishing sign-in…")))
        query.pop(RESUBMIT_FIELD, None)
        clear_state = [self.states.clear_cookie(state_id)] if state_id else []
        next_target = "/"  # until the login state says where this person was going
        provider = ""
        link: LinkIntent | None = None
        try:
            if not bound:
                raise self.state_missing(request)
            record = await run_in_threadpool(self.states.take, state_id)
            link = LinkIntent.of(record.data)
            next_target = runtime.next_targets.safe(record.next)
            provider = runtime.methods.label(record)
            # A link keeps the sign-in's own key; any other sign-in reaches the user it resolves to.
            resolve = _unchanged if link is not None else self.identities.resolver(client)
            identity = await self.complete(record, query, runtime.callback_url + "?" + request.url.query, resolve)
        except StepUpRefused as exc:
            return await self.step_up_refused(exc, client, provider, clear_state)
        except LoginFailed as exc:
            await run_in_threadpool(runtime.failure_limiter.hit, client)
            logger.warning("sign-in failed for %s: %s", client, exc.reason)
            runtime.events.emit(SignInFailed(provider, exc.code, client))
            if link is not None:  # the person is signed in: the account page says it
                return redirect(self.paths.account + "?m=link-failed", clear_state)
            return redirect(self.paths.login_url(next_target, exc.code), clear_state)
        if link is not None:
            return await self.finish_link(request, link, identity, clear_state)
        if step_up_of(record.data) is not None:
            await self.replace_stepped_up(request)
        cookies = await start_session(self.services, request, identity, remember=record.remember)
        logger.info("signed in %s (%s) from %s", identity.user_id, identity.nickname, client)
        runtime.events.emit(SignedIn(identity.provider or provider, identity.user_id, client, record.remember))
        return redirect(next_target, clear_state + cookies)

    async def replace_stepped_up(self, request: Request) -> None:
        """End the session (and its remember-me series) a step-up replaces: its cookies are overwritten by the
        new sign-in's, and a series left behind would restore the old, weaker sign-in for whoever kept a copy."""
        previous = self.services.current_session(request)
        if previous is not None:
            await self.sign_out.end([previous.session_id], [previous.series_id] if previous.series_id else [])

    async def step_up_refused(self, exc: StepUpRefused, client: str, provider: str, cookies: list[str]) -> Response:
        """The provider ignored a step-up: a page that says so, never a redirect (back to the page, the gate would
        ask again and the provider ignore it again: a loop). The person's session, if any, is left as it was."""
        runtime = self.runtime
        await run_in_threadpool(runtime.failure_limiter.hit, client)
        logger.warning("step-up refused for %s: %s", client, exc.reason)
        runtime.events.emit(SignInFailed(provider, exc.code, client))
        return add_cookies(self.services.pages.error(
            403, N_("A more recent sign-in is needed"),
            N_("This page asks for a recent or stronger sign-in, and your provider did not confirm one: it signed "
               "you in without asking again, or not in the way this page needs. Nothing else changed: if you "
               "were signed in, you still are. Please tell the site's operator if this keeps happening."),
            back_url="/", back_label=N_("Back to the start page")), cookies)

    async def complete(self, record: LoginStateRecord, query: dict[str, str], current_url: str,
                       resolve: Callable[[Identity], Identity]) -> Identity:
        """Finish the sign-in the record began (:meth:`SignInMethods.complete
        <gateway.signin.methods.SignInMethods.complete>`), then ``resolve`` the identity.

        A refusal for lack of a free sign-in thread does not use the record up.
        """
        try:
            return await self.runtime.methods.complete(record, query, current_url, resolve)
        except SignInBusy:
            await run_in_threadpool(self.states.give_back, record)
            raise

    async def finish_link(self, request: Request, link: LinkIntent, identity: Identity,
                          cookies: list[str]) -> Response:
        """Link the sign-in's own key to the user who asked, only in the session that asked; no new session.

        The state cookie proves the same browser; the session check proves the
        same person is still signed in there (not signed out, nor somebody
        else since): otherwise a link would land on whoever holds the browser now.
        """
        session = self.services.current_session(request)
        client = self.services.client(request)
        if session is None or session_digest(session.session_id) != link.session \
                or session.identity.user_id != link.user_id:
            logger.warning("link of %s to %s refused for %s: the sign-in did not finish in the session that "
                           "started it", identity.user_id, link.user_id, client)
            self.runtime.events.emit(IdentityLinkRefused(link.user_id, identity.user_id, "other-session", client))
            return add_cookies(self.services.pages.error(
                400, N_("Link refused"), N_("This sign-in was started to link another sign-in method to an account,"
                                             " but that account is no longer signed in in this browser. Nothing"
                                             " was linked."),
                back_url=self.paths.account, back_label=N_("Back to your account")), cookies)
        try:
            await run_in_threadpool(self.identities.link, identity.user_id, identity.provider, link.user_id, client)
        except LinkRefused as exc:
            logger.warning("link refused for %s: %s", client, exc.reason)
            return redirect(self.paths.account + "?m=" + exc.code, cookies)
        logger.info("%s linked sign-in %s (%s) from %s", link.user_id, identity.user_id, identity.provider, client)
        return redirect(self.paths.account + "?m=linked", cookies)

    def state_missing(self, request: Request) -> LoginFailed:
        """Why no login-state cookie matched, naming ``public_url`` when a setup mistake is the likely cause."""
        public_url = self.runtime.settings.public_url
        host = request.headers.get("host", "")
        if not state_cookie_returns(host, public_url, self.runtime.settings.cookie_domain):
            return LoginFailed(f"login state missing: the callback came to {host[:200]!r}, not to public_url "
                               f"{public_url}; set public_url to the address browsers use", "wrong-host")
        if not any(name.startswith(STATE_COOKIE_PREFIX) for name in request.cookies):
            return LoginFailed(f"login state missing: no {STATE_COOKIE_PREFIX}* cookie came back. Started over "
                               f"{STATE_LIFETIME}s ago or in another browser, or at an address other than public_url "
                               f"({public_url}, where the provider sends browsers back)?", "expired")
        return LoginFailed("login state missing: callback opened in another browser, or expired", "expired")


def _unchanged(identity: Identity) -> Identity:
    return identity
