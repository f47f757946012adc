"""May this request pass, and as whom: the one check every door asks, returning one typed :class:`Verdict`.

:meth:`Authenticator.check` reads the session cookie (HMAC, no I/O: revocation is a set lookup in
:mod:`gateway.state.revocation`), asks :mod:`gateway.gate.access` (the rules) and returns the
outcome as an HTTP status, the live session, a refreshed ``Set-Cookie`` value and, for "sign in
first", the login URL. The doors (:mod:`gateway.front`: nginx's ``auth_request``, Caddy's and
Traefik's forward auth, the mode-2 proxy) only translate it into their dialect, as Pomerium's
evaluator returns one result that its proxies translate.

It also builds what an allowed request carries to the app: the identity headers and a fresh proof
(:mod:`gateway.proof`) for this request, or the JWT assertion (:mod:`gateway.gate.assertion`), and the
app's Cookie header without the gateway's own cookies.

A request with ``Authorization: Bearer`` on a path that accepts tokens (``api_paths``, rules with
``bearer = true``) is judged by :meth:`Authenticator.check_bearer` instead: the token, verified once
and remembered (:mod:`gateway.gate.bearer`), stands for the cookie; the same rules decide, the app
receives the same identity; a refusal carries its RFC 6750 challenge in the verdict.

Kept lean (``python -m bench`` measures it): the session codec remembers verified cookies for a few
seconds, the encoded identity headers are built once per identity, a verdict is a NamedTuple. What
stays per request: the lifetimes, the revocation lookup, the store's health and a fresh proof.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import NamedTuple

from gateway.errors import StoreUnavailable, TokenRefused
from gateway.gate.access import AccessPolicy, Decision, Person
from gateway.gate.answers import is_api_request
from gateway.gate.assertion import AssertionSigner
from gateway.gate.bearer import BearerTokens, bearer_token, challenge, step_up_challenge
from gateway.gate.redirects import NextTargets
from gateway.observe import metrics
from gateway.observe.events import Events, Forbidden, SignInRequired
from gateway.proof import HeaderNames, ProofSigner, encode_assurance, encode_groups, encode_identity, signed_values
from gateway.state.revocation import RevocationCache
from gateway.state.sessions import CookiePolicy, Session, SessionCodec, read_cookie, strip_cookies
from gateway.types import Assurance, Identity

logger = logging.getLogger("gateway.access")

_NO_STORE = (b"cache-control", b"no-store")
_NO_BODY = (b"content-length", b"0")
_APP_COOKIE = b"x-gateway-cookie"
# The Authorization header the app receives (nginx: protect.conf); absent when a bearer token authenticated
# the request and pass_bearer_token is off.
_APP_AUTHORIZATION = b"x-gateway-authorization"
# Sessions whose person, encoded headers and signed values are kept (oldest dropped first when full).
SESSION_CACHE_SIZE = 2048
# A session cookie's idle-timeout refresh answers the same old cookie for this many seconds (_refreshed_cookie).
REFRESH_REUSE = 5.0

_ALLOW = Decision("allow", "default_policy")
_SIGN_IN = Decision("sign_in", "default_policy")
# A decision's outcome as the status every door answers with (nginx's auth_request reads these three).
_STATUS = {"allow": 200, "sign_in": 401, "step_up": 401, "forbidden": 403}
_BEARER_RULE = "bearer_token"  # names a token's refusal in the logs and metrics
_INSUFFICIENT_SCOPE = challenge("insufficient_scope", "the token's user is not allowed here")


class Verdict(NamedTuple):
    """What the gate decided about one request; the doors translate it, none decides again.

    ``status``: 200 allow, 401 sign in first (or again: a step-up, ``decision.step_up`` says what is
    asked), 403 forbidden, 503 revocations are not current (fail closed). ``decision``: the rule that
    decided (None only with 503). ``login``: with 401, the login page that sends the browser back to
    the request afterwards (relative to the public origin), carrying what a step-up asks.
    ``public``: allowed on a public path, so it carries no identity, even for a signed-in person.
    """

    status: int
    decision: Decision | None
    session: Session | None
    refreshed: str | None  # a Set-Cookie value: the session cookie's idle-timeout refresh
    login: str = ""
    public: bool = False
    # A bearer token decided: with 401/403 its RFC 6750 WWW-Authenticate value (never a redirect);
    # with 200 b"" and ``bearer`` True (the door keeps the token from the app unless told to pass it).
    challenge: bytes = b""
    bearer: bool = False


# Verdicts are made with tuple.__new__: a NamedTuple's own __new__ is a Python function, a frame more
# on every request of the site (the bench's /_gateway/auth row measures it).
_verdict = tuple.__new__


class _Known:
    """What is worked out once per session: the person the rules see, the encoded headers, the signed values.

    Keyed by the session id (a string: its hash is computed once), and checked against the session's
    identity and assurance, so that a session is never judged or vouched for as another.
    """

    __slots__ = ("assurance", "identity", "pairs", "person", "signed")

    def __init__(self, identity: Identity, assurance: Assurance, person: Person,
                 pairs: tuple[tuple[bytes, bytes], ...], signed: bytes) -> None:
        self.identity = identity
        self.assurance = assurance
        self.person = person
        self.pairs = pairs  # the identity headers, as sent
        self.signed = signed  # their values as the proof signs them (gateway.proof.signed_values)

    def fits(self, session: Session) -> bool:
        """Whether this was worked out for ``session``'s identity and assurance (identical objects: no comparison)."""
        if self.identity is not session.identity:
            if self.identity != session.identity:
                return False
            self.identity = session.identity  # the next request of this cookie is an identity check again
        if self.assurance is not session.assurance:
            if self.assurance != session.assurance:
                return False
            self.assurance = session.assurance
        return True


# (Cookie, X-Original-URI, X-Original-Method, X-Forwarded-For, Host, Authorization): a plain tuple, the
# cheapest thing to build and unpack on every request.
RequestHeaders = tuple[str | None, str | None, str | None, str | None, str | None, str | None]


def scan_headers(headers: Iterable[tuple[bytes, bytes]]) -> RequestHeaders:
    """One pass over the ASGI headers; several Cookie headers are joined as one (RFC 9113 §8.2.3).

    Of several Host headers the first counts, as in the proxy (the one it forwards).
    """
    cookie = uri = method = forwarded_for = host = authorization = None
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
        elif name == b"authorization":
            authorization = value.decode("latin-1")
    return cookie, uri, method, forwarded_for, host, authorization


class Authenticator:
    """Decides whether a request carries a live session and may pass; shared by every door and the pages.

    Built once by the runtime from its parts: it holds no settings and imports no runtime.
    """

    def __init__(self, *, sessions: SessionCodec, revocation: RevocationCache, cookies: CookiePolicy,
                 cookie_name: str, access: AccessPolicy, header_names: HeaderNames, proof: ProofSigner | None,
                 assertion: AssertionSigner | None, assertion_header: str, next_targets: NextTargets,
                 api_paths: tuple[str, ...], gateway_cookies: tuple[frozenset[str], tuple[str, ...]] | None,
                 events: Events, clock: Callable[[], float], bearer: BearerTokens | None = None,
                 pass_bearer_token: bool = False) -> None:
        self.codec = sessions
        self.revocation = revocation
        self.cookies = cookies
        self.cookie_name = cookie_name
        self.names = header_names
        self.proof = proof  # None: identity_assertion "jwt" sends no HMAC proof
        self.assertion = assertion
        self._assertion_name = assertion_header.lower().encode("latin-1")
        # user, nickname, e-mail, groups, auth time, acr: worked out once per session (_Known)
        self._value_names = tuple(n.lower().encode("latin-1") for n in self.names.identity())
        self._proof_name = self.names.proof.lower().encode("latin-1")
        self.access = access
        self.next_targets = next_targets
        self.api_paths = api_paths
        self.events = events
        self.now = clock
        self._known: dict[str, _Known] = {}  # session id -> what is worked out once per session
        self._refreshed: dict[str, tuple[float, str]] = {}  # cookie value -> (when, its refreshed Set-Cookie)
        # (names, prefixes) of the cookies kept from the app; None: pass every cookie.
        self._gateway_cookies = gateway_cookies
        self.bearer = bearer  # None: no provider accepts bearer tokens (no bearer_audiences)
        self.pass_bearer_token = pass_bearer_token

    def authenticate(self, cookie_header: str | None, now: float) -> tuple[Session | None, str | None]:
        """Return the live session (or None) and a refreshed ``Set-Cookie`` value (or None).

        Raises :class:`StoreUnavailable` when revocations are not known to be current.
        """
        value = read_cookie(cookie_header, self.cookie_name)
        session = self.codec.decode(value, now)
        if session is None:
            return None, None
        if not self.revocation.healthy:
            raise StoreUnavailable("revocation list is stale")
        if self.revocation.is_revoked(session.session_id):
            return None, None
        if not self.codec.needs_refresh(session, now):
            return session, None
        assert value is not None
        return session, self._refreshed_cookie(value, session, now)

    def _refreshed_cookie(self, value: str, session: Session, now: float) -> str:
        """The refreshed ``Set-Cookie`` for the cookie ``value``, signed once per :data:`REFRESH_REUSE` seconds.

        A client that keeps sending the old cookie (a script with a fixed Cookie header, the requests a
        page makes before the browser has stored the new one) would otherwise be re-signed on every request,
        which costs about as much as the whole check. The same value answers them: it renews the same session.
        """
        entry = self._refreshed.get(value)
        if entry is not None and 0 <= now - entry[0] < REFRESH_REUSE:
            return entry[1]
        refreshed = self.cookies.set(self.cookie_name, self.codec.refreshed(session))
        while len(self._refreshed) >= SESSION_CACHE_SIZE:
            del self._refreshed[next(iter(self._refreshed))]
        self._refreshed[value] = (now, refreshed)
        return refreshed

    def check(self, cookie_header: str | None, method: str, host: str, uri: str,
              next_target: str | None = None) -> Verdict:
        """Authenticate, then ask the rules about ``method host uri`` (the query string is never matched).

        ``next_target``: where the login page of a 401 sends the browser back to (default: ``uri``;
        forward auth names an absolute URL on another host). Counted for the metrics.
        """
        path = uri.partition("?")[0]
        now = self.now()
        try:
            session, refreshed = self.authenticate(cookie_header, now)
        except StoreUnavailable:
            decision = self.access.decide(None, method, host, path)
            if not decision.public:
                metrics.count_decision("unavailable", "store")
                return _verdict(Verdict, (503, None, None, None, "", False, b"", False))
            session = refreshed = None
        else:
            if self.access.trivial:
                decision = _ALLOW if session is not None else _SIGN_IN
            elif session is None:
                decision = self.access.decide(None, method, host, path)
            else:
                decision = self.access.decide(self._known_for(session).person, method, host, path,
                                              session.assurance, now)
        metrics.count_decision(decision.outcome, decision.rule)
        status = _STATUS[decision.outcome]
        if status == 401:
            login = self.next_targets.login_url(uri if next_target is None else next_target, None, decision.step_up)
            return _verdict(Verdict, (401, decision, session, refreshed, login, False, b"", False))
        return _verdict(Verdict, (status, decision, session, refreshed, "", decision.public, b"", False))

    async def check_bearer(self, authorization: str, cookie_header: str | None, method: str, host: str, uri: str,
                           next_target: str | None = None) -> Verdict:
        """:meth:`check` for a request with an ``Authorization`` header: a bearer token decides where one may.

        Only where every reading of the path is under ``api_paths`` or a rule with ``bearer = true``,
        and only for the Bearer scheme; otherwise the header is the app's and the cookie
        decides as always. A token that fails is a 401 ``invalid_token`` (never a fall back to the
        cookie: the client must learn its token is bad); a person the rules refuse a 403
        ``insufficient_scope`` (RFC 6750 §3.1). Public paths pass without looking at the token.
        """
        path = uri.partition("?")[0]
        token = bearer_token(authorization) if self.bearer is not None else None
        if token is None or not self.access.accepts_bearer(method, host, path, self.api_paths):
            return self.check(cookie_header, method, host, uri, next_target)
        assert self.bearer is not None
        now = self.now()
        known = self.bearer.remembered(token, now)  # the common case: a client calling again
        if known is None or not self.revocation.healthy:
            anonymous = self.access.decide(None, method, host, path)
            if anonymous.public:  # no token is looked at where nobody needs one
                metrics.count_decision(anonymous.outcome, anonymous.rule)
                return Verdict(200, anonymous, None, None, public=True)
            if not self.revocation.healthy:
                metrics.count_decision("unavailable", "store")
                return Verdict(503, None, None, None)
        try:
            if known is None:
                known = await self.bearer.verify(token, now)
            session = known.session
            if self.revocation.cut_off(session.identity.user_id, session.auth_time):
                raise TokenRefused("the token was issued before its user was signed out everywhere")
        except StoreUnavailable as exc:  # the token's links could not be read: fail closed, as for a cookie
            logger.error("bearer token not checked: %s", exc)
            metrics.count_decision("unavailable", "store")
            return Verdict(503, None, None, None)
        except TokenRefused as refused:
            return self._token_refused(refused)
        decision = self.access.decide(self._known_for(session).person, method, host, path,
                                      session.assurance, now)
        metrics.count_decision(decision.outcome, decision.rule)
        if decision.outcome == "forbidden":
            return Verdict(403, decision, session, None, challenge=_INSUFFICIENT_SCOPE)
        if decision.step_up is not None:  # RFC 9470 §3: the client must get a token from a fresher/stronger sign-in
            return Verdict(401, decision, session, None, challenge=step_up_challenge(decision.step_up))
        if decision.public:
            return Verdict(200, decision, None, None, public=True)
        return Verdict(_STATUS[decision.outcome], decision, session, None, bearer=True)

    @staticmethod
    def _token_refused(refused: TokenRefused) -> Verdict:
        """A token that authenticates no one: 401 with its RFC 6750 challenge, or 503 when it could not be checked."""
        if refused.status == 503:
            logger.error("bearer token not checked: %s", refused.description)
            metrics.count_decision("unavailable", "provider")
            return Verdict(503, None, None, None)
        logger.info("bearer token refused: %s", refused.description)
        metrics.count_decision("sign_in", _BEARER_RULE)
        return Verdict(401, Decision("sign_in", _BEARER_RULE), None, None,
                       challenge=challenge(refused.error, refused.description))

    def identity_headers(self, session: Session, method: str, host: str, uri: str) -> list[tuple[bytes, bytes]]:
        """The identity headers and a fresh proof for this request (what ``ProofSigner.headers`` gives)."""
        known = self._known_for(session)
        headers = [*known.pairs]
        if self.proof is not None:
            proof = self.proof.sign_values(method, host, uri, known.signed)
            headers.append((self._proof_name, proof.encode("latin-1")))
        if self.assertion is not None:
            headers.append(self.assertion_header(session, known.person, host))
        return headers

    def assertion_header(self, session: Session, person: Person, host: str) -> tuple[bytes, bytes]:
        """The signed JWT for this request's Host (identity_assertion "jwt" or "both"; gateway.gate.assertion)."""
        assert self.assertion is not None
        token = self.assertion.sign(session.identity, host, session.session_id, groups=sorted(person.groups),
                                    provider=person.provider, assurance=session.assurance)
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

    def log_refusal(self, verdict: Verdict, method: str, host: str, uri: str) -> None:
        """Log a refusal (401, 403) and tell the listeners (gateway.observe.events): off the allowed path."""
        decision, session = verdict.decision, verdict.session
        assert decision is not None
        who = session.identity.user_id if session is not None else "anonymous"
        what = {"forbidden": "forbidden", "step_up": "step-up required"}.get(decision.outcome, "sign-in required")
        path = uri.partition("?")[0][:512]
        logger.info("%s by %s: %s %s %s%s", what, decision.rule, who, method, host, path)
        if decision.outcome == "forbidden":
            self.events.emit(Forbidden(decision.rule, who, method, host[:256], path))
        else:
            self.events.emit(SignInRequired(decision.rule, method, host[:256], path))

    def app_cookie(self, cookie_header: str | None) -> str:
        """The Cookie header the app may see: the client's, minus the gateway's cookies."""
        if not cookie_header or self._gateway_cookies is None:
            return cookie_header or ""
        return strip_cookies(cookie_header, *self._gateway_cookies)

    def _known_for(self, session: Session) -> _Known:
        known = self._known.get(session.session_id)
        if known is not None and known.fits(session):
            return known
        identity = session.identity
        person = self.access.person(identity.user_id, identity.email, identity.provider,
                                    provider_groups=identity.groups)
        values = (*encode_identity(identity), encode_groups(person.groups), *encode_assurance(session.assurance))
        pairs = tuple((name, value.encode("latin-1")) for name, value in zip(self._value_names, values, strict=True))
        known = _Known(identity, session.assurance, person, pairs, signed_values(*values))
        while len(self._known) >= SESSION_CACHE_SIZE:
            del self._known[next(iter(self._known))]
        self._known[session.session_id] = known
        return known

    def allow_headers(self, verdict: Verdict, cookie: str | None, method: str, host: str,
                      uri: str, authorization: str | None = None) -> list[tuple[bytes, bytes]]:
        """The headers of an allowed answer: the identity (unless public), the app's Cookie, a refreshed cookie.

        And the app's ``Authorization`` header: the client's, unless it was the bearer token that
        authenticated the request (kept back unless ``pass_bearer_token``).
        """
        session, refreshed = verdict.session, verdict.refreshed
        if session is not None and not verdict.public:
            headers = self.identity_headers(session, method, host, uri)
            headers += (_NO_STORE, _NO_BODY)
        else:
            headers = [_NO_STORE, _NO_BODY]
        app_cookie = self.app_cookie(cookie)
        if app_cookie:
            headers.append((_APP_COOKIE, app_cookie.encode("latin-1")))
        if authorization is not None and (self.pass_bearer_token or not verdict.bearer):
            headers.append((_APP_AUTHORIZATION, authorization.encode("latin-1")))
        if refreshed is not None:
            headers.append((b"set-cookie", refreshed.encode("latin-1")))
        return headers
