"""The sign-in pages: ``/login``, ``/_gateway/callback`` and ``/logout``.

The OpenID round trip is bound to the browser that started it: ``POST
/login`` sets a short-lived cookie named after a random state id and puts
that id (with ``next`` and the remember-me choice) in ``return_to``, whose
query parameters python3-openid requires to come back unchanged. The callback
signs in only when the browser presents the matching cookie, so an attacker's
assertion pushed into a victim's browser (login CSRF) is refused.

A provider may answer with a cross-site auto-submitted POST, which SameSite=Lax
cookies do not accompany; such a callback is re-posted once from our own
origin (a same-origin POST carries the cookie) before it is judged.
"""

from __future__ import annotations

import logging
import re
import secrets
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import BadRequest, CSRFError, LoginFailed, StoreUnavailable
from gateway.runtime import CALLBACK_PATH, Runtime
from gateway.sessions import Session
from gateway.store import SessionRecord
from gateway.types import Identity
from gateway.web import add_cookies, client_of, redirect

logger = logging.getLogger("gateway.login")

CSRF_COOKIE = "gw_csrf"
STATE_COOKIE_PREFIX = "gw_state_"
STATE_LIFETIME = 900
MAX_FIELDS = 40
RESUBMIT_FIELD = "gw_resubmit"
STATE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # secrets.token_urlsafe's alphabet


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def read_form(request: Request) -> FormData:
    """Parse a urlencoded/multipart form within the configured size limits."""
    limit = runtime_of(request).settings.max_form_bytes
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise BadRequest("form too large", 413)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest("form too large", 413)
    request._body = body  # let Starlette's form parser reuse what we read
    try:
        return await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=limit)
    except (ValueError, UnicodeDecodeError, AssertionError) as exc:
        raise BadRequest(f"malformed form: {exc}") from exc


def current_session(request: Request) -> Session | None:
    """The live session of this request, or None (raises StoreUnavailable: fail closed)."""
    runtime = runtime_of(request)
    session, _ = request.app.state.auth.authenticate(request.headers.get("cookie"), runtime.now())
    return session  # type: ignore[no-any-return]


def csrf_cookie(request: Request) -> tuple[str, list[str]]:
    """The browser's CSRF cookie value, creating one (and its Set-Cookie) when missing."""
    runtime = runtime_of(request)
    value = request.cookies.get(CSRF_COOKIE)
    if value and 16 <= len(value) <= 64:
        return value, []
    value = runtime.csrf.new_cookie_value()
    return value, [runtime.cookies.set(CSRF_COOKIE, value)]


def check_csrf(request: Request, form: FormData) -> None:
    token = form.get("csrf_token")
    form_token = token if isinstance(token, str) else None
    if not runtime_of(request).csrf.is_valid(request.cookies.get(CSRF_COOKIE), form_token):
        logger.warning("CSRF check failed for %s %s from %s", request.method, request.url.path, client_of(request))
        raise CSRFError("missing or invalid CSRF token")


def form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def sign_in(request: Request, identity: Identity, remember: bool, series_id: str | None = None) -> list[str]:
    """Create a server-side session (and a remember-me series); return the cookies to set."""
    runtime = runtime_of(request)
    settings = runtime.settings
    now = runtime.now()
    user_agent = request.headers.get("user-agent", "")
    cookies = []
    if remember and series_id is None:
        series_id, remember_cookie = await run_in_threadpool(runtime.remember.issue, identity, user_agent, now)
        cookies.append(
            runtime.cookies.set(settings.remember_cookie, remember_cookie, max_age=settings.remember_lifetime))
    session_id = secrets.token_urlsafe(18)
    record = SessionRecord(session_id, identity.user_id, now, now + settings.session_max_lifetime, series_id,
                           user_agent, client_of(request))
    await run_in_threadpool(runtime.store.create_session, record)
    cookies.append(runtime.cookies.set(settings.session_cookie,
                                       runtime.sessions.encode(session_id, identity, now, series_id)))
    return cookies


async def login_page(request: Request) -> Response:
    runtime = runtime_of(request)
    next_target = runtime.safe_next(request.query_params.get("next"))
    if current_session(request) is not None:
        return redirect(next_target)
    cookies: list[str] = []
    remember_cookie = request.cookies.get(runtime.settings.remember_cookie)
    if remember_cookie:
        restored = await run_in_threadpool(runtime.remember.restore, remember_cookie, runtime.now())
        if restored is not None:
            cookies = await sign_in(request, restored.identity, remember=True, series_id=restored.series_id)
            if restored.cookie is not None:
                cookies.append(runtime.cookies.set(runtime.settings.remember_cookie, restored.cookie,
                                                   max_age=runtime.settings.remember_lifetime))
            logger.info("session restored from remember-me for %s", restored.identity.user_id)
            return redirect(next_target, cookies)
        cookies.append(runtime.cookies.delete(runtime.settings.remember_cookie))
    return render_login(request, next_target, request.query_params.get("m"), cookies=cookies)


def render_login(request: Request, next_target: str, message: str | None, *, identifier: str = "",
                 remember: bool = False, status: int = 200, cookies: list[str] | None = None) -> Response:
    runtime = runtime_of(request)
    value, csrf_cookies = csrf_cookie(request)
    response = request.app.state.pages.render(
        "login.html", status=status, message=message, next=next_target, identifier=identifier, remember=remember,
        providers=runtime.settings.providers, csrf_token=runtime.csrf.form_token(value),
    )
    return add_cookies(response, (cookies or []) + csrf_cookies)


async def login_submit(request: Request) -> Response:
    runtime = runtime_of(request)
    form = await read_form(request)
    check_csrf(request, form)
    client = client_of(request)
    runtime.login_limiter.hit(client)
    next_target = runtime.safe_next(form_text(form, "next"))
    remember = form_text(form, "remember") in ("1", "on", "yes")
    identifier = form_text(form, "provider") or form_text(form, "identifier")
    state_id = secrets.token_urlsafe(16)
    return_to = runtime.callback_url + "?" + urlencode(
        {"gw_state": state_id, "next": next_target, "remember": "1" if remember else "0"})
    try:
        provider_request = await run_in_threadpool(runtime.exchange.begin, identifier, return_to, state_id)
    except LoginFailed as exc:
        logger.warning("sign-in start failed for %s: %s", client, exc.reason)
        return render_login(request, next_target, exc.code, identifier=identifier[:1024], remember=remember,
                            status=400)
    state_cookie = runtime.cookies.set(STATE_COOKIE_PREFIX + state_id, runtime.login_states.encode(state_id),
                                       max_age=STATE_LIFETIME, path=CALLBACK_PATH)
    if provider_request.form_fields is None:
        return redirect(provider_request.url, [state_cookie])
    response = request.app.state.pages.render(
        "autopost.html", title="Continue to your provider", action=provider_request.url,
        fields=sorted(provider_request.form_fields.items()), detail="Taking you to your OpenID provider…")
    return add_cookies(response, [state_cookie])


async def callback(request: Request) -> Response:
    runtime = runtime_of(request)
    client = client_of(request)
    runtime.failure_limiter.check(client)
    query: dict[str, str] = dict(request.query_params)
    if len(request.query_params) > MAX_FIELDS * 2:
        raise BadRequest("too many query parameters")
    if request.method == "POST":
        form = await read_form(request)
        query.update({k: v for k, v in form.items() if isinstance(v, str)})
    state_id = query.get("gw_state", "")
    if not STATE_ID.fullmatch(state_id):  # it names a cookie below: only what POST /login issues
        state_id = ""
    next_target = runtime.safe_next(query.get("next"))
    state_cookie_name = STATE_COOKIE_PREFIX + state_id
    bound = bool(state_id) and runtime.login_states.decode(request.cookies.get(state_cookie_name)) == state_id
    looks_like_answer = bool(state_id) and "openid.mode" in query
    if not bound and looks_like_answer and request.method == "POST" and RESUBMIT_FIELD not in query:
        # A cross-site POST carries no SameSite=Lax cookie: re-post from our origin once.
        fields = sorted({k: v for k, v in query.items() if k not in request.query_params}.items())
        fields.append((RESUBMIT_FIELD, "1"))
        return request.app.state.pages.render(  # type: ignore[no-any-return]
            "autopost.html", title="Signing you in", action=str(request.url.path) + "?" + request.url.query,
            fields=fields, detail="Finishing sign-in…")
    query.pop(RESUBMIT_FIELD, None)
    clear_state = [runtime.cookies.delete(state_cookie_name, path=CALLBACK_PATH)] if state_id else []
    try:
        if not bound:
            raise LoginFailed("login state missing: callback opened in another browser, or expired", "expired")
        current_url = runtime.callback_url + "?" + request.url.query
        identity = await run_in_threadpool(runtime.exchange.complete, query, current_url, state_id)
    except LoginFailed as exc:
        runtime.failure_limiter.hit(client)
        logger.warning("sign-in failed for %s: %s", client, exc.reason)
        return redirect(runtime.login_url(next_target, exc.code), clear_state)
    cookies = await sign_in(request, identity, remember=query.get("remember") == "1")
    logger.info("signed in %s (%s) from %s", identity.user_id, identity.nickname, client)
    return redirect(next_target, clear_state + cookies)


async def logout(request: Request) -> Response:
    runtime = runtime_of(request)
    if request.method == "GET":
        next_param = request.query_params.get("next")
        fetch_site = request.headers.get("sec-fetch-site", "none")
        if fetch_site not in ("none", "same-origin"):
            # A cross-site GET (an <img>, a link on another site) must not sign anyone out.
            value, cookies = csrf_cookie(request)
            page = request.app.state.pages.render("logout.html", next=runtime.safe_next(next_param),
                                                  csrf_token=runtime.csrf.form_token(value))
            return add_cookies(page, cookies)
    else:
        form = await read_form(request)
        check_csrf(request, form)
        next_param = form_text(form, "next") or None
    clear = runtime.sign_out_cookies()
    try:
        await revoke_browser(request)
    except StoreUnavailable:
        logger.error("logout could not revoke server-side: store unavailable")
        page = request.app.state.pages.error(
            503, "Sign-out incomplete", "You were signed out in this browser, but the server could not record it. "
            "Please try again in a moment.")
        return add_cookies(page, clear)
    target = runtime.safe_next(next_param) if next_param else runtime.login_url("/", "signed-out")
    return redirect(target, clear)


async def revoke_browser(request: Request) -> None:
    """End this browser's session and remember-me series on the server, not only in the browser."""
    runtime = runtime_of(request)
    now = runtime.now()
    session = runtime.sessions.decode(request.cookies.get(runtime.settings.session_cookie), now)
    if session is not None:
        await run_in_threadpool(runtime.store.revoke_session, session.session_id, now)
        runtime.revocation.add(session.session_id)
        logger.info("signed out %s", session.identity.user_id)
    series_id = runtime.remember.series_of(request.cookies.get(runtime.settings.remember_cookie))
    if series_id is not None:
        await run_in_threadpool(runtime.remember.revoke, series_id, now)
