"""Everything the gateway builds once at start-up from its settings.

Codecs, signers, the store, the OpenID exchange and the limiters are made
here, once, so that request handlers (and the hot path above all) only use
them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from gateway import metrics
from gateway import store as store_factory
from gateway.access import AccessPolicy
from gateway.assertion import AssertionSigner
from gateway.clientaddr import ClientAddress
from gateway.csrf import CSRFTokens
from gateway.events import Events
from gateway.openid.capacity import SignInCapacity
from gateway.openid.consumer import OpenIDExchange
from gateway.openid.fetcher import SafeFetcher
from gateway.openid.providers import provider_label
from gateway.proof import HeaderNames, ProofSigner
from gateway.ratelimit import RateLimiter
from gateway.redirects import safe_next
from gateway.remember import RememberMe
from gateway.revocation import RevocationCache
from gateway.sessions import LOGIN_SALT, CookiePolicy, SessionCodec, TokenCodec, host_cookie_name
from gateway.settings import Settings
from gateway.signin.oauth2 import OAuth2SignIn
from gateway.signin.oidc import OIDCSignIn
from gateway.signing_keys import SigningKeys, load_signing_keys
from gateway.store import Store

CALLBACK_PATH = "/_gateway/callback"


def open_store(settings: Settings) -> Store:
    """The store the settings name (the gateway and ``openid-gateway sessions`` open the same one)."""
    return store_factory.open_store(settings.store, settings.state_dir)
CSRF_COOKIE = "gw_csrf"


@dataclass
class Runtime:
    """The gateway's long-lived parts, built from :class:`Settings`."""

    settings: Settings
    store: Store
    # Security events (gateway.events): the handlers emit, the audit log and the metrics listen.
    events: Events = field(default_factory=Events)
    sessions: SessionCodec = field(init=False)
    cookies: CookiePolicy = field(init=False)
    # The cookie names the gateway sets and reads: ``__Host-`` prefixed on https without cookie_domain.
    session_cookie_name: str = field(init=False)
    remember_cookie_name: str = field(init=False)
    csrf_cookie_name: str = field(init=False)
    login_states: TokenCodec = field(init=False)
    remember: RememberMe = field(init=False)
    csrf: CSRFTokens = field(init=False)
    revocation: RevocationCache = field(init=False)
    exchange: OpenIDExchange = field(init=False)
    signins: SignInCapacity = field(init=False)
    oidc: OIDCSignIn = field(init=False)
    oauth2: OAuth2SignIn = field(init=False)
    proof: ProofSigner = field(init=False)
    # The JWT assertion (identity_assertion "jwt" or "both") and the keys the JWKS publishes (when a key file is set).
    assertion: AssertionSigner | None = field(init=False)
    signing_keys: SigningKeys | None = field(init=False)
    access: AccessPolicy = field(init=False)
    header_names: HeaderNames = field(init=False)
    client_address: ClientAddress = field(init=False)
    login_limiter: RateLimiter = field(init=False)
    failure_limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        keys = s.secret_key_values()
        self.sessions = SessionCodec(keys, s.session_idle_timeout, s.session_max_lifetime, clock=lambda: self.now())
        self.cookies = CookiePolicy(s.https, s.cookie_domain)
        self.session_cookie_name = host_cookie_name(s.session_cookie, s.https, s.cookie_domain)
        self.remember_cookie_name = host_cookie_name(s.remember_cookie, s.https, s.cookie_domain)
        self.csrf_cookie_name = host_cookie_name(CSRF_COOKIE, s.https, s.cookie_domain)
        self.login_states = TokenCodec(keys, LOGIN_SALT)
        self.remember = RememberMe(self.store, keys, s.remember_lifetime, s.remember_grace, events=self.events)
        self.csrf = CSRFTokens(keys)
        self.revocation = RevocationCache(self.store, s.revocation_refresh, local_ttl=s.session_max_lifetime,
                                          events=self.events)
        self.exchange = OpenIDExchange(
            self.store, s.public_origin + "/", require_email=s.require_email,
            provider_allowlist=s.provider_allowlist, fetcher=SafeFetcher.from_settings(s),
            named_providers=[(p.name, p.identifier) for p in s.providers],
        )
        self.signins = SignInCapacity(self.exchange, s.max_signins_in_flight)
        # Configured issuers are the operator's choice: provider_allowlist (for typed-in identifiers) does not apply.
        oidc_fetcher = SafeFetcher(connect_timeout=s.fetch_connect_timeout, read_timeout=s.fetch_read_timeout,
                                   max_bytes=s.fetch_max_bytes, max_redirects=s.fetch_max_redirects,
                                   allow_private_addresses=s.allow_private_addresses,
                                   metric_hosts=[p.identifier for p in s.providers])
        self.oidc = OIDCSignIn(s.providers, oidc_fetcher, self.callback_url, require_email=s.require_email)
        self.oauth2 = OAuth2SignIn(s.providers, oidc_fetcher, self.callback_url, require_email=s.require_email)
        self.proof = ProofSigner(str(s.proof_key))
        self.signing_keys = load_signing_keys(s.assertion_keys_file) if s.assertion_keys_file else None
        self.assertion = None
        if self.signing_keys is not None and s.identity_assertion != "proof":
            self.assertion = AssertionSigner(self.signing_keys, s.public_origin, keys[-1], clock=lambda: self.now())
        self.access = s.access_policy()
        self.header_names = HeaderNames(s.header_user, s.header_nickname, s.header_email, s.header_proof,
                                        s.header_groups)
        self.client_address = ClientAddress(s.trusted_proxies)
        self.login_limiter = RateLimiter(self.store, "login", s.login_rate_limit, s.login_rate_window)
        self.failure_limiter = RateLimiter(self.store, "failure", s.failure_rate_limit, s.failure_rate_window)
        self.events.subscribe(metrics.EventCounter(metrics.Labels((p.name for p in s.providers),
                                                                  (p.identifier for p in s.providers))))

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        return cls(settings, open_store(settings))

    @property
    def callback_url(self) -> str:
        return self.settings.public_origin + CALLBACK_PATH

    def safe_next(self, target: str | None) -> str:
        s = self.settings
        return safe_next(target, public_url=s.public_url, allowed_hosts=s.next_allowed_hosts,
                         max_length=s.max_next_length)

    def provider_label(self, endpoint_url: str) -> str:
        """A provider endpoint as events name it: as ``Identity.provider`` does (a configured name, else the host)."""
        return provider_label(endpoint_url, [(p.name, p.identifier) for p in self.settings.providers])

    def login_url(self, next_target: str, message: str | None = None) -> str:
        """``/login?next=...`` with ``next`` percent-encoded, as nginx cannot encode it."""
        params = {"next": next_target} if next_target and next_target != "/" else {}
        if message:
            params["m"] = message
        return "/login" + ("?" + urlencode(params) if params else "")

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
        from gateway.endpoints.login import STATE_COOKIE_PREFIX  # the endpoints import this module

        s = self.settings
        spellings = ("", "__Host-", "__Secure-")
        names = frozenset(p + name for name in (s.session_cookie, s.remember_cookie, CSRF_COOKIE) for p in spellings)
        return names, tuple(p + STATE_COOKIE_PREFIX for p in spellings)

    @staticmethod
    def now() -> float:
        return time.time()
