"""``GET /_gateway/auth``: nginx's ``auth_request`` asks "who is this?" (mode 1).

This runs on every request of the protected site, so it is plain ASGI and does no I/O: the gate
(:class:`~gateway.gate.authenticate.Authenticator`) decides, this door only says the verdict the
way nginx reads it:

* ``200`` with the identity headers and their proof (nginx copies them into
  the proxied request with ``auth_request_set``), ``X-Gateway-Cookie``: the
  Cookie header for the app, without the gateway's own cookies (they sign a
  person in; kept with ``pass_gateway_cookies``), plus ``Set-Cookie`` when the
  session cookie is due for its idle-timeout refresh. On a public path: no
  identity headers at all, even for a signed-in person;
  with ``identity_assertion = "jwt"`` or ``"both"`` the signed JWT
  (``X-Gateway-Assertion``, :mod:`gateway.gate.assertion`) comes too; with "jwt" no HMAC proof;
* ``401`` with ``X-Gateway-Login: /login?next=<original URI, encoded>`` for
  nginx's ``error_page 401`` redirect (nginx has no way to encode it itself);
* ``403`` when a rule refuses the signed-in person (nginx shows the gateway's
  403 page, never the login page again: no redirect loop);
* with 401 and 403, ``X-Gateway-Api: 1`` when the client is not a browser
  navigating (:mod:`gateway.gate.answers`): nginx then answers JSON;
* a bearer token's refusal (:meth:`~gateway.gate.authenticate.Authenticator.check_bearer`):
  401 or 403 with ``X-Gateway-Api: 1`` and ``X-Gateway-Bearer``, the RFC 6750 challenge nginx
  sends as ``WWW-Authenticate``; an allowed request with an ``Authorization`` header gets it back
  as ``X-Gateway-Authorization`` for the app, except a bearer token that authenticated it (unless
  ``pass_bearer_token``);
* ``503`` when revocations cannot be checked (store down): fail closed.

nginx must pass the original request as ``X-Original-URI`` (``$request_uri``),
``X-Original-Method`` (``$request_method``) and ``Host`` (``$http_host``, as it
sends to the app): the proof is bound to them. A request to this path with
``X-Forwarded-Uri`` and no ``X-Original-URI`` is Caddy's or Traefik's
(:mod:`gateway.front.forward_auth`). A request that names neither (or names
``X-Forwarded-Uri`` from an address outside ``trusted_proxies``) says nothing
the gateway could judge: it is refused with 400 and logged, never judged as
``GET /`` (every rule would be void, and a signed-in person would get 200
with identity headers for any path).

Every answer carries ``Content-Length: 0`` so that the server writes it in one piece instead of as a
chunked body (one syscall and one TCP segment less per check).
"""

from __future__ import annotations

from gateway.front.forward_auth import ForwardAuth
from gateway.gate.authenticate import Authenticator, scan_headers
from gateway.gate.clientaddr import ClientAddress
from gateway.observe import metrics
from gateway.types import Receive, Scope, Send

_NO_STORE = (b"cache-control", b"no-store")
_NO_BODY = (b"content-length", b"0")
_EMPTY_BODY = {"type": "http.response.body", "body": b""}
_API = (b"x-gateway-api", b"1")
_LOGIN = b"x-gateway-login"
_BEARER = b"x-gateway-bearer"
ROUTE = "auth"  # its answers in gateway_requests_total (counted here, not by a wrapper around send per check)


class AuthRequest:
    """The auth endpoint of mode 1: nginx's dialect, and Caddy's or Traefik's through :class:`ForwardAuth`."""

    def __init__(self, auth: Authenticator, client_address: ClientAddress, forward_auth: ForwardAuth) -> None:
        self.auth = auth
        self.client_address = client_address
        self.forward_auth = forward_auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cookie, uri, method, _, host, authorization = scan_headers(scope["headers"])
        if uri is None:  # not nginx: Caddy or Traefik? (gateway.front.forward_auth)
            forwarded = self.forward_auth.forwarded(scope)
            counted = metrics.counting(ROUTE, send)
            if forwarded is not None:
                await self.forward_auth(scope, receive, counted, cookie, forwarded, authorization)
            else:
                await self.forward_auth.refuse_unknown(scope, receive, counted)
            return
        method = method or "GET"
        host = host or ""
        verdict = (self.auth.check(cookie, method, host, uri) if authorization is None
                   else await self.auth.check_bearer(authorization, cookie, method, host, uri))
        status = verdict.status
        if status == 200:
            headers = self.auth.allow_headers(verdict, cookie, method, host, uri, authorization)
        elif status == 503:
            headers = [_NO_STORE, _NO_BODY]
        else:
            self.client_address.set_request_id(scope)  # nginx's $request_id (protect.conf)
            self.auth.log_refusal(verdict, method, host, uri)
            headers = [_NO_STORE, _NO_BODY]
            if verdict.challenge:
                headers += (_API, (_BEARER, verdict.challenge))
            elif self.auth.refusal_is_api(scope["headers"], uri.partition("?")[0]):
                headers.append(_API)
            if status == 401:
                headers.append((_LOGIN, verdict.login.encode("latin-1")))
        metrics.count_request(ROUTE, status)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(_EMPTY_BODY)
