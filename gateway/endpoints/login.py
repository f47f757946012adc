"""``/login``: the login page (GET) and the start of an OpenID round trip (POST).

The round trip is kept server-side and bound to the browser that started it
(:mod:`gateway.loginstate`): ``POST /login`` stores the login state (with
``next`` and the remember-me choice) under a random id, puts only that id in
``return_to``, whose query parameters python3-openid requires to come back
unchanged, and sets a short-lived cookie named after it; the callback
(:mod:`gateway.endpoints.callback`) signs in only when the browser presents
the matching cookie, so an assertion pushed into a victim's browser (login
CSRF) is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from gateway.endpoints.forms import CSRFForms, form_text
from gateway.endpoints.services import Services
from gateway.endpoints.signin import start_session
from gateway.errors import LoginFailed, UnsafeRedirect
from gateway.events import RememberRestored, SignInFailed, SignInStarted
from gateway.loginstate import STATE_COOKIE_PREFIX as STATE_COOKIE_PREFIX  # re-exported: runtime names our cookies
from gateway.loginstate import STATE_FIELD, LoginStates, new_state_id
from gateway.redirects import check_next
from gateway.sessions import read_cookie
from gateway.settings import Provider
from gateway.signin.logout_return import STATE_PARAM, LogoutReturn, LogoutStateRefused
from gateway.web import add_cookies, redirect

logger = logging.getLogger("gateway.login")


def host_name(host: str) -> str:
    """The host name in a ``Host`` header or URL netloc: lower case, no port, no trailing dot ('' if none)."""
    try:
        return (urlsplit("//" + host).hostname or "").rstrip(".")
    except ValueError:
        return ""


def _domain_matches(host: str, domain: str) -> bool:
    domain = domain.lstrip(".").lower()
    return host == domain or host.endswith("." + domain)


def state_cookie_returns(request_host: str, public_url: str, cookie_domain: str = "") -> bool:
    """Whether a cookie set in answer to a request for ``request_host`` is sent to ``public_url``'s callback.

    The provider sends the browser back to ``public_url``; browsers match
    cookies by host name, not port (RFC 6265 §8.5), or by ``cookie_domain``.
    ``public_url = http://localhost:8080`` opened as ``127.0.0.1:8080`` is
    the classic setup mistake: the sign-in would fail only after the provider.
    An unknown host (no ``Host`` header) gets the benefit of the doubt.
    """
    ours, public = host_name(request_host), host_name(urlsplit(public_url).netloc)
    if not ours or ours == public:
        return True
    return bool(cookie_domain) and _domain_matches(ours, cookie_domain) and _domain_matches(public, cookie_domain)


class LoginEndpoints:
    """``GET /login`` and ``POST /login``."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.runtime = services.runtime
        self.forms = CSRFForms(services.runtime)
        self.states = LoginStates(self.runtime.store, self.runtime.login_states, self.runtime.cookies, self.runtime.now)
        runtime = self.runtime
        self.logout_return = LogoutReturn(runtime.settings.secret_key_values(), lambda: runtime.now())

    async def page(self, request: Request) -> Response:
        runtime = self.runtime
        logout_state = request.query_params.get(STATE_PARAM)
        if logout_state is not None:  # back from logging out at the provider, with the next it carries
            after_logout = self.after_logout(logout_state, self.services.client(request))
            if after_logout is not None:
                return redirect(after_logout)
        next_target = runtime.safe_next(request.query_params.get("next"))
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
        when it is not ours, too old, or names a target :func:`~gateway.redirects.check_next` refuses."""
        s = self.runtime.settings
        try:
            target = self.logout_return.next_of(state)
            return check_next(target, public_url=s.public_url, allowed_hosts=s.next_allowed_hosts,
                              max_length=s.max_next_length)
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
        )
        return add_cookies(response, (cookies or []) + csrf_cookies)

    async def submit(self, request: Request) -> Response:
        runtime = self.runtime
        form = await self.forms.read_checked(request)
        client = self.services.client(request)
        await run_in_threadpool(runtime.login_limiter.hit, client)  # counted in the store: every instance
        next_target = runtime.safe_next(form_text(form, "next"))
        remember = form_text(form, "remember") in ("1", "on", "yes")
        identifier = form_text(form, "provider") or form_text(form, "identifier")
        host = request.headers.get("host", "")
        if not state_cookie_returns(host, runtime.settings.public_url, runtime.settings.cookie_domain):
            logger.warning("sign-in refused for %s: the browser is at %r but public_url is %s, so the login-state "
                           "cookie would not come back to the callback; set public_url to the address browsers use",
                           client, host[:200], runtime.settings.public_url)
            return self.render(request, next_target, "wrong-host", identifier=identifier[:1024], remember=remember,
                               status=400)
        return await self.start(request, identifier, next_target, remember)

    async def start(self, request: Request, identifier: str, next_target: str, remember: bool,
                    extra: Mapping[str, object] | None = None) -> Response:
        """Send the browser to the provider ``identifier`` names (a button's value or a typed OpenID).

        ``extra`` joins the login state's data (the account page's request to link, not sign in).
        """
        runtime = self.runtime
        client = self.services.client(request)
        state_id = new_state_id()
        oidc_provider = runtime.oidc.provider_for(identifier) or runtime.oauth2.provider_for(identifier)
        if oidc_provider is not None:
            return await self.submit_oidc(request, oidc_provider, state_id, next_target, remember, extra)
        return_to = runtime.callback_url + "?" + urlencode({STATE_FIELD: state_id})
        try:
            provider_request = await runtime.signins.begin(identifier, return_to)
        except LoginFailed as exc:
            logger.warning("sign-in start failed for %s: %s", client, exc.reason)
            runtime.events.emit(SignInFailed("", exc.code, client))
            return self.render(request, next_target, exc.code, identifier=identifier[:1024], remember=remember,
                               status=400)
        state_cookie = await run_in_threadpool(self.states.begin, state_id, "openid2", provider_request.provider,
                                               next_target, remember, {**provider_request.pending, **(extra or {})})
        runtime.events.emit(SignInStarted(runtime.provider_label(provider_request.provider), client))
        if provider_request.form_fields is None:
            return redirect(provider_request.url, [state_cookie])
        response = self.services.pages.render(
            "autopost.html", title="Continue to your provider", action=provider_request.url,
            fields=sorted(provider_request.form_fields.items()), detail="Taking you to your OpenID provider…")
        return add_cookies(response, [state_cookie])

    async def submit_oidc(self, request: Request, provider: Provider, state_id: str, next_target: str,
                          remember: bool, extra: Mapping[str, object] | None = None) -> Response:
        """Send the browser to an OpenID Connect (or OAuth 2.0) provider; discovery is fetched on a sign-in thread."""
        runtime = self.runtime
        client = self.services.client(request)
        exchange = runtime.oidc if provider.type == "oidc" else runtime.oauth2
        try:
            authorization = await runtime.signins.run(lambda: exchange.begin(provider, state_id))
        except LoginFailed as exc:
            logger.warning("sign-in start with %s failed for %s: %s", provider.name, client, exc.reason)
            runtime.events.emit(SignInFailed(provider.name, exc.code, client))
            return self.render(request, next_target, exc.code, remember=remember, status=502)
        state_cookie = await run_in_threadpool(self.states.begin, state_id, provider.type, provider.issuer,
                                               next_target, remember, {**authorization.data, **(extra or {})})
        runtime.events.emit(SignInStarted(provider.name, client))
        return redirect(authorization.url, [state_cookie])
