"""``/_gateway/callback``: the provider's answer (``return_to``), judged and turned into a session.

A provider may answer with a cross-site auto-submitted POST, which
SameSite=Lax cookies do not accompany; such a callback is re-posted once from
our own origin (a same-origin POST carries the cookie) before it is judged.
"""

from __future__ import annotations

import logging
import re

from starlette.requests import Request
from starlette.responses import Response

from gateway.endpoints.forms import MAX_FIELDS, read_form
from gateway.endpoints.login import STATE_COOKIE_PREFIX, STATE_LIFETIME, state_cookie_returns
from gateway.endpoints.services import Services
from gateway.endpoints.signin import start_session
from gateway.errors import BadRequest, LoginFailed
from gateway.runtime import CALLBACK_PATH
from gateway.web import redirect

logger = logging.getLogger("gateway.login")

RESUBMIT_FIELD = "gw_resubmit"
STATE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # secrets.token_urlsafe's alphabet


class CallbackEndpoint:
    """``GET/POST /_gateway/callback``."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.runtime = services.runtime

    async def callback(self, request: Request) -> Response:
        runtime = self.runtime
        client = self.services.client(request)
        runtime.failure_limiter.check(client)
        query: dict[str, str] = dict(request.query_params)
        if len(request.query_params) > MAX_FIELDS * 2:
            raise BadRequest("too many query parameters")
        if request.method == "POST":
            form = await read_form(request, runtime.settings.max_form_bytes)
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
            return self.services.pages.render(
                "autopost.html", title="Signing you in", action=str(request.url.path) + "?" + request.url.query,
                fields=fields, detail="Finishing sign-in…")
        query.pop(RESUBMIT_FIELD, None)
        clear_state = [runtime.cookies.delete(state_cookie_name, path=CALLBACK_PATH)] if state_id else []
        try:
            if not bound:
                raise self.state_missing(request)
            current_url = runtime.callback_url + "?" + request.url.query
            identity = await runtime.signins.complete(query, current_url, state_id)
        except LoginFailed as exc:
            runtime.failure_limiter.hit(client)
            logger.warning("sign-in failed for %s: %s", client, exc.reason)
            return redirect(runtime.login_url(next_target, exc.code), clear_state)
        cookies = await start_session(self.services, request, identity, remember=query.get("remember") == "1")
        logger.info("signed in %s (%s) from %s", identity.user_id, identity.nickname, client)
        return redirect(next_target, clear_state + cookies)

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
