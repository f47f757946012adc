"""Exceptions raised by the gateway.

Every error the gateway raises on purpose derives from :class:`GatewayError`,
carries its context in attributes, and ends as a page, a status code or an
exit status where it is caught, never as a traceback: ``ConfigError`` in
:mod:`gateway.cli` (one line, exit status 2); the request errors in the
exception handlers of :mod:`gateway.app` (the auth check answers nginx 503
itself); ``UnsafeRedirect`` in :func:`gateway.redirects.safe_next` (back to
``/``); ``FetchError`` in :mod:`gateway.openid.consumer`, as a
``LoginFailed`` whose ``code`` the login and callback pages show.
``InvalidProof`` is raised on the app's side, by
:class:`gateway.proof.ProofVerifier`::

    GatewayError
    ├── ConfigError              - the configuration cannot be used; start-up stops
    ├── UnsafeRedirect           - a `next` target was refused
    ├── StoreUnavailable         - the store cannot be read or written; fail closed (503)
    ├── StoreMisconfigured       - the store would lose data (Redis may evict keys); start-up stops
    ├── BadRequest               - malformed or oversized client input (400/413/431)
    │   └── CSRFError            - a state-changing POST without a valid CSRF token (403)
    ├── RateLimited              - too many attempts from one client (429)
    ├── SignInBusy               - too many sign-ins in flight in this process (503)
    ├── KeyFileError             - the JWT assertion's key file cannot be used (gateway.signing_keys)
    ├── UpstreamTimeout          - proxy mode: the app did not connect or answer in time (504; gateway.proxy)
    ├── InvalidProof             - identity headers an app received are not vouched for (gateway.proof)
    ├── FetchError               - fetching a provider's document or endpoint failed
    │   └── DiscoveryRefused     - the URL or address is not allowed (SSRF guard)
    │       └── PrivateAddressRefused - a private address, allowed only by a setting
    └── LoginFailed              - the OpenID exchange did not produce a verified identity
        ├── LoginCancelled       - the person chose "Deny" / cancel at the provider
        └── ProviderNotAllowed   - the answering provider is not on the allow list,
                                   or not authoritative for the claimed identifier
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
    """An HTTP fetch on behalf of python3-openid failed (timeout, size, status)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{reason}: {url}")


class DiscoveryRefused(FetchError):
    """The gateway refused to fetch a URL (scheme, address or allow list)."""


class PrivateAddressRefused(DiscoveryRefused):
    """The URL's host is on a private or special-purpose address and ``allow_private_addresses`` is off."""


class LoginFailed(GatewayError):
    """The OpenID exchange ended without a verified identity.

    ``reason`` goes to the log; ``code`` picks the message shown to the person
    (see ``gateway.web.MESSAGES``), so no attacker-chosen text reaches a page.
    """

    def __init__(self, reason: str, code: str = "invalid") -> None:
        self.reason = reason
        self.code = code
        super().__init__(reason)


class LoginCancelled(LoginFailed):
    """The person cancelled at the provider."""

    def __init__(self) -> None:
        super().__init__("cancelled at the provider", "cancelled")


class ProviderNotAllowed(LoginFailed):
    """The provider or the asserted identifier is not acceptable here."""

    def __init__(self, reason: str, code: str = "not-allowed") -> None:
        super().__init__(reason, code)
