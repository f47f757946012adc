"""``POST /_gateway/backchannel-logout``: an OpenID Connect provider ends sessions it vouched for.

Server to server (OpenID Connect Back-Channel Logout 1.0 §2.5-2.8): no
cookie, no CSRF token; the logout token's signature is the authentication
(:mod:`gateway.signin.oidc.logout_token`). Its ``jti`` is recorded in the store,
so a replay is refused by every worker. The matching sessions are revoked in
the store's revocation log, which every worker reads within its revocation
refresh. The answer is 200, or 400 with a JSON reason code (nothing more: the
log has the details), never a 500.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.errors import BadRequest, SignInBusy, StoreUnavailable
from gateway.observe.events import SignedOut, hash_id
from gateway.pages.forms import read_form
from gateway.pages.services import Services
from gateway.pages.signout import SignOut
from gateway.pages.threads import run_in_threadpool
from gateway.signin.oidc.exchange import user_id
from gateway.signin.oidc.logout_token import LogoutRequest, LogoutTokenRefused, LogoutTokenVerifier

logger = logging.getLogger("gateway.login")
NO_STORE = {"Cache-Control": "no-store"}  # §2.8


def _refused(code: str, status: int = 400) -> Response:
    return JSONResponse({"error": "invalid_request", "reason": code}, status_code=status, headers=NO_STORE)


class BackchannelLogoutEndpoint:
    """Verifies logout tokens and revokes the sessions they name, everywhere."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.runtime = services.runtime
        oidc = self.runtime.oidc
        self.verifier = LogoutTokenVerifier(oidc.providers, oidc.metadata, self.runtime.now)
        self.sign_out = SignOut(self.runtime)

    async def logout(self, request: Request) -> Response:
        runtime = self.runtime
        client = self.services.client(request)
        try:
            form = await read_form(request, runtime.settings.max_form_bytes)
        except BadRequest as exc:
            logger.warning("back-channel logout from %s refused: unreadable form (%s)", client, exc)
            return _refused("malformed")
        token = form.get("logout_token")
        try:
            await run_in_threadpool(runtime.failure_limiter.check, client)  # store down: the JSON 503 below
            # It may fetch the provider's keys: on the sign-in threads, under their cap, never the shared pool.
            token_text = token if isinstance(token, str) else ""
            verified = await runtime.methods.capacity.run(lambda: self.verifier.verify(token_text))
            if not await run_in_threadpool(runtime.store.use_logout_token, verified.issuer, verified.jti,
                                           verified.remember_until, runtime.now()):
                raise LogoutTokenRefused("replayed", f"logout token {hash_id(verified.jti)} from "
                                                     f"{verified.provider} was already used")
        except LogoutTokenRefused as exc:
            await run_in_threadpool(runtime.failure_limiter.hit, client)
            logger.warning("back-channel logout from %s refused (%s): %s", client, exc.code, exc.reason)
            return _refused(exc.code)
        except StoreUnavailable as exc:
            logger.error("back-channel logout from %s: store unavailable: %s", client, exc)
            return _refused("temporarily-unavailable", 503)
        except SignInBusy:
            logger.warning("back-channel logout from %s: every sign-in thread busy, provider asked to retry", client)
            return _refused("temporarily-unavailable", 503)
        return await self.revoke(verified, client)

    async def revoke(self, verified: LogoutRequest, client: str) -> Response:
        """End the sessions; a store outage is a 503 the provider may retry (its jti is then spent, alas)."""
        try:
            ended = await self.sign_out.end_at_provider(verified.provider, verified.sub, verified.sid)
        except StoreUnavailable as exc:
            logger.error("back-channel logout from %s could not reach the store: %s", verified.provider, exc)
            return _refused("temporarily-unavailable", 503)
        who = (user_id(verified.issuer, verified.sub) if verified.sub
               else f"{verified.issuer} sid {hash_id(verified.sid or '')}")
        logger.info("back-channel logout from %s (%s): %s signed out, sessions %s", verified.provider, client, who,
                    sorted(map(hash_id, ended)) or "none")
        self.runtime.events.emit(SignedOut(who, len(ended), client))
        return Response(status_code=200, headers=NO_STORE)


__all__ = ["BackchannelLogoutEndpoint"]
