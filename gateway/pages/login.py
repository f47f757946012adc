"""``/login``: the login page (GET) and the start of an OpenID round trip (POST).

The round trip is kept server-side and bound to the browser that started it
(:mod:`gateway.signin.loginstate`): ``POST /login`` asks the sign-in methods
(:mod:`gateway.signin.methods`) which protocol the choice is, stores the login
state (with ``next`` and the remember-me choice) under a random id that only
travels in the provider request (``state``, or OpenID 2.0's ``return_to``), and
sets a short-lived cookie named after it; the callback
(:mod:`gateway.pages.callback`) signs in only when the browser presents
the matching cookie, so an assertion pushed into a victim's browser (login
CSRF) is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import LoginFailed, UnsafeRedirect
from gateway.observe.events import RememberRestored, SignInFailed, SignInStarted
from gateway.pages.forms import CSRFForms, form_text
from gateway.pages.languages import N_
from gateway.pages.render import add_cookies, redirect
from gateway.pages.services import Services
from gateway.pages.session_start import start_session
from gateway.pages.threads import run_in_threadpool
from gateway.signin.loginstate import new_state_id
from gateway.signin.logout_return import STATE_PARAM, LogoutStateRefused
from gateway.signin.methods import Started
from gateway.state.sessions import read_cookie, state_cookie_returns

logger = logging.getLogger("gateway.login")


class LoginEndpoints:
    """``GET /login`` and ``POST /login``."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.runtime = services.runtime
        self.forms = CSRFForms(services.runtime)
        settings = services.runtime.settings
        self.typed_openid = settings.typed_openid
        self.buttons = frozenset(p.identifier for p in settings.providers)

    async def page(self, request: Request) -> Response:
        runtime = self.runtime
        logout_state = request.query_params.get(STATE_PARAM)
        if logout_state is not None:  # back from logging out at the provider, with the next it carries
            after_logout = self.after_logout(logout_state, self.services.client(request))
            if after_logout is not None:
                return redirect(after_logout)
        next_target = runtime.next_targets.safe(request.query_params.get("next"))
        if self.services.current_session(request) is not None:
            return redirect(next_target)
        cookies: list[str] = []
        remember_cookie = read_cookie(request.headers.get("cookie"), runtime.remember_cookie_name)
        if remember_cookie:
            restored = await run_in_threadpool(runtime.remember.restore, remember_cookie, runtime.now())
            if restored is not None:
                cookies = await start_session(self.services, request, restored.identity, remember=True,
                                              series_id=restored.series_id)
                if restored.cookie is not None:
                    cookies.append(runtime.cookies.set(runtime.remember_cookie_name, restored.cookie,
                                                       max_age=runtime.settings.remember_lifetime))
                logger.info("session restored from remember-me for %s", restored.identity.user_id)
                runtime.events.emit(RememberRestored(restored.identity.user_id, self.services.client(request)))
                return redirect(next_target, cookies)
            cookies.append(runtime.cookies.delete(runtime.remember_cookie_name))
        return self.render(request, next_target, request.query_params.get("m"), cookies=cookies)

    def after_logout(self, state: str, client: str) -> str | None:
        """Where the ``state`` of a logout at the provider says to go, checked as any ``next``; None (logged)
        when it is not ours, too old, or names a target :func:`~gateway.gate.redirects.check_next` refuses."""
        try:
            return self.runtime.next_targets.check(self.runtime.logout_return.next_of(state))
        except LogoutStateRefused as exc:
            logger.warning("return from logout at the provider for %s: %s; plain login page", client, exc.reason)
        except UnsafeRedirect as exc:
            logger.warning("return from logout at the provider for %s: next %r refused (%s); plain login page",
                           client, exc.target[:200], exc.reason)
        return None

    def render(self, request: Request, next_target: str, message: str | None, *, identifier: str = "",
               remember: bool = False, status: int = 200, cookies: list[str] | None = None) -> Response:
        token, csrf_cookies = self.forms.form_token(request)
        response = self.services.pages.render(
            "login.html", status=status, message=message, next=next_target, identifier=identifier,
            remember=remember, providers=self.runtime.settings.providers, csrf_token=token,
            openid_field=self.typed_openid,
        )
        return add_cookies(response, (cookies or []) + csrf_cookies)

    async def submit(self, request: Request) -> Response:
        runtime = self.runtime
        form = await self.forms.read_checked(request)
        client = self.services.client(request)
        await run_in_threadpool(runtime.login_limiter.hit, client)  # counted in the store: every instance
        next_target = runtime.next_targets.safe(form_text(form, "next"))
        remember = form_text(form, "remember") in ("1", "on", "yes")
        identifier = form_text(form, "provider") or form_text(form, "identifier")
        if not self.typed_openid and identifier not in self.buttons:
            # No typed-in OpenID here (openid_field): a made-up "provider" value is one too.
            logger.warning("sign-in refused for %s: %r is not a configured provider and openid_field is off",
                           client, identifier[:200])
            runtime.events.emit(SignInFailed("", "refused", client))
            return self.render(request, next_target, "refused", remember=remember, status=400)
        host = request.headers.get("host", "")
        if not state_cookie_returns(host, runtime.settings.public_url, runtime.settings.cookie_domain):
            logger.warning("sign-in refused for %s: the browser is at %r but public_url is %s, so the login-state "
                           "cookie would not come back to the callback; set public_url to the address browsers use",
                           client, host[:200], runtime.settings.public_url)
            return self.render(request, next_target, "wrong-host", identifier=identifier[:1024], remember=remember,
                               status=400)
        return await self.start(request, identifier, next_target, remember)

    async def start(self, request: Request, choice: str, next_target: str, remember: bool,
                    extra: Mapping[str, object] | None = None) -> Response:
        """Send the browser to the provider ``choice`` names (a button's value or a typed OpenID).

        ``extra`` joins the login state's data (the account page's request to link, not sign in).
        """
        runtime = self.runtime
        client = self.services.client(request)
        state_id = new_state_id()
        method = runtime.methods.method_for(choice)
        name = method.name_of(choice)  # "" for a typed-in identifier

        def keep(started: Started) -> str:  # the login state, written on the sign-in thread that began it
            return runtime.login_states.begin(state_id, method.protocol, started.provider, next_target, remember,
                                              {**started.data, **(extra or {})})

        try:
            started, state_cookie = await runtime.methods.begin_and_keep(method, choice, state_id, keep)
        except LoginFailed as exc:
            logger.warning("sign-in start%s failed for %s: %s", f" with {name}" if name else "", client, exc.reason)
            runtime.events.emit(SignInFailed(name, exc.code, client))
            # A typed-in identifier that fails is the visitor's to correct (400, kept in the field);
            # a configured provider that fails is the provider's fault (502).
            if name:
                return self.render(request, next_target, exc.code, remember=remember, status=502)
            return self.render(request, next_target, exc.code, identifier=choice[:1024], remember=remember,
                               status=400)
        runtime.events.emit(SignInStarted(started.label, client))
        if started.form_fields is None:
            return redirect(started.url, [state_cookie])
        pages = self.services.pages
        response = pages.render(
            "autopost.html", title=pages.translate(N_("Continue to your provider")), action=started.url,
            fields=sorted(started.form_fields.items()),
            detail=pages.translate(N_("Taking you to your OpenID provider…")))
        return add_cookies(response, [state_cookie])
