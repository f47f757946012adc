"""The composition root: everything the gateway builds once at start-up from its settings.

Codecs, signers, the store, the sign-in methods, the gate and the limiters are made here, once, so
that request handlers (and the hot path above all) only use them. This is the one module that knows
every building block; the blocks themselves know only the ones below them (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway import store as store_factory
from gateway.fetch.fetcher import SafeFetcher
from gateway.gate.access import AccessPolicy
from gateway.gate.assertion import AssertionSigner
from gateway.gate.authenticate import Authenticator
from gateway.gate.bearer import BearerTokens
from gateway.gate.clientaddr import ClientAddress
from gateway.gate.redirects import NextTargets
from gateway.gate.signing_keys import SigningKeys, load_signing_keys
from gateway.observe import metrics
from gateway.observe.events import Events
from gateway.paths import Paths
from gateway.proof import HeaderNames, ProofSigner
from gateway.settings import Settings
from gateway.signin.capacity import SignInCapacity
from gateway.signin.github import OAuth2SignIn
from gateway.signin.identities import Identities
from gateway.signin.loginstate import STATE_COOKIE_PREFIX, LoginStates
from gateway.signin.logout_return import LogoutReturn
from gateway.signin.methods import SignInMethods
from gateway.signin.oidc.bearer import BearerVerifier
from gateway.signin.oidc.exchange import OIDCSignIn
from gateway.signin.oidc.introspection import Introspection
from gateway.signin.oidc.migration import OpenID2Migration
from gateway.signin.openid2.consumer import OpenIDExchange
from gateway.signin.openid2.method import OpenID2Method
from gateway.state.csrf import CSRFTokens
from gateway.state.ratelimit import RateLimiter
from gateway.state.remember import RememberMe
from gateway.state.revocation import RevocationCache
from gateway.state.sessions import LOGIN_SALT, CookiePolicy, SessionCodec, TokenCodec, host_cookie_name
from gateway.store import Store

CSRF_COOKIE = "gw_csrf"


def open_store(settings: Settings) -> Store:
    """The store the settings name (the gateway and ``openid-gateway sessions`` open the same one)."""
    return store_factory.open_store(settings.store, settings.state_dir)


def safe_fetcher(settings: Settings, *, allowlist: Sequence[str] = ()) -> SafeFetcher:
    """The guarded outbound HTTP client with the ``fetch_*`` settings.

    The OpenID 2.0 exchange gets ``provider_allowlist`` (typed-in identifiers); configured OpenID Connect
    and GitHub providers are the operator's own choice, so their fetcher has none.
    """
    return SafeFetcher(connect_timeout=settings.fetch_connect_timeout, read_timeout=settings.fetch_read_timeout,
                       max_bytes=settings.fetch_max_bytes, max_redirects=settings.fetch_max_redirects,
                       allow_private_addresses=settings.allow_private_addresses, allowlist=allowlist,
                       metric_hosts=[p.identifier for p in settings.providers])


@dataclass
class Runtime:
    """The gateway's long-lived parts, built from :class:`Settings`."""

    settings: Settings
    store: Store
    # Security events (gateway.observe.events): the handlers emit, the audit log and the metrics listen.
    events: Events = field(default_factory=Events)
    # Every URL path, under the configured route_prefix (gateway.paths).
    paths: Paths = field(init=False)
    sessions: SessionCodec = field(init=False)
    cookies: CookiePolicy = field(init=False)
    # The cookie names the gateway sets and reads: ``__Host-`` prefixed on https without cookie_domain.
    session_cookie_name: str = field(init=False)
    remember_cookie_name: str = field(init=False)
    csrf_cookie_name: str = field(init=False)
    login_states: LoginStates = field(init=False)
    remember: RememberMe = field(init=False)
    csrf: CSRFTokens = field(init=False)
    revocation: RevocationCache = field(init=False)
    exchange: OpenIDExchange = field(init=False)
    oidc: OIDCSignIn = field(init=False)
    # Every sign-in method behind one interface, on the sign-in threads (gateway.signin.methods).
    methods: SignInMethods = field(init=False)
    identities: Identities = field(init=False)
    logout_return: LogoutReturn = field(init=False)
    # The JWT assertion (identity_assertion "jwt" or "both") and the keys the JWKS publishes (when a key file is set).
    assertion: AssertionSigner | None = field(init=False)
    signing_keys: SigningKeys | None = field(init=False)
    access: AccessPolicy = field(init=False)
    client_address: ClientAddress = field(init=False)
    next_targets: NextTargets = field(init=False)
    # The gate: the one check every door and page asks.
    auth: Authenticator = field(init=False)
    login_limiter: RateLimiter = field(init=False)
    failure_limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.paths = Paths(s.route_prefix)
        keys = s.secret_key_values()
        self.sessions = SessionCodec(keys, s.session_idle_timeout, s.session_max_lifetime, clock=lambda: self.now())
        self.cookies = CookiePolicy(s.https, s.cookie_domain)
        self.session_cookie_name = host_cookie_name(s.session_cookie, s.https, s.cookie_domain)
        self.remember_cookie_name = host_cookie_name(s.remember_cookie, s.https, s.cookie_domain)
        self.csrf_cookie_name = host_cookie_name(CSRF_COOKIE, s.https, s.cookie_domain)
        self.login_states = LoginStates(self.store, TokenCodec(keys, LOGIN_SALT), self.cookies, lambda: self.now(),
                                        self.paths.callback)
        self.remember = RememberMe(self.store, keys, s.remember_lifetime, s.remember_grace, events=self.events)
        self.csrf = CSRFTokens(keys)
        self.revocation = RevocationCache(self.store, s.revocation_refresh, local_ttl=s.session_max_lifetime,
                                          events=self.events)
        self.exchange = OpenIDExchange(
            self.store, s.public_origin + "/", require_email=s.require_email,
            provider_allowlist=s.provider_allowlist, fetcher=safe_fetcher(s, allowlist=s.provider_allowlist),
            named_providers=[(p.name, p.identifier) for p in s.providers],
        )
        # Configured issuers are the operator's choice: provider_allowlist (for typed-in identifiers) does not apply.
        buttons_fetcher = safe_fetcher(s)
        self.oidc = OIDCSignIn(s.providers, buttons_fetcher, self.callback_url, require_email=s.require_email)
        github = OAuth2SignIn(s.providers, buttons_fetcher, self.callback_url, require_email=s.require_email)
        # The configured buttons first; OpenID 2.0 takes any other (typed-in) identifier.
        self.methods = SignInMethods([self.oidc, github, OpenID2Method(self.exchange, self.callback_url)],
                                     SignInCapacity(s.max_signins_in_flight), clock=lambda: self.now())
        self.identities = Identities(self.store, OpenID2Migration(self.exchange), lambda: self.now(), self.events)
        self.logout_return = LogoutReturn(keys, lambda: self.now())
        self.signing_keys = load_signing_keys(s.assertion_keys_file) if s.assertion_keys_file else None
        self.assertion = None
        if self.signing_keys is not None and s.identity_assertion != "proof":
            self.assertion = AssertionSigner(self.signing_keys, s.public_origin, keys[-1], clock=lambda: self.now())
        self.access = s.access_policy()
        self.client_address = ClientAddress(s.trusted_proxies, unix_socket=bool(s.uds))
        self.next_targets = NextTargets(s.public_url, tuple(s.next_allowed_hosts), s.max_next_length, paths=self.paths)
        self.auth = Authenticator(
            sessions=self.sessions, revocation=self.revocation, cookies=self.cookies,
            cookie_name=self.session_cookie_name, access=self.access,
            header_names=HeaderNames(s.header_user, s.header_nickname, s.header_email, s.header_proof,
                                     s.header_groups, s.header_auth_time, s.header_acr),
            proof=ProofSigner(str(s.proof_key)) if s.identity_assertion != "jwt" else None,
            assertion=self.assertion, assertion_header=s.header_assertion, next_targets=self.next_targets,
            api_paths=tuple(s.api_paths),
            gateway_cookies=None if s.pass_gateway_cookies else self.gateway_cookie_names(),
            events=self.events, clock=lambda: self.now(), bearer=self.bearer_tokens(),
            pass_bearer_token=s.pass_bearer_token)
        self.login_limiter = RateLimiter(self.store, "login", s.login_rate_limit, s.login_rate_window)
        self.failure_limiter = RateLimiter(self.store, "failure", s.failure_rate_limit, s.failure_rate_window)
        self.events.subscribe(metrics.EventCounter(metrics.Labels((p.name for p in s.providers),
                                                                  (p.identifier for p in s.providers))))

    def bearer_tokens(self) -> BearerTokens | None:
        """The bearer tokens of the providers with ``bearer_audiences`` (their sign-in's key caches); None: none."""
        if not any(p.bearer_audiences for p in self.settings.providers):
            return None
        introspecting = next((p for p in self.settings.providers if p.bearer_introspection), None)
        introspection = None if introspecting is None else Introspection(
            introspecting, self.oidc.metadata[introspecting.name], self.oidc.fetcher, lambda: self.now(),
            introspecting.bearer_introspection_cache)
        return BearerTokens(BearerVerifier(self.settings.providers, self.oidc.metadata, self.identities.resolve,
                                           lambda: self.now(), introspection))

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        return cls(settings, open_store(settings))

    @property
    def callback_url(self) -> str:
        return self.settings.public_origin + self.paths.callback

    def sign_out_cookies(self) -> list[str]:
        """``Set-Cookie`` values that clear the session and remember-me cookies.

        With a ``cookie_domain`` the host-only copies (set before it was
        configured) are cleared too: a browser keeps both and sends both.
        """
        policies = [self.cookies]
        if self.settings.cookie_domain:
            policies.append(CookiePolicy(self.settings.https))
        return [policy.delete(name) for policy in policies
                for name in (self.session_cookie_name, self.remember_cookie_name)]

    def gateway_cookie_names(self) -> tuple[frozenset[str], tuple[str, ...]]:
        """Names and name prefixes of every cookie the gateway sets, for ``strip_cookies``.

        They sign a person in: the app behind must never receive them. Each in
        its plain, ``__Host-`` and ``__Secure-`` spelling, so a copy set before
        the site moved to https (or planted by a sibling subdomain) is kept back too.
        """
        s = self.settings
        spellings = ("", "__Host-", "__Secure-")
        names = frozenset(p + name for name in (s.session_cookie, s.remember_cookie, CSRF_COOKIE) for p in spellings)
        return names, tuple(p + STATE_COOKIE_PREFIX for p in spellings)

    def close(self) -> None:
        """Release what the runtime holds: the sign-in threads, the fetchers' connections, the store."""
        self.methods.close()
        self.exchange.fetcher.close()
        self.oidc.fetcher.close()
        self.store.close()

    @staticmethod
    def now() -> float:
        return time.time()
