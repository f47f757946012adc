"""``/_gateway/account``: the signed-in user's sessions, and "sign out everywhere"."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from gateway.endpoints.forms import CSRFForms, form_text
from gateway.endpoints.services import Services
from gateway.endpoints.signout import SignOut
from gateway.events import SessionEnded, SignedOutEverywhere, hash_id
from gateway.sessions import Session
from gateway.web import add_cookies, redirect

logger = logging.getLogger("gateway.account")

ACCOUNT_PATH = "/_gateway/account"


class AccountEndpoints:
    """The account page and its two forms."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.runtime = services.runtime
        self.forms = CSRFForms(services.runtime)
        self.sign_out = SignOut(services.runtime)

    async def page(self, request: Request) -> Response:
        runtime = self.runtime
        session = self.services.current_session(request)
        if session is None:
            return redirect(runtime.login_url(ACCOUNT_PATH))
        sessions = await run_in_threadpool(runtime.store.list_sessions, session.identity.user_id, runtime.now())
        sessions = [s for s in sessions if not runtime.revocation.is_revoked(s.session_id)]
        token, cookies = self.forms.form_token(request)
        page = self.services.pages.render(
            "account.html", identity=session.identity, sessions=sessions, current_id=session.session_id,
            csrf_token=token)
        return add_cookies(page, cookies)

    async def signed_in_form(self, request: Request) -> tuple[FormData, Session | None]:
        """The form of a POST to the account pages, CSRF-checked, and the session posting it."""
        form = await self.forms.read_checked(request)
        return form, self.services.current_session(request)

    async def revoke_one(self, request: Request) -> Response:
        runtime = self.runtime
        form, session = await self.signed_in_form(request)
        if session is None:
            return redirect(runtime.login_url(ACCOUNT_PATH))
        target = form_text(form, "session_id")
        owned = await run_in_threadpool(runtime.store.list_sessions, session.identity.user_id, runtime.now())
        for record in owned:
            if record.session_id == target:
                # A remembered session ends with its series, and so does every session restored from it.
                await self.sign_out.end([target], [record.series_id] if record.series_id else [])
                logger.info("%s ended session %s", session.identity.user_id, hash_id(target))
                runtime.events.emit(SessionEnded(session.identity.user_id, hash_id(target),
                                                 self.services.client(request)))
        return redirect(ACCOUNT_PATH)

    async def sign_out_everywhere(self, request: Request) -> Response:
        runtime = self.runtime
        _, session = await self.signed_in_form(request)
        if session is None:
            return redirect(runtime.login_url(ACCOUNT_PATH))
        user_id = session.identity.user_id
        ended = await self.sign_out.end_user(user_id, [session.session_id])
        logger.info("%s signed out everywhere (%d sessions)", user_id, ended)
        runtime.events.emit(SignedOutEverywhere(user_id, ended, self.services.client(request)))
        return redirect(runtime.login_url("/", "signed-out-everywhere"), runtime.sign_out_cookies())
