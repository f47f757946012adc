"""``GET /_gateway/auth``: nginx's ``auth_request`` asks "who is this?".

This runs on every request of the protected site, so it is plain ASGI and does
no I/O: the session cookie is verified with HMAC, revocation is a set lookup
(:mod:`gateway.revocation`), and the proof for the app is one more HMAC.

Who may reach what is decided by :mod:`gateway.access` (the rules), the one
decision both modes share: :meth:`AuthCheck.check` authenticates and asks it.

Answers:

* ``200`` with the identity headers and their proof (nginx copies them into
  the proxied request with ``auth_request_set``), ``X-Gateway-Cookie``: the
  Cookie header for the app, without the gateway's own cookies (they sign a
  person in; kept with ``pass_gateway_cookies``), plus ``Set-Cookie`` when the
  session cookie is due for its idle-timeout refresh. On a public path: no
  identity headers at all, even for a signed-in person;
  with ``identity_assertion = "jwt"`` or ``"both"`` the signed JWT
  (``X-Gateway-Assertion``, :mod:`gateway.assertion`) comes too; with "jwt" no HMAC proof;
* ``401`` with ``X-Gateway-Login: /login?next=<original URI, encoded>`` for
  nginx's ``error_page 401`` redirect (nginx has no way to encode it itself);
* ``403`` when a rule refuses the signed-in person (nginx shows the gateway's
  403 page, never the login page again: no redirect loop);
* with 401 and 403, ``X-Gateway-Api: 1`` when the client is not a browser
  navigating (:mod:`gateway.answers`): nginx then answers JSON;
* ``503`` when revocations cannot be checked (store down): fail closed.

nginx must pass the original request as ``X-Original-URI`` (``$request_uri``),
``X-Original-Method`` (``$request_method``) and ``Host`` (``$http_host``, as it
sends to the app): the proof is bound to them.

Kept lean (``python -m bench`` measures it): the session codec remembers
verified cookies for a few seconds, the encoded identity headers are built
once per identity, and every answer carries ``Content-Length: 0`` so that the
server writes it in one piece instead of as a chunked body (one syscall and
one TCP segment less per check). What stays per request: the lifetimes, the
revocation lookup, the store's health and a fresh proof.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from gateway import metrics
from gateway.access import Decision, Person
from gateway.answers import is_api_request
from gateway.audit import request_id_from
from gateway.errors import StoreUnavailable
from gateway.events import Forbidden, SignInRequired, request_id
from gateway.proof import encode_groups, encode_identity
from gateway.runtime import Runtime
from gateway.sessions import Session, read_cookie, strip_cookies
from gateway.types import Identity, Receive, Scope, Send

if TYPE_CHECKING:
    from gateway.forwardauth import ForwardAuth

logger = logging.getLogger("gateway.access")

_NO_STORE = (b"cache-control", b"no-store")
_NO_BODY = (b"content-length", b"0")
_EMPTY_BODY = {"type": "http.response.body", "body": b""}
_APP_COOKIE = b"x-gateway-cookie"
# Identities whose encoded headers are kept (oldest dropped first when full).
IDENTITY_CACHE_SIZE = 2048

_API = (b"x-gateway-api", b"1")
_ALLOW = Decision("allow", "default_policy")
_SIGN_IN = Decision("sign_in", "default_policy")


class _Known:
    """What is worked out once per identity: the person the rules see, and the encoded headers."""

    __slots__ = ("groups", "pairs", "person", "values")

    def __init__(self, person: Person, values: tuple[str, ...], groups: str,
                 pairs: tuple[tuple[bytes, bytes], ...]) -> None:
        self.person = person
        self.values = values  # user, nickname, email: as sent and as signed
        self.groups = groups  # the groups header value
        self.pairs = pairs


# (Cookie, X-Original-URI, X-Original-Method, X-Forwarded-For, Host): a plain tuple, the
# cheapest thing to build and unpack on every request.
RequestHeaders = tuple[str | None, str | None, str | None, str | None, str | None]


def scan_headers(headers: Iterable[tuple[bytes, bytes]]) -> RequestHeaders:
    """One pass over the ASGI headers; several Cookie headers are joined as one (RFC 9113 §8.2.3).

    Of several Host headers the first counts, as in the proxy (the one it forwards).
    """
    cookie = uri = method = forwarded_for = host = None
    for name, value in headers:
        if name == b"cookie":
            cookie = value.decode("latin-1") if cookie is None else cookie + "; " + value.decode("latin-1")
        elif name == b"x-original-uri":
            uri = value.decode("latin-1")
        elif name == b"x-original-method":
            method = value.decode("latin-1")
        elif name == b"x-forwarded-for":
            forwarded_for = value.decode("latin-1")
        elif name == b"host" and host is None:
            host = value.decode("latin-1")
    return cookie, uri, method, forwarded_for, host


class AuthCheck:
    """Decides whether a request carries a live session; shared by both modes."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.codec = runtime.sessions
        self.revocation = runtime.revocation
        self.cookie_name = runtime.session_cookie_name
        self.names = runtime.header_names
        self.proof = runtime.proof
        self._send_proof = runtime.settings.identity_assertion != "jwt"
        self.assertion = runtime.assertion
        self._assertion_name = runtime.settings.header_assertion.lower().encode("latin-1")
        self._login_header = b"x-gateway-login"
        self._value_names = tuple(n.lower().encode("latin-1") for n in self.names.identity())
        self._proof_name = self.names.proof.lower().encode("latin-1")
        self.access = runtime.access
        self.api_paths = runtime.settings.api_paths
        self._known: dict[Identity, _Known] = {}
        # Caddy's and Traefik's forward auth, set by gateway.app (it holds the pages the answers need).
        self.forward_auth: ForwardAuth | None = None
        # (names, prefixes) of the cookies kept from the app; None: pass every cookie.
        self._gateway_cookies = None if runtime.settings.pass_gateway_cookies else runtime.gateway_cookie_names()

    def authenticate(self, cookie_header: str | None, now: float) -> tuple[Session | None, str | None]:
        """Return the live session (or None) and a refreshed ``Set-Cookie`` value (or None).

        Raises :class:`StoreUnavailable` when revocations are not known to be current.
        """
        session = self.codec.decode(read_cookie(cookie_header, self.cookie_name), now)
        if session is None:
            return None, None
        if not self.revocation.healthy:
            raise StoreUnavailable("revocation list is stale")
        if self.revocation.is_revoked(session.session_id):
            return None, None
        refreshed = None
        if self.codec.needs_refresh(session, now):
            refreshed = self.runtime.cookies.set(self.cookie_name, self.codec.refreshed(session))
        return session, refreshed

    def check(self, cookie_header: str | None, method: str, host: str, uri: str
              ) -> tuple[Decision, Session | None, str | None]:
        """Authenticate, then ask the rules about ``method host uri`` (the query string is never matched).

        Returns the decision, the live session (or None) and a refreshed
        ``Set-Cookie`` value (or None). Raises :class:`StoreUnavailable` when
        revocations are not current, unless the path is public anyway. Counted for the metrics.
        """
        try:
            result = self._decide(cookie_header, method, host, uri)
        except StoreUnavailable:
            metrics.count_decision("unavailable", "store")
            raise
        metrics.count_decision(result[0].outcome, result[0].rule)
        return result

    def _decide(self, cookie_header: str | None, method: str, host: str, uri: str
                ) -> tuple[Decision, Session | None, str | None]:
        path = uri.partition("?")[0]
        try:
            session, refreshed = self.authenticate(cookie_header, self.runtime.now())
        except StoreUnavailable:
            decision = self.access.decide(None, method, host, path)
            if decision.public:
                return decision, None, None
            raise
        if self.access.trivial:
            return (_ALLOW if session is not None else _SIGN_IN), session, refreshed
        person = self._known_for(session.identity).person if session is not None else None
        return self.access.decide(person, method, host, path), session, refreshed

    def identity_headers(self, session: Session, method: str, host: str, uri: str) -> list[tuple[bytes, bytes]]:
        """The identity headers and a fresh proof for this request (what ``ProofSigner.headers`` gives)."""
        known = self._known_for(session.identity)
        user, nickname, email = known.values
        headers = [*known.pairs]
        if self._send_proof:
            proof = self.proof.sign(method, host, uri, user, nickname, email, groups=known.groups)
            headers.append((self._proof_name, proof.encode("latin-1")))
        if self.assertion is not None:
            headers.append(self.assertion_header(session, known.person, host))
        return headers

    def assertion_header(self, session: Session, person: Person, host: str) -> tuple[bytes, bytes]:
        """The signed JWT for this request's Host (identity_assertion "jwt" or "both"; gateway.assertion)."""
        assert self.assertion is not None
        token = self.assertion.sign(session.identity, host, session.session_id, groups=sorted(person.groups),
                                    provider=person.provider)
        return self._assertion_name, token.encode("ascii")

    def refusal_is_api(self, headers: Iterable[tuple[bytes, bytes]], path: str) -> bool:
        """Whether a refused request should get JSON (looked at only when refusing: off the allowed path)."""
        accept = fetch_mode = requested_with = None
        for name, value in headers:
            if name == b"accept":
                accept = value.decode("latin-1")
            elif name == b"sec-fetch-mode":
                fetch_mode = value.decode("latin-1")
            elif name == b"x-requested-with":
                requested_with = value.decode("latin-1")
        return is_api_request(accept, fetch_mode, requested_with, path, self.api_paths)

    def log_refusal(self, decision: Decision, session: Session | None, method: str, host: str, uri: str) -> None:
        """Log a refusal and tell the listeners (gateway.events): off the allowed path, so it may cost a little."""
        who = session.identity.user_id if session is not None else "anonymous"
        what = "forbidden" if decision.outcome == "forbidden" else "sign-in required"
        path = uri.partition("?")[0][:512]
        logger.info("%s by %s: %s %s %s%s", what, decision.rule, who, method, host, path)
        if decision.outcome == "forbidden":
            self.runtime.events.emit(Forbidden(decision.rule, who, method, host[:256], path))
        else:
            self.runtime.events.emit(SignInRequired(decision.rule, method, host[:256], path))

    def app_cookie(self, cookie_header: str | None) -> str:
        """The Cookie header the app may see: the client's, minus the gateway's cookies."""
        if not cookie_header or self._gateway_cookies is None:
            return cookie_header or ""
        return strip_cookies(cookie_header, *self._gateway_cookies)

    def _known_for(self, identity: Identity) -> _Known:
        known = self._known.get(identity)
        if known is not None:
            return known
        person = self.access.person(identity.user_id, identity.email, identity.provider,
                                    provider_groups=identity.groups)
        values = encode_identity(identity)
        groups = encode_groups(person.groups)
        pairs = tuple((name, value.encode("latin-1"))
                      for name, value in zip(self._value_names, (*values, groups), strict=True))
        known = _Known(person, values, groups, pairs)
        while len(self._known) >= IDENTITY_CACHE_SIZE:
            del self._known[next(iter(self._known))]
        self._known[identity] = known
        return known

    def allow_headers(self, session: Session | None, public: bool, cookie: str | None, refreshed: str | None,
                      method: str, host: str, uri: str) -> list[tuple[bytes, bytes]]:
        """The headers of an allowed answer: the identity (unless public), the app's Cookie, a refreshed cookie."""
        if session is not None and not public:
            headers = self.identity_headers(session, method, host, uri)
            headers += (_NO_STORE, _NO_BODY)
        else:
            headers = [_NO_STORE, _NO_BODY]
        app_cookie = self.app_cookie(cookie)
        if app_cookie:
            headers.append((_APP_COOKIE, app_cookie.encode("latin-1")))
        if refreshed is not None:
            headers.append((b"set-cookie", refreshed.encode("latin-1")))
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cookie, uri, method, _, host = scan_headers(scope["headers"])
        if uri is None and self.forward_auth is not None:  # not nginx: Caddy or Traefik? (gateway.forwardauth)
            forwarded = self.forward_auth.forwarded(scope)
            if forwarded is not None:
                await self.forward_auth(scope, receive, send, cookie, forwarded)
                return
        uri = uri or "/"
        method = method or "GET"
        host = host or ""
        try:
            decision, session, refreshed = self.check(cookie, method, host, uri)
        except StoreUnavailable:
            await send({"type": "http.response.start", "status": 503, "headers": [_NO_STORE, _NO_BODY]})
            await send(_EMPTY_BODY)
            return
        if decision.outcome == "allow":
            headers = self.allow_headers(session, decision.public, cookie, refreshed, method, host, uri)
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send(_EMPTY_BODY)
            return
        client = scope.get("client")
        trusted = client is not None and self.runtime.client_address.is_trusted(client[0])
        request_id.set(request_id_from(scope["headers"], trusted))  # nginx's $request_id (protect.conf)
        self.log_refusal(decision, session, method, host, uri)
        headers = [_NO_STORE, _NO_BODY]
        if self.refusal_is_api(scope["headers"], uri.partition("?")[0]):
            headers.append(_API)
        if decision.outcome == "sign_in":
            login = self.runtime.login_url(self.runtime.safe_next(uri))
            headers.append((self._login_header, login.encode("latin-1")))
        await send({"type": "http.response.start", "status": 401 if decision.outcome == "sign_in" else 403,
                    "headers": headers})
        await send(_EMPTY_BODY)
