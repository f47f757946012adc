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

Step-up: the gate sends a person whose sign-in is too old or too weak for a rule
here with ``max_age``/``acr_values`` (:meth:`Paths.login_url <gateway.paths.Paths.login_url>`).
A signed-in person goes straight back to the provider of their session, asked
for what the rule wants (no chooser: the account is known); anyone else gets the
login page, whose form carries the request on. The login state records it, and
the callback refuses an answer that does not meet it. A remember-me restore is
no authentication: it restores the series' recorded sign-in, which the gate
judges again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

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
from gateway.paths import ACR_VALUES_PARAM, MAX_AGE_PARAM
from gateway.signin.loginstate import new_state_id, step_up_data
from gateway.signin.logout_return import STATE_PARAM, LogoutStateRefused
from gateway.signin.methods import Started
from gateway.state.sessions import Session, read_cookie, state_cookie_returns
from gateway.types import StepUp

logger = logging.getLogger("gateway.login")

MAX_ACR_VALUES = 10


def step_up_asked(fields: Mapping[str, Any]) -> StepUp | None:
    """The step-up the login URL (or the login form) asks for: ``max_age`` (whole seconds > 0) and
    ``acr_values`` (space-separated); None when it asks none, or asks it malformed.

    Nothing here is trusted: it only says what to ask the provider for. The gate judges the session
    it leads to against its own rules, and the callback the answer against what this asked.
    """
    max_age, acr_values = fields.get(MAX_AGE_PARAM), fields.get(ACR_VALUES_PARAM)
    if not isinstance(max_age, str) or not max_age:
        max_age = None
    if not isinstance(acr_values, str):
        acr_values = ""
    if max_age is None and not acr_values:
        return None
    values = tuple(acr_values.split())
    if (max_age is not None and not (max_age.isascii() and max_age.isdigit() and 0 < int(max_age) < 10**9)) \
            or len(values) > MAX_ACR_VALUES or any(len(value) > 200 for value in values):
        return None
    return StepUp(int(max_age) if max_age is not None else None, values)


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
        step_up = step_up_asked(request.query_params)
        session = self.services.current_session(request)
        if session is not None:
            if step_up is not None:
                return await self.step_up(request, session, step_up, next_target)
            return redirect(next_target)
        cookies: list[str] = []
        remember_cookie = read_cookie(request.headers.get("cookie"), runtime.remember_cookie_name)
        if remember_cookie:
            restored = await run_in_threadpool(runtime.remember.restore, remember_cookie, runtime.now())
            if restored is not None:
                cookies = await start_session(self.services, request, restored.identity, remember=True,
                                              series_id=restored.series_id, assurance=restored.assurance)
                if restored.cookie is not None:
                    cookies.append(runtime.cookies.set(runtime.remember_cookie_name, restored.cookie,
                                                       max_age=runtime.settings.remember_lifetime))
                logger.info("session restored from remember-me for %s", restored.identity.user_id)
                runtime.events.emit(RememberRestored(restored.identity.user_id, self.services.client(request)))
                return redirect(next_target, cookies)
            cookies.append(runtime.cookies.delete(runtime.remember_cookie_name))
        message = request.query_params.get("m") or ("step-up" if step_up is not None else None)
        return self.render(request, next_target, message, cookies=cookies, step_up=step_up)

    async def step_up(self, request: Request, session: Session, step_up: StepUp, next_target: str) -> Response:
        """Send a signed-in person back to the provider of their session, asked for ``step_up``.

        Their choice of provider is known (the session's, or their OpenID 2.0 identifier); only where it
        no longer is (a provider removed from the configuration) do they get the login page to choose.
        Remembered as their session was.
        """
        identity = session.identity
        choice = next((p.identifier for p in self.runtime.settings.providers if p.name == identity.provider), None)
        if choice is None and self.typed_openid:  # an OpenID 2.0 sign-in: its claimed identifier finds its provider
            choice = identity.user_id
        if choice is None:
            return self.render(request, next_target, None, step_up=step_up)
        # A GET that starts a sign-in (a login state in the store) counts as POST /login does: a signed-in
        # client cannot fill the store with step-ups.
        await run_in_threadpool(self.runtime.login_limiter.hit, self.services.client(request))
        logger.info("step-up for %s at %s: %s", identity.user_id, identity.provider or choice,
                    _describe(step_up))
        return await self.start(request, choice, next_target, session.series_id is not None, step_up=step_up)

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
               remember: bool = False, status: int = 200, cookies: list[str] | None = None,
               step_up: StepUp | None = None) -> Response:
        token, csrf_cookies = self.forms.form_token(request)
        response = self.services.pages.render(
            "login.html", status=status, message=message, next=next_target, identifier=identifier,
            remember=remember, providers=self.runtime.settings.providers, csrf_token=token,
            openid_field=self.typed_openid, max_age=step_up.max_age if step_up is not None else None,
            acr_values=" ".join(step_up.acr_values) if step_up is not None else "",
        )
        return add_cookies(response, (cookies or []) + csrf_cookies)

    async def submit(self, request: Request) -> Response:
        runtime = self.runtime
        form = await self.forms.read_checked(request)
        client = self.services.client(request)
        await run_in_threadpool(runtime.login_limiter.hit, client)  # counted in the store: every instance
        next_target = runtime.next_targets.safe(form_text(form, "next"))
        step_up = step_up_asked({MAX_AGE_PARAM: form_text(form, MAX_AGE_PARAM),
                                 ACR_VALUES_PARAM: form_text(form, ACR_VALUES_PARAM)})
        remember = form_text(form, "remember") in ("1", "on", "yes")
        identifier = form_text(form, "provider") or form_text(form, "identifier")
        if not self.typed_openid and identifier not in self.buttons:
            # No typed-in OpenID here (openid_field): a made-up "provider" value is one too.
            logger.warning("sign-in refused for %s: %r is not a configured provider and openid_field is off",
                           client, identifier[:200])
            runtime.events.emit(SignInFailed("", "refused", client))
            return self.render(request, next_target, "refused", remember=remember, status=400, step_up=step_up)
        host = request.headers.get("host", "")
        if not state_cookie_returns(host, runtime.settings.public_url, runtime.settings.cookie_domain):
            logger.warning("sign-in refused for %s: the browser is at %r but public_url is %s, so the login-state "
                           "cookie would not come back to the callback; set public_url to the address browsers use",
                           client, host[:200], runtime.settings.public_url)
            return self.render(request, next_target, "wrong-host", identifier=identifier[:1024], remember=remember,
                               status=400, step_up=step_up)
        return await self.start(request, identifier, next_target, remember, step_up=step_up)

    async def start(self, request: Request, choice: str, next_target: str, remember: bool,
                    extra: Mapping[str, object] | None = None, step_up: StepUp | None = None) -> Response:
        """Send the browser to the provider ``choice`` names (a button's value or a typed OpenID).

        ``extra`` joins the login state's data (the account page's request to link, not sign in).
        ``step_up``: asked of the provider, and recorded in the login state for the callback to judge.
        """
        runtime = self.runtime
        client = self.services.client(request)
        state_id = new_state_id()
        method = runtime.methods.method_for(choice)
        name = method.name_of(choice)  # "" for a typed-in identifier

        def keep(started: Started) -> str:  # the login state, written on the sign-in thread that began it
            return runtime.login_states.begin(state_id, method.protocol, started.provider, next_target, remember,
                                              {**started.data, **(extra or {}), **step_up_data(step_up)})

        try:
            started, state_cookie = await runtime.methods.begin_and_keep(method, choice, state_id, keep, step_up)
        except LoginFailed as exc:
            logger.warning("sign-in start%s failed for %s: %s", f" with {name}" if name else "", client, exc.reason)
            runtime.events.emit(SignInFailed(name, exc.code, client))
            # A typed-in identifier that fails is the visitor's to correct (400, kept in the field);
            # a configured provider that fails is the provider's fault (502).
            if name:
                return self.render(request, next_target, exc.code, remember=remember, status=502, step_up=step_up)
            return self.render(request, next_target, exc.code, identifier=choice[:1024], remember=remember,
                               status=400, step_up=step_up)
        runtime.events.emit(SignInStarted(started.label, client))
        if started.form_fields is None:
            return redirect(started.url, [state_cookie])
        pages = self.services.pages
        response = pages.render(
            "autopost.html", title=pages.translate(N_("Continue to your provider")), action=started.url,
            fields=sorted(started.form_fields.items()),
            detail=pages.translate(N_("Taking you to your OpenID provider…")))
        return add_cookies(response, [state_cookie])


def _describe(step_up: StepUp) -> str:
    """``max_age=120 acr_values=a b``: a step-up as the logs say it."""
    parts = [f"max_age={step_up.max_age}"] if step_up.max_age is not None else []
    return " ".join([*parts, *([f"acr_values={' '.join(step_up.acr_values)}"] if step_up.acr_values else [])])
