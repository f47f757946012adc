"""``/_gateway/account``: the signed-in user's sessions, "sign out everywhere", and linked sign-ins.

"Link another sign-in method": ``POST /_gateway/account/link`` (CSRF-checked,
signed in) starts an ordinary sign-in with another configured provider whose
login state carries a :class:`~gateway.signin.identities.LinkIntent` (this user,
this session); the callback links instead of signing in
(:meth:`CallbackEndpoint.finish_link <gateway.pages.callback.CallbackEndpoint.finish_link>`)
and comes back here with a notice. ``POST /_gateway/account/unlink`` removes
one of the user's own links, and ends every session and remember-me series
that sign-in started (the store does both in one step).
"""

from __future__ import annotations

import logging

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from gateway.observe.events import SessionEnded, SignedOutEverywhere, hash_id
from gateway.pages.forms import CSRFForms, form_text
from gateway.pages.languages import N_
from gateway.pages.login import LoginEndpoints
from gateway.pages.render import add_cookies, redirect
from gateway.pages.services import Services
from gateway.pages.signout import SignOut
from gateway.pages.threads import run_in_threadpool
from gateway.signin.identities import NOT_YOURS, LinkIntent, session_digest
from gateway.state.sessions import Session

logger = logging.getLogger("gateway.account")

# The account page's notices (``?m=``): (kind, text); unknown codes show nothing.
NOTICES: dict[str, tuple[str, str]] = {
    "linked": ("info", N_("The sign-in method is linked: signing in with it now reaches this account.")),
    "unlinked": ("info", N_("The sign-in method is unlinked: signing in with it no longer reaches this account.")),
    "not-yours": ("error", N_("That linked sign-in is not one of this account's. Nothing was changed.")),
    "link-failed": ("error", N_("Signing in with the other provider did not succeed, so nothing was linked.")),
    "link-self": ("error", N_("That is the sign-in method you are signed in with: there is nothing to link.")),
    "link-exists": ("info", N_("That sign-in method is already linked to this account.")),
    "link-taken": ("error", N_("That sign-in method already reaches another account, so it was not linked. "
                   "Sign in with it and unlink it there first.")),
    "link-has-links": ("error", N_("Other sign-in methods are linked to that one, so it cannot be linked here. "
                       "Sign in with it and unlink them first.")),
    "link-stale": ("error", N_("This session is of a sign-in method that now reaches another account. Please sign in "
                   "again.")),
    "unknown-provider": ("error", N_("That provider is not one this site offers.")),
}


class AccountEndpoints:
    """The account page and its two forms."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.runtime = services.runtime
        self.paths = services.runtime.paths
        self.forms = CSRFForms(services.runtime)
        self.sign_out = SignOut(services.runtime)
        self.login = LoginEndpoints(services)
        self.identities = self.runtime.identities

    async def page(self, request: Request) -> Response:
        runtime = self.runtime
        session = self.services.current_session(request)
        if session is None:
            return redirect(self.paths.login_url(self.paths.account))
        sessions = await run_in_threadpool(runtime.store.list_sessions, session.identity.user_id, runtime.now())
        sessions = [s for s in sessions if not runtime.revocation.is_revoked(s.session_id)]
        links = await run_in_threadpool(self.identities.links, session.identity.user_id)
        token, cookies = self.forms.form_token(request)
        notice = NOTICES.get(request.query_params.get("m", ""))
        others = [p for p in runtime.settings.providers if p.name != session.identity.provider]
        page = self.services.pages.render(
            "account.html", identity=session.identity, sessions=sessions, current_id=session.session_id,
            csrf_token=token, links=links, providers=others,
            notices=[{"kind": notice[0], "text": self.services.pages.translate(notice[1])}] if notice else [])
        return add_cookies(page, cookies)

    async def link(self, request: Request) -> Response:
        """Start a sign-in with another provider that links it to this user instead of signing in."""
        runtime = self.runtime
        form, session = await self.signed_in_form(request)
        if session is None:
            return redirect(self.paths.login_url(self.paths.account))
        await run_in_threadpool(runtime.login_limiter.hit, self.services.client(request))
        identifier = form_text(form, "provider")
        if not any(p.identifier == identifier for p in runtime.settings.providers):
            return redirect(self.paths.account + "?m=unknown-provider")
        intent = LinkIntent(session.identity.user_id, session_digest(session.session_id))
        logger.info("%s starts linking a sign-in with %s", session.identity.user_id, identifier[:200])
        return await self.login.start(request, identifier, self.paths.account, False, intent.data())

    async def unlink(self, request: Request) -> Response:
        form, session = await self.signed_in_form(request)
        if session is None:
            return redirect(self.paths.login_url(self.paths.account))
        key = form_text(form, "identity_key")
        user_id = session.identity.user_id
        ended = await run_in_threadpool(self.identities.unlink, key, user_id, self.services.client(request))
        if ended is None:
            logger.warning("%s tried to unlink %r, not one of their links", user_id, key[:200])
            return redirect(self.paths.account + "?m=" + NOT_YOURS)
        self.sign_out.here(ended)
        logger.info("%s unlinked sign-in %s (%d of its sessions ended)", user_id, key, len(ended))
        if session.session_id in ended:  # signed in with the method just unlinked: this session is over too
            return redirect(self.paths.login_url(self.paths.account, "unlinked-signed-out"),
                            self.runtime.sign_out_cookies())
        return redirect(self.paths.account + "?m=unlinked")

    async def signed_in_form(self, request: Request) -> tuple[FormData, Session | None]:
        """The form of a POST to the account pages, CSRF-checked, and the session posting it."""
        form = await self.forms.read_checked(request)
        return form, self.services.current_session(request)

    async def revoke_one(self, request: Request) -> Response:
        runtime = self.runtime
        form, session = await self.signed_in_form(request)
        if session is None:
            return redirect(self.paths.login_url(self.paths.account))
        target = form_text(form, "session_id")
        owned = await run_in_threadpool(runtime.store.list_sessions, session.identity.user_id, runtime.now())
        for record in owned:
            if record.session_id == target:
                # A remembered session ends with its series, and so does every session restored from it.
                await self.sign_out.end([target], [record.series_id] if record.series_id else [])
                logger.info("%s ended session %s", session.identity.user_id, hash_id(target))
                runtime.events.emit(SessionEnded(session.identity.user_id, hash_id(target),
                                                 self.services.client(request)))
        return redirect(self.paths.account)

    async def sign_out_everywhere(self, request: Request) -> Response:
        runtime = self.runtime
        _, session = await self.signed_in_form(request)
        if session is None:
            return redirect(self.paths.login_url(self.paths.account))
        user_id = session.identity.user_id
        ended = await self.sign_out.end_user(user_id, [session.session_id])
        logger.info("%s signed out everywhere (%d sessions)", user_id, ended)
        runtime.events.emit(SignedOutEverywhere(user_id, ended, self.services.client(request)))
        return redirect(self.paths.login_url("/", "signed-out-everywhere"), runtime.sign_out_cookies())
