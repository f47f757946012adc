"""``/logout``: end the whole login on the server, then leave.

"The whole login" is every session cookie the browser sent that verifies
(a sibling subdomain or an old ``cookie_domain`` can leave several), the
remember-me series they and the remember-me cookies belong to, and every
session restored from those series (a browser restart, a second device).

With ``logout_at_provider`` the browser then goes to the provider's
end-session endpoint, which can only send it back to the registered
``/login?m=signed-out``: a ``next`` goes along signed in the ``state``
(:mod:`gateway.signin.logout_return`), and the login page checks it again.

That URL carries the sign-in's ID token (``id_token_hint``), so only a session
cookie, or a remember-me cookie holding its series' own token, leads to it. A
rotated-away remember-me token is theft evidence
(:meth:`RememberMe.presented <gateway.state.remember.RememberMe.presented>`):
its series ends and its holder is signed out here only.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import LoginFailed, StoreUnavailable
from gateway.gate.redirects import FALLBACK
from gateway.observe.events import SignedOut, hash_id
from gateway.pages.forms import CSRFForms, form_text
from gateway.pages.languages import N_
from gateway.pages.render import add_cookies, redirect
from gateway.pages.services import Services
from gateway.pages.signout import SignOut
from gateway.pages.threads import run_in_threadpool
from gateway.state.sessions import read_cookies

logger = logging.getLogger("gateway.login")

# Sec-Fetch-Site values of a navigation the person made on this site or typed themselves.
SIGN_OUT_AT_ONCE = frozenset({"same-origin", "none"})


class LogoutEndpoint:
    """``GET/POST /logout``; a GET that may come from elsewhere gets a confirmation page instead."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.runtime = services.runtime
        self.paths = services.runtime.paths
        self.forms = CSRFForms(services.runtime)
        self.sign_out = SignOut(services.runtime)
        runtime = services.runtime
        self.logout_return = runtime.logout_return

    async def logout(self, request: Request) -> Response:
        runtime = self.runtime
        cookie_header = request.headers.get("cookie")
        if request.method == "GET":
            next_param = request.query_params.get("next")
            if request.headers.get("sec-fetch-site") not in SIGN_OUT_AT_ONCE and self.signed_in(cookie_header):
                # Another site (an <img>, a link), a sibling subdomain, or a browser that does not
                # say where the request came from: none of them may sign anyone out.
                token, cookies = self.forms.form_token(request)
                try:  # the page says who is signed in, when the store can tell
                    session = self.services.current_session(request)
                except StoreUnavailable:
                    session = None
                page = self.services.pages.render("logout.html", next=runtime.next_targets.safe(next_param),
                                                  csrf_token=token, identity=session.identity if session else None)
                return add_cookies(page, cookies)
        else:
            form = await self.forms.read_checked(request)
            next_param = form_text(form, "next") or None
        clear = runtime.sign_out_cookies()
        try:
            session_ids, series_ids = await self.revoke_browser(cookie_header, self.services.client(request))
        except StoreUnavailable:
            page = self.services.pages.error(
                503, N_("Sign-out incomplete"), N_("You were signed out in this browser, but the server could not"
                                                   " record it. Please try again in a moment."))
            return add_cookies(page, clear)
        target = runtime.next_targets.safe(next_param) if next_param else None
        at_provider = await self.provider_logout_url(session_ids, series_ids, target)
        if at_provider is not None:  # the provider sends the person back to our login page (and on to target)
            return redirect(at_provider, clear)
        return redirect(target or self.paths.login_url("/", "signed-out"), clear)

    async def provider_logout_url(self, session_ids: list[str], series_ids: list[str],
                                  next_target: str | None = None) -> str | None:
        """RP-initiated logout: the provider's ``end_session_endpoint`` for the first of these sessions, then of
        these remember-me series, signed in with an ``oidc`` provider set to ``logout_at_provider``; None when there
        is none, or it cannot be reached.

        The ID token (the ``id_token_hint``) comes from the store: it never rides in a cookie. A series' sign-in
        is kept while the series lives, so a browser left with its remember-me cookie only (a restart, every
        session of the series over and purged) is signed out at the provider too.
        ``next_target`` (checked) rides in the ``state``, signed; without it (or when it is ``/``) the
        provider sends the person to the plain "signed out" login page.
        """
        runtime = self.runtime
        if not (session_ids or series_ids) or not any(p.logout_at_provider for p in runtime.oidc.providers.values()):
            return None
        # "/" is every form's default (the confirmation page sends it): the signed-out page says more.
        state = self.logout_return.state(next_target) if next_target not in (None, FALLBACK) else None
        store = runtime.store
        lookups = ([(store.get_provider_session, session_id) for session_id in session_ids]
                   + [(store.get_series_provider_session, series_id) for series_id in series_ids])
        try:
            for lookup, key in lookups:
                login = await run_in_threadpool(lookup, key)
                if login is None:
                    continue
                url = await run_in_threadpool(runtime.oidc.end_session_url, login.provider, login.id_token,
                                              runtime.settings.public_origin + self.paths.post_logout, state)
                if url is not None:
                    return url
        except (StoreUnavailable, LoginFailed) as exc:
            logger.warning("logout at the provider skipped (signed out here only): %s", exc)
        return None

    def signed_in(self, cookie_header: str | None) -> bool:
        """Whether the request carries any session or remember-me cookie (only then is there anything to end)."""
        runtime = self.runtime
        return bool(read_cookies(cookie_header, runtime.session_cookie_name)
                    or read_cookies(cookie_header, runtime.remember_cookie_name))

    async def revoke_browser(self, cookie_header: str | None, client: str) -> tuple[list[str], list[str]]:
        """End every session and series this browser's cookies name, on the server, not only in the browser.

        Returns the ids of the sessions its cookies named and of their remember-me series (where the
        provider's ID token is found after a browser restart): the series of those sessions, and of the
        remember-me cookies that are their series' own (a stale token ends its series, as theft, and
        leads to no ID token).
        """
        runtime = self.runtime
        now = runtime.now()
        sessions = [session for value in read_cookies(cookie_header, runtime.session_cookie_name)
                    if (session := runtime.sessions.decode(value, now)) is not None]
        session_ids = {session.session_id for session in sessions}
        # In order, without repeats: the series of the sessions first, then of the remember-me cookies.
        series_ids = dict.fromkeys(session.series_id for session in sessions if session.series_id is not None)
        genuine = dict(series_ids)
        self.sign_out.here(session_ids)  # before judging the remember-me cookies, which asks the store
        for value in read_cookies(cookie_header, runtime.remember_cookie_name):
            presented = await run_in_threadpool(runtime.remember.presented, value, now)
            if presented is not None:  # ended whatever it is: this is a logout
                series_ids[presented.series_id] = None
                if presented.genuine:
                    genuine[presented.series_id] = None
        if not session_ids and not series_ids:
            return [], []
        try:
            await self.sign_out.end(session_ids, series_ids)
        except StoreUnavailable:
            logger.error("logout could not reach the store: sessions %s revoked in this process only, "
                         "remember-me series %s not revoked", sorted(map(hash_id, session_ids)) or "none",
                         sorted(map(hash_id, series_ids)) or "none")
            raise
        users: dict[str, int] = {}
        for session in sessions:
            logger.info("signed out %s (session %s)", session.identity.user_id, hash_id(session.session_id))
            users[session.identity.user_id] = users.get(session.identity.user_id, 0) + 1
        for user, count in users.items():
            runtime.events.emit(SignedOut(user, count, client))
        return [session.session_id for session in sessions], list(genuine)
