"""The OpenID 2.0 exchange: ``Consumer.begin`` → provider → ``Consumer.complete``.

python3-openid is synchronous (it fetches documents and talks to the store);
:class:`OpenIDExchange` methods block and are meant to run in a worker thread
(:mod:`gateway.signin.capacity` gives them threads of their own).

python3-openid keeps the endpoint it discovered in a "session" between the
two halves, as an object. :meth:`OpenIDExchange.begin` hands back its fields
as JSON values (``ProviderRequest.pending``), which the caller keeps in the
server-side login state (:mod:`gateway.signin.loginstate`), and
:meth:`OpenIDExchange.complete` rebuilds the endpoint from them: any worker or
instance can finish a sign-in without discovering again, and nothing is ever
pickled (Flask-OpenID pickles the session into a cookie: code execution if
the key leaks). The library still checks the answer against that endpoint
(claimed id, local id, endpoint URL), re-discovering when they differ or when
it was an OP identifier (OpenID 2.0 §11.2).

A successful response proves only the claimed identifier (OpenID 2.0 §11),
which becomes the account key. The answering endpoint must be authoritative
for it (:mod:`gateway.signin.openid2.providers`), and nickname/e-mail come only from
signed extension fields (:mod:`gateway.signin.openid2.extensions`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import openid.fetchers
from openid.consumer import consumer as openid_consumer
from openid.consumer import discover as openid_discover
from openid.consumer.discover import DiscoveryFailure, OpenIDServiceEndpoint
from openid.fetchers import HTTPFetchingError

from gateway.errors import (
    DiscoveryRefused,
    FetchError,
    GatewayError,
    LoginCancelled,
    LoginFailed,
    PrivateAddressRefused,
    ProviderNotAllowed,
)
from gateway.fetch.allowlist import check_endpoint_allowed
from gateway.fetch.fetcher import SafeFetcher, find_fetch_error
from gateway.signin.loginstate import step_up_of
from gateway.signin.openid2.associations import ASSOCIATION_TTL, RememberedAssociations
from gateway.signin.openid2.discovery import DISCOVERY_TTL, DiscoveryCache
from gateway.signin.openid2.extensions import (
    add_extension_requests,
    add_pape_request,
    fallback_nickname,
    signed_assurance,
    signed_profile,
)
from gateway.signin.openid2.providers import check_authority, provider_label
from gateway.store import Store
from gateway.types import Identity, StepUp

logger = logging.getLogger("gateway.openid")

MAX_IDENTIFIER_LENGTH = 1024
MAX_REDIRECT_URL = 2047  # longer requests are form-posted (python3-openid's OPENID1_URL_LIMIT, old IE's limit)
XRI_PREFIXES = ("=", "@", "+", "$", "!", "(", "xri://")


class _PerThreadFetcher(openid.fetchers.HTTPFetcher):  # type: ignore[misc]
    """python3-openid has one process-wide fetcher; each exchange brings its own.

    The exchange sets its fetcher for the worker thread it runs in, so two
    gateways in one process (tests, or one per site) keep their own limits.
    Outside an exchange the strictest fetcher (all defaults) is used.

    The last fetch error of the thread is kept in ``local.error``: python3-openid
    swallows a failed check_authentication into "server denied", and the
    exchange needs to tell the person that the provider did not answer.
    """

    def __init__(self) -> None:
        self.local = threading.local()
        self.default = SafeFetcher()

    def fetch(self, url: str, body: str | bytes | None = None, headers: Mapping[str, str] | None = None) -> Any:
        fetcher = getattr(self.local, "fetcher", None) or self.default
        try:
            return fetcher.fetch(url, body, headers)
        except FetchError as exc:
            self.local.error = exc
            raise


_DISPATCH = _PerThreadFetcher()
openid.fetchers.setDefaultFetcher(_DISPATCH, wrap_exceptions=True)


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """Where to send the browser (a redirect, or for long requests a POSTed form), and what to keep.

    ``provider`` is the endpoint the browser is sent to; ``pending`` holds the
    discovered endpoint's fields (JSON values) for :meth:`OpenIDExchange.complete`.
    """

    url: str
    form_fields: Mapping[str, str] | None = None
    provider: str = ""
    pending: Mapping[str, object] = field(default_factory=dict)


_OPTIONAL_TEXT = ("claimed_id", "local_id", "display_identifier")


def endpoint_fields(endpoint: OpenIDServiceEndpoint) -> dict[str, object]:
    """The discovered endpoint as JSON values: what python3-openid compares the answer with.

    Only the OpenID type URIs are kept (the library compares nothing else at
    completion), so a provider's XRDS full of extension types does not fill the store.
    XRI identifiers are refused, so ``canonicalID`` is always None and not kept.
    """
    return {
        "claimed_id": endpoint.claimed_id,
        "server_url": endpoint.server_url,
        "local_id": endpoint.local_id,
        "type_uris": [uri for uri in endpoint.type_uris if uri in OpenIDServiceEndpoint.openid_type_uris],
        "display_identifier": endpoint.display_identifier,
        "used_yadis": bool(endpoint.used_yadis),
    }


def endpoint_from_fields(fields: Mapping[str, object]) -> OpenIDServiceEndpoint:
    """Rebuild what :func:`endpoint_fields` kept; :class:`LoginFailed` if it is not that shape."""
    server_url, type_uris, used_yadis = fields.get("server_url"), fields.get("type_uris"), fields.get("used_yadis")
    optional = [fields.get(name) for name in _OPTIONAL_TEXT]
    if not (isinstance(server_url, str) and isinstance(used_yadis, bool) and isinstance(type_uris, list)
            and all(isinstance(uri, str) for uri in type_uris)
            and all(value is None or isinstance(value, str) for value in optional)):
        raise LoginFailed(f"login state holds no usable OpenID endpoint: {sorted(fields)}")
    endpoint = OpenIDServiceEndpoint()
    endpoint.server_url = server_url
    endpoint.type_uris = list(type_uris)
    endpoint.used_yadis = used_yadis
    endpoint.claimed_id, endpoint.local_id, endpoint.display_identifier = optional
    return endpoint


class OpenIDExchange:
    """Begins and completes OpenID 2.0 sign-ins against one store.

    The configured providers' OP identifiers (``named_providers``) are
    discovered at most once per ``discovery_ttl`` seconds
    (:mod:`gateway.signin.openid2.discovery` says why that is safe); claimed
    identifiers are discovered again on every completion. Each endpoint's
    association is read from the store at most once per ``association_ttl``
    seconds (:mod:`gateway.signin.openid2.associations`).
    """

    def __init__(
        self,
        store: Store,
        realm: str,
        *,
        require_email: bool = False,
        provider_allowlist: Sequence[str] = (),
        fetcher: SafeFetcher | None = None,
        named_providers: Sequence[tuple[str, str]] = (),
        discovery_ttl: float = DISCOVERY_TTL,
        discovery_clock: Callable[[], float] = time.monotonic,
        association_ttl: float = ASSOCIATION_TTL,
    ) -> None:
        self.store = store
        self.associations = RememberedAssociations(store, association_ttl)
        self.named_providers = tuple(named_providers)
        self.discovery = DiscoveryCache((identifier for _, identifier in self.named_providers), discovery_ttl,
                                        clock=discovery_clock)
        self.fetcher = fetcher or SafeFetcher(allowlist=provider_allowlist)
        self.realm = realm
        self.require_email = require_email
        self.provider_allowlist = tuple(provider_allowlist)

    def begin(self, identifier: str, return_to: str, step_up: StepUp | None = None) -> ProviderRequest:
        """Discover the provider for ``identifier`` and build the request to send the browser to.

        The caller keeps ``pending`` server-side for :meth:`complete`. ``step_up`` is asked through PAPE.
        """
        identifier = identifier.strip()
        if not identifier:
            raise LoginFailed("empty identifier", "empty")
        if len(identifier) > MAX_IDENTIFIER_LENGTH:
            raise LoginFailed("identifier too long", "too-long")
        if identifier.lower().startswith(XRI_PREFIXES):
            raise LoginFailed(f"XRI identifier refused: {identifier!r}", "xri")
        consumer = openid_consumer.Consumer({}, self.associations)  # the session is dropped: pending carries it
        with self._discovering(identifier):
            # Consumer.begin(identifier), with the discovery of configured OP identifiers remembered briefly.
            auth_request = consumer.beginWithoutDiscovery(self.discovery.endpoint(identifier))
        if auth_request is None:  # pragma: no cover - begin raises rather than returning None for OpenID 2
            raise LoginFailed("no OpenID service found", "no-provider")
        endpoint = auth_request.endpoint
        check_endpoint_allowed(endpoint.server_url, self.provider_allowlist)
        add_extension_requests(auth_request, self.require_email)
        if step_up is not None:
            add_pape_request(auth_request, step_up)
        pending = endpoint_fields(endpoint)
        message = auth_request.getMessage(self.realm, return_to)
        url = message.toURL(endpoint.server_url)
        # python3-openid form-posts every OpenID 2.0 request; a redirect does the same job (OpenID 2.0 §5.2.1)
        # without a page to render and submit, as long as the URL stays short enough for every browser.
        if len(url) <= MAX_REDIRECT_URL or auth_request.shouldSendRedirect():
            return ProviderRequest(url, None, endpoint.server_url, pending)
        return ProviderRequest(endpoint.server_url, dict(message.toPostArgs()), endpoint.server_url, pending)

    def discover(self, identifier: str) -> tuple[str, tuple[str, ...]]:
        """OpenID 2.0 discovery of a claimed identifier (§7.3) with this exchange's fetcher: blocks.

        Returns the normalised claimed identifier and the OP Endpoint URLs of
        its sign-on services (an OP identifier's server services are left out:
        they vouch for nobody in particular). :class:`LoginFailed` when it fails.
        """
        with self._discovering(identifier):
            claimed_id, services = openid_discover.discover(identifier)
        return str(claimed_id), tuple(s.server_url for s in services if not s.isOPIdentifier() and s.server_url)

    @contextmanager
    def _discovering(self, identifier: str) -> Iterator[None]:
        """python3-openid's fetches go through this exchange's fetcher; its failures become :class:`LoginFailed`."""
        _DISPATCH.local.fetcher = self.fetcher
        try:
            yield
        except DiscoveryFailure as exc:
            raise _discovery_failed(identifier, exc) from exc
        except HTTPFetchingError as exc:
            raise _discovery_failed(identifier, find_fetch_error(exc) or exc) from exc
        except GatewayError as exc:
            raise _discovery_failed(identifier, exc) from exc
        finally:
            _DISPATCH.local.fetcher = None

    def complete(self, query: Mapping[str, str], current_url: str, pending: Mapping[str, object]) -> Identity:
        """Verify the provider's answer against what :meth:`begin` discovered (``pending``).

        Returns the identity or raises :class:`LoginFailed`.
        """
        session: dict[str, Any] = {}
        consumer = openid_consumer.Consumer(session, self.associations)
        session[consumer._token_key] = endpoint_from_fields(pending)  # where Consumer.begin leaves it
        _DISPATCH.local.fetcher = self.fetcher
        _DISPATCH.local.error = None
        try:
            response = consumer.complete(dict(query), current_url)
        except (HTTPFetchingError, DiscoveryFailure, GatewayError) as exc:
            fetch_error = find_fetch_error(exc)
            code = "invalid" if fetch_error is None else _fetch_error_code(fetch_error)
            raise LoginFailed(f"verification failed: {fetch_error or exc}", code) from exc
        except Exception as exc:  # a third-party library on hostile input: contain, log, refuse
            logger.exception("python3-openid raised while completing a sign-in")
            raise LoginFailed(f"verification raised {type(exc).__name__}") from exc
        finally:
            _DISPATCH.local.fetcher = None
            failed_fetch: FetchError | None = _DISPATCH.local.error
            _DISPATCH.local.error = None
        status = response.status
        if status == openid_consumer.CANCEL:
            raise LoginCancelled()
        if status == openid_consumer.SETUP_NEEDED:
            raise LoginFailed("provider answered setup_needed")
        if status != openid_consumer.SUCCESS:
            message = getattr(response, "message", status)
            if failed_fetch is not None:  # check_authentication could not be fetched; the library says "denied"
                raise LoginFailed(f"provider did not answer check_authentication: {failed_fetch} "
                                  f"(python3-openid: {message})", _fetch_error_code(failed_fetch))
            raise LoginFailed(f"provider response refused: {message}")
        claimed_id = response.identity_url
        endpoint_url = response.endpoint.server_url
        if not claimed_id:  # OpenID 2.0 §10.1: an assertion about no identifier proves nobody
            raise LoginFailed(f"{endpoint_url} asserted no identifier")
        check_endpoint_allowed(endpoint_url, self.provider_allowlist)
        check_authority(claimed_id, endpoint_url)
        nickname, email = signed_profile(response)
        if self.require_email and not email:
            raise LoginFailed(f"no signed e-mail from {endpoint_url}", "email-required")
        asked = step_up_of(pending)  # the login state's record of a step-up, if this sign-in was one
        return Identity(claimed_id, fallback_nickname(nickname, email, claimed_id), email,
                        provider=provider_label(endpoint_url, self.named_providers),
                        assurance=signed_assurance(response, asked.acr_values if asked is not None else ()))


def _discovery_failed(identifier: str, cause: object) -> LoginFailed:
    if isinstance(cause, ProviderNotAllowed):
        return cause
    if isinstance(cause, BaseException) and not isinstance(cause, GatewayError):
        cause = find_fetch_error(cause) or cause
    code = _fetch_error_code(cause) if isinstance(cause, DiscoveryRefused) else "no-provider"
    return LoginFailed(f"discovery of {identifier!r} failed: {cause}", code)


def _fetch_error_code(error: FetchError) -> str:
    """The login page message for a failed fetch (``gateway.pages.render.MESSAGES``)."""
    if isinstance(error, PrivateAddressRefused):
        return "private-address"
    if isinstance(error, DiscoveryRefused):
        return "refused"
    return "unreachable"
