"""RP-initiated logout (RP-Initiated Logout 1.0 §2) and back-channel logout (Back-Channel Logout 1.0 §2).

Ending a session at ``/logout`` posts a logout token to every client of that session
that registered a ``backchannel_logout_uri``, before the browser is sent back, so a test
(or a person) sees the relying party's sessions gone when the page loads.
``POST /_dev/backchannel-logout`` does the same without a browser, for a ``sid`` or a user.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from devtools.oidc_provider.clients import Client
from devtools.oidc_provider.keys import ALGORITHMS
from devtools.oidc_provider.pages import error_page, page
from devtools.oidc_provider.provider import Provider, parameters, with_query
from devtools.oidc_provider.state import User
from devtools.openid_provider.profiles import valid_username

PATH = "/logout"
DEV_PATH = "/_dev/backchannel-logout"
TIMEOUT = 5.0


@dataclass(frozen=True)
class Delivery:
    """What one back-channel logout POST got: the client's status code, or why there was none."""

    client_id: str
    uri: str
    status: int | None
    error: str | None = None


class Logout:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def routes(self) -> list[BaseRoute]:
        return [Route(PATH, self.end_session, methods=["GET", "POST"]),
                Route(DEV_PATH, self.dev_backchannel_logout, methods=["POST"])]

    async def send(self, issuer: str, clients: list[Client], user: User, sid: str | None) -> list[Delivery]:
        """POST a logout token to each client's back-channel logout URI (§2.5: form-encoded ``logout_token``)."""
        deliveries = []
        async with httpx.AsyncClient(trust_env=False, timeout=TIMEOUT, follow_redirects=False) as http:
            for client in clients:
                if client.backchannel_logout_uri is None:
                    continue
                token = self.provider.signer.logout_token(issuer, client, user, sid)
                try:
                    answer = await http.post(client.backchannel_logout_uri, data={"logout_token": token})
                except httpx.HTTPError as exc:
                    deliveries.append(Delivery(client.client_id, client.backchannel_logout_uri, None, repr(exc)))
                else:
                    deliveries.append(Delivery(client.client_id, client.backchannel_logout_uri, answer.status_code))
        return deliveries

    async def end(self, issuer: str, sid: str, only: Client | None = None) -> list[Delivery]:
        """End one provider session and tell its clients (or just ``only``)."""
        session = self.provider.sessions.take(sid)
        if session is None:
            return []
        clients = [only] if only is not None else self._clients(session.client_ids)
        return await self.send(issuer, clients, session.user, sid)

    def _clients(self, client_ids: set[str]) -> list[Client]:
        return [client for client_id in sorted(client_ids) if (client := self.provider.clients.get(client_id))]

    def _hint(self, issuer: str, hint: str) -> dict[str, Any] | None:
        """The claims of an ID token we issued (expired ones too: §2 allows them), or None."""
        try:
            token = jwt.decode(hint, self.provider.keys.public_key_set(), algorithms=list(ALGORITHMS))
        except (JoseError, ValueError):
            return None
        return token.claims if token.claims.get("iss") == issuer else None

    async def end_session(self, request: Request) -> Response:
        params = await parameters(request)
        issuer = self.provider.issuer(request)
        claims: dict[str, Any] = {}
        if params.get("id_token_hint"):
            hinted = self._hint(issuer, params["id_token_hint"])
            if hinted is None:
                return error_page(request, 400, "id_token_hint is not an ID token this provider issued.")
            claims = hinted
        audience = claims.get("aud")
        client_id = (audience[0] if isinstance(audience, list) and audience else audience) or params.get("client_id")
        if params.get("client_id") and client_id != params["client_id"]:
            return error_page(request, 400, "client_id differs from the id_token_hint's audience.")
        client = self.provider.clients.get(client_id) if isinstance(client_id, str) else None
        redirect = params.get("post_logout_redirect_uri")
        if redirect and (client is None or redirect not in client.post_logout_redirect_uris):
            return error_page(request, 400, "post_logout_redirect_uri is not one the client registered "
                                            "(compared exactly; it also needs id_token_hint or client_id).")
        sid = claims.get("sid")
        deliveries = await self.end(issuer, sid) if isinstance(sid, str) else []
        if redirect:
            state = params.get("state")
            return RedirectResponse(with_query(redirect, {"state": state} if state else {}), status_code=303)
        return page(request, "signed_out.html", {"ended": bool(deliveries) or isinstance(sid, str),
                                                 "deliveries": deliveries})

    async def dev_backchannel_logout(self, request: Request) -> Response:
        """``{"sid": ...}`` or ``{"username": ...}`` (optionally ``"client_id"``): log out without a browser.

        With a user name and a client but no session, a ``sub``-only token goes to that client.
        """
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not ({"sid", "username"} & body.keys()):
            return JSONResponse({"error": 'send {"sid": ...} or {"username": ...}'}, status_code=400)
        username, client_id = body.get("username"), body.get("client_id")
        if username is not None and not (isinstance(username, str) and valid_username(username)):
            return JSONResponse({"error": "not a valid user name"}, status_code=400)
        client = self.provider.clients.get(client_id) if isinstance(client_id, str) else None
        if client_id is not None and client is None:
            return JSONResponse({"error": f"unknown client_id {client_id!r}"}, status_code=400)
        issuer = self.provider.issuer(request)
        sessions = [sid for sid, session in self.provider.sessions.values()
                    if sid == body.get("sid") or session.user.username == username]
        deliveries = [delivery for sid in sessions for delivery in await self.end(issuer, sid, client)]
        if not sessions and client is not None and isinstance(username, str):
            deliveries = await self.send(issuer, [client], User(username, username, None, False, ()), None)
        return JSONResponse({"sessions_ended": sessions,
                             "deliveries": [asdict(delivery) for delivery in deliveries]})

