"""Exceptions raised by the gateway, and where each ends.

Every error the gateway raises on purpose derives from :class:`GatewayError`,
carries its context in attributes, and ends as a page, a status code or an
exit status where it is caught, never as a traceback. Most are defined here,
on the floor of the layers, so that any module may raise or catch them; a few
live in the module that raises them (named in the tree). In short:
``ConfigError`` ends in :mod:`gateway.cli` (one line, exit status 2); the
request errors in the pages' exception handlers in :mod:`gateway.app` (the
doors answer 503 themselves, from the gate's
:class:`~gateway.gate.authenticate.Verdict`); ``UnsafeRedirect`` in
:mod:`gateway.gate.redirects` (back to ``/``); ``FetchError`` in every sign-in
protocol (:mod:`gateway.signin`), as a ``LoginFailed`` whose ``code`` picks the
message the login page shows (``gateway.pages.render.MESSAGES``).
``InvalidProof`` is raised on the app's side, by
:class:`gateway.proof.ProofVerifier`. Each line: what it means (where it is
raised, when not here; where it is caught)::

    GatewayError
    ├── ConfigError              - the configuration cannot be used (gateway.settings); start-up stops
    │                              (gateway.cli: one line, exit status 2)
    ├── UnsafeRedirect           - a `next` target was refused (gateway.gate.redirects: safe_next falls back to `/`;
    │                              gateway.pages.login: the plain login page after a logout at the provider)
    ├── StoreUnavailable         - the store cannot be read or written (gateway.store); fail closed: 503
    │                              (gateway.app's handler; the gate's Verdict; health, logout and back-channel
    │                              pages; the revocation cache turns unhealthy; gateway.cli: an exit status)
    ├── StoreMisconfigured       - the store would lose data (gateway.store.redis: eviction, Redis too old);
    │                              start-up stops (gateway.cli: exit status 2)
    ├── BadRequest               - malformed or oversized client input (400/413; gateway.app's handler;
    │   │                          gateway.pages.backchannel answers 400 JSON)
    │   ├── CSRFError            - a state-changing POST without a valid CSRF token (gateway.pages.forms;
    │   │                          403 page from gateway.app's handler)
    │   └── UnsupportedTransferCoding - mode 2: a request body in a coding other than plain chunked
    │                              (gateway.front.proxy._headers; 400 from gateway.front.proxy._proxy)
    ├── RateLimited              - too many attempts from one client (gateway.state.ratelimit; 429 page with
    │                              Retry-After from gateway.app's handler)
    ├── SignInBusy               - too many sign-ins in flight in this process (gateway.signin.capacity; 503 with
    │                              Retry-After from gateway.app's handler; the callback gives its login state back
    │                              first; gateway.pages.backchannel answers 503 JSON)
    ├── KeyFileError             - the JWT assertion's key file cannot be used (gateway.gate.signing_keys; a
    │                              ConfigError problem in gateway.settings; gateway.cli.keys: one line, exit status)
    ├── UpstreamTimeout          - mode 2: the app did not connect or answer in time
    │                              (gateway.front.proxy._connection; 504 from gateway.front.proxy._proxy)
    ├── InvalidProof             - identity headers an app received are not vouched for (gateway.proof; the app
    │                              refuses the request, as backend_app.identity does)
    ├── LinkRefused              - a link the account page must not make (gateway.signin.identities;
    │                              gateway.pages.callback: back to the account page with its code)
    ├── LogoutStateRefused       - a logout `state` we did not sign, or signed too long ago
    │                              (gateway.signin.logout_return; gateway.pages.login: the plain login page)
    ├── LogoutTokenRefused       - a back-channel logout token not acted on (gateway.signin.oidc.logout_token;
    │                              gateway.pages.backchannel: 400 JSON with its code only)
    ├── TokenRefused             - a bearer token that authenticates no one (gateway.signin.oidc.bearer,
    │                              gateway.gate.bearer; the gate's Verdict: 401 with an RFC 6750 challenge, or
    │                              503 when the provider's keys cannot be fetched)
    ├── FetchError               - fetching a provider's document or endpoint failed (gateway.fetch.fetcher;
    │   │                          a LoginFailed in gateway.signin.openid2.consumer and
    │   │                          gateway.signin.oidc.metadata.fetch_json, for OIDC and GitHub; a
    │   │                          MigrationRefused in gateway.signin.oidc.migration)
    │   └── DiscoveryRefused     - the URL or address is not allowed (SSRF guard, allow list)
    │       └── PrivateAddressRefused - a private address, allowed only by a setting
    └── LoginFailed              - a sign-in (any protocol) did not produce a verified identity (gateway.signin,
        │                          gateway.pages.callback; gateway.pages.login: the login page with its message;
        │                          gateway.pages.callback: back to /login with its code, counted as a failure)
        ├── LoginCancelled       - the person chose "Deny" / cancel at the provider (gateway.signin.openid2.consumer,
        │                          gateway.signin.oidc.exchange: access_denied, for OIDC and GitHub)
        ├── ProviderNotAllowed   - the answering provider is not on the allow list (gateway.fetch.allowlist),
        │                          or not authoritative for the claimed identifier (gateway.signin.openid2.providers)
        └── MigrationRefused     - an OIDC provider's openid2_id could not be verified: no session, nothing linked
                                   (gateway.signin.oidc.migration, through Identities.resolve in the callback)
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base class of every error the gateway raises deliberately."""


class ConfigError(GatewayError):
    """The configuration is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration: " + "; ".join(self.problems))


class UnsafeRedirect(GatewayError):
    """A redirect target was refused because it could leave this site."""

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"unsafe redirect target ({reason})")


class StoreUnavailable(GatewayError):
    """The store failed; callers must refuse rather than let requests through."""


class StoreMisconfigured(GatewayError):
    """The store is reachable but set up to lose what the gateway keeps (an eviction policy); do not start."""


class BadRequest(GatewayError):
    """Client input that is malformed or too large."""

    status_code = 400

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        if status_code is not None:
            self.status_code = status_code


class CSRFError(BadRequest):
    """A POST that changes state arrived without a valid CSRF token."""

    status_code = 403


class RateLimited(GatewayError):
    """Too many attempts from one client; ``retry_after`` is in seconds."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"rate limited, retry after {retry_after}s")


class InvalidProof(GatewayError):
    """The identity headers are not vouched for by the gateway (raised on the app's side)."""


class SignInBusy(GatewayError):
    """Every sign-in slot of this process is taken; ``retry_after`` is in seconds.

    Sign-ins wait on providers (seconds each when one is slow); refusing the
    excess at once keeps them from holding threads the rest of the site needs.
    """

    def __init__(self, limit: int, retry_after: int) -> None:
        self.limit = limit
        self.retry_after = retry_after
        super().__init__(f"{limit} sign-ins in flight, retry after {retry_after}s")


class FetchError(GatewayError):
    """An HTTP fetch for a sign-in protocol failed (timeout, size, connection, redirects)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{reason}: {url}")


class DiscoveryRefused(FetchError):
    """The gateway refused to fetch a URL (scheme, address or allow list)."""


class PrivateAddressRefused(DiscoveryRefused):
    """The URL's host is on a private or special-purpose address and ``allow_private_addresses`` is off."""


class LoginFailed(GatewayError):
    """A sign-in (OpenID 2.0, OpenID Connect or GitHub) ended without a verified identity.

    ``reason`` goes to the log; ``code`` picks the message shown to the person
    (see ``gateway.pages.render.MESSAGES``), so no attacker-chosen text reaches a page.
    """

    def __init__(self, reason: str, code: str = "invalid") -> None:
        self.reason = reason
        self.code = code
        super().__init__(reason)


class StepUpRefused(LoginFailed):
    """The provider's answer does not meet what a step-up rule asked: too old, another ``acr``, or no word of
    when the person authenticated. The provider ignored the request; asking again would loop, so the person
    gets a refusal page, and their session stays as it was."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, "step-up-refused")


class LoginCancelled(LoginFailed):
    """The person cancelled at the provider."""

    def __init__(self) -> None:
        super().__init__("cancelled at the provider", "cancelled")


class ProviderNotAllowed(LoginFailed):
    """The provider or the asserted identifier is not acceptable here."""

    def __init__(self, reason: str, code: str = "not-allowed") -> None:
        super().__init__(reason, code)


class TokenRefused(GatewayError):
    """A bearer token we do not accept (RFC 6750 §3.1).

    ``error`` is the RFC 6750 error code the client is told (``invalid_token``,
    ``invalid_request``), ``description`` a short reason it may see (never a
    claim value); ``status`` 503 when the token could not be checked at all
    (the provider's keys are unreachable): a client must not drop a good token then.
    """

    def __init__(self, description: str, error: str = "invalid_token", status: int = 401) -> None:
        super().__init__(description)
        self.description = description
        self.error = error
        self.status = status
