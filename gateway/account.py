"""``/_gateway/account``: the signed-in user's sessions, and "sign out everywhere"."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from gateway.pages import check_csrf, csrf_cookie, current_session, form_text, read_form, runtime_of
from gateway.sessions import Session
from gateway.web import add_cookies, redirect

logger = logging.getLogger("gateway.account")

ACCOUNT_PATH = "/_gateway/account"


async def account_page(request: Request) -> Response:
    runtime = runtime_of(request)
    session = current_session(request)
    if session is None:
        return redirect(runtime.login_url(ACCOUNT_PATH))
    sessions = await run_in_threadpool(runtime.store.list_sessions, session.identity.user_id, runtime.now())
    sessions = [s for s in sessions if not runtime.revocation.is_revoked(s.session_id)]
    value, cookies = csrf_cookie(request)
    page = request.app.state.pages.render(
        "account.html", identity=session.identity, sessions=sessions, current_id=session.session_id,
        csrf_token=runtime.csrf.form_token(value))
    return add_cookies(page, cookies)


async def signed_in_form(request: Request) -> tuple[FormData, Session | None]:
    """The form of a POST to the account pages, CSRF-checked, and the session posting it."""
    form = await read_form(request)
    check_csrf(request, form)
    return form, current_session(request)


async def revoke_one(request: Request) -> Response:
    runtime = runtime_of(request)
    form, session = await signed_in_form(request)
    if session is None:
        return redirect(runtime.login_url(ACCOUNT_PATH))
    target = form_text(form, "session_id")
    now = runtime.now()
    owned = await run_in_threadpool(runtime.store.list_sessions, session.identity.user_id, now)
    for record in owned:
        if record.session_id == target:
            await run_in_threadpool(runtime.store.revoke_session, target, now)
            if record.series_id:
                await run_in_threadpool(runtime.remember.revoke, record.series_id, now)
            runtime.revocation.add(target)
            logger.info("%s ended session %s", session.identity.user_id, target)
    return redirect(ACCOUNT_PATH)


async def sign_out_everywhere(request: Request) -> Response:
    runtime = runtime_of(request)
    _, session = await signed_in_form(request)
    if session is None:
        return redirect(runtime.login_url(ACCOUNT_PATH))
    user_id = session.identity.user_id
    now = runtime.now()
    owned = await run_in_threadpool(runtime.store.list_sessions, user_id, now)
    await run_in_threadpool(runtime.store.revoke_user, user_id, now)
    for record in owned:
        runtime.revocation.add(record.session_id)
    runtime.revocation.add(session.session_id)
    logger.info("%s signed out everywhere (%d sessions)", user_id, len(owned))
    return redirect(runtime.login_url("/", "signed-out-everywhere"), runtime.sign_out_cookies())
