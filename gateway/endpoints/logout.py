"""``/logout``: end the session and its remember-me series on the server, then leave."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from gateway.endpoints.forms import CSRFForms, form_text
from gateway.endpoints.services import Services
from gateway.errors import StoreUnavailable
from gateway.web import add_cookies, redirect

logger = logging.getLogger("gateway.login")


class LogoutEndpoint:
    """``GET/POST /logout``; a cross-site GET gets a confirmation page instead."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.runtime = services.runtime
        self.forms = CSRFForms(services.runtime)

    async def logout(self, request: Request) -> Response:
        runtime = self.runtime
        if request.method == "GET":
            next_param = request.query_params.get("next")
            fetch_site = request.headers.get("sec-fetch-site", "none")
            if fetch_site not in ("none", "same-origin"):
                # A cross-site GET (an <img>, a link on another site) must not sign anyone out.
                token, cookies = self.forms.form_token(request)
                page = self.services.pages.render("logout.html", next=runtime.safe_next(next_param),
                                                  csrf_token=token)
                return add_cookies(page, cookies)
        else:
            form = await self.forms.read_checked(request)
            next_param = form_text(form, "next") or None
        clear = runtime.sign_out_cookies()
        try:
            await self.revoke_browser(request)
        except StoreUnavailable:
            logger.error("logout could not revoke server-side: store unavailable")
            page = self.services.pages.error(
                503, "Sign-out incomplete", "You were signed out in this browser, but the server could not record "
                "it. Please try again in a moment.")
            return add_cookies(page, clear)
        target = runtime.safe_next(next_param) if next_param else runtime.login_url("/", "signed-out")
        return redirect(target, clear)

    async def revoke_browser(self, request: Request) -> None:
        """End this browser's session and remember-me series on the server, not only in the browser."""
        runtime = self.runtime
        now = runtime.now()
        session = runtime.sessions.decode(request.cookies.get(runtime.settings.session_cookie), now)
        if session is not None:
            await run_in_threadpool(runtime.store.revoke_session, session.session_id, now)
            runtime.revocation.add(session.session_id)
            logger.info("signed out %s", session.identity.user_id)
        series_id = runtime.remember.series_of(request.cookies.get(runtime.settings.remember_cookie))
        if series_id is not None:
            await run_in_threadpool(runtime.remember.revoke, series_id, now)
