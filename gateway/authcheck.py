"""``GET /_gateway/auth``: nginx's ``auth_request`` asks "who is this?".

This runs on every request of the protected site, so it is plain ASGI and does
no I/O: the session cookie is verified with HMAC, revocation is a set lookup
(:mod:`gateway.revocation`), and the proof for the app is one more HMAC.

Answers:

* ``200`` with the identity headers and their proof (nginx copies them into
  the proxied request with ``auth_request_set``), ``X-Gateway-Cookie``: the
  Cookie header for the app, without the gateway's own cookies (they sign a
  person in; kept with ``pass_gateway_cookies``), plus ``Set-Cookie`` when the
  session cookie is due for its idle-timeout refresh; with
  ``identity_assertion = "jwt"`` or ``"both"`` the signed JWT
  (``X-Gateway-Assertion``, :mod:`gateway.assertion`) comes too; with "jwt" no HMAC proof;
* ``401`` with ``X-Gateway-Login: /login?next=<original URI, encoded>`` for
  nginx's ``error_page 401`` redirect (nginx has no way to encode it itself);
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

from collections.abc import Iterable

from gateway.errors import StoreUnavailable
from gateway.proof import encode_identity
from gateway.runtime import Runtime
from gateway.sessions import Session, read_cookie, strip_cookies
from gateway.types import Identity, Receive, Scope, Send

_NO_STORE = (b"cache-control", b"no-store")
_NO_BODY = (b"content-length", b"0")
_EMPTY_BODY = {"type": "http.response.body", "body": b""}
_APP_COOKIE = b"x-gateway-cookie"
# Identities whose encoded headers are kept (oldest dropped first when full).
IDENTITY_CACHE_SIZE = 2048

# (user, nickname, email) encoded for a header, and the three header pairs built from them.
_Encoded = tuple[str, str, str, tuple[tuple[bytes, bytes], ...]]


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
        self._value_names = tuple(n.lower().encode("latin-1") for n in self.names.all()[:3])
        self._proof_name = self.names.proof.lower().encode("latin-1")
        self._encoded: dict[Identity, _Encoded] = {}
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

    def identity_headers(self, session: Session, method: str, host: str, uri: str) -> list[tuple[bytes, bytes]]:
        """The identity headers and a fresh proof for this request (what ``ProofSigner.headers`` gives)."""
        user, nickname, email, pairs = self._encoded.get(session.identity) or self._encode(session.identity)
        headers = [*pairs]
        if self._send_proof:
            proof = self.proof.sign(method, host, uri, user, nickname, email)
            headers.append((self._proof_name, proof.encode("latin-1")))
        if self.assertion is not None:
            headers.append(self.assertion_header(session, host))
        return headers

    def assertion_header(self, session: Session, host: str) -> tuple[bytes, bytes]:
        """The signed JWT for this request's Host (identity_assertion "jwt" or "both"; gateway.assertion)."""
        assert self.assertion is not None
        token = self.assertion.sign(session.identity, host, session.session_id, groups=session.identity.groups)
        return self._assertion_name, token.encode("ascii")

    def app_cookie(self, cookie_header: str | None) -> str:
        """The Cookie header the app may see: the client's, minus the gateway's cookies."""
        if not cookie_header or self._gateway_cookies is None:
            return cookie_header or ""
        return strip_cookies(cookie_header, *self._gateway_cookies)

    def _encode(self, identity: Identity) -> _Encoded:
        values = encode_identity(identity)
        pairs = tuple((name, value.encode("latin-1")) for name, value in zip(self._value_names, values, strict=True))
        encoded = (*values, pairs)
        while len(self._encoded) >= IDENTITY_CACHE_SIZE:
            del self._encoded[next(iter(self._encoded))]
        self._encoded[identity] = encoded
        return encoded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cookie, uri, method, _, host = scan_headers(scope["headers"])
        try:
            session, refreshed = self.authenticate(cookie, self.runtime.now())
        except StoreUnavailable:
            await send({"type": "http.response.start", "status": 503, "headers": [_NO_STORE, _NO_BODY]})
            await send(_EMPTY_BODY)
            return
        if session is None:
            login = self.runtime.login_url(self.runtime.safe_next(uri or "/"))
            headers = [_NO_STORE, _NO_BODY, (self._login_header, login.encode("latin-1"))]
            await send({"type": "http.response.start", "status": 401, "headers": headers})
            await send(_EMPTY_BODY)
            return
        headers = self.identity_headers(session, method or "GET", host or "", uri or "/")
        headers += (_NO_STORE, _NO_BODY)
        app_cookie = self.app_cookie(cookie)
        if app_cookie:
            headers.append((_APP_COOKIE, app_cookie.encode("latin-1")))
        if refreshed is not None:
            headers.append((b"set-cookie", refreshed.encode("latin-1")))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(_EMPTY_BODY)
