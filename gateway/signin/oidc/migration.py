"""OpenID 2.0 to OpenID Connect Migration 1.0: an OIDC sign-in that proves an old OpenID 2.0 account.

A provider moving from OpenID 2.0 to OpenID Connect can put the person's old
OpenID 2.0 claimed identifier in the ID token (``openid2_id``) when the
authorization request names our OpenID 2.0 realm (``openid2_realm``, §2: the
realm the OpenID 2.0 sign-in uses, ``<public origin>/``). We send it only for
providers configured with ``openid2_migration = true``: the realm tells the
provider who we were, and only a provider we mean to migrate from needs to know.

The claim alone proves nothing: any provider can write any URL in it. The
spec (final, 2015; §5 "Verification of the ID Token" and §6 "Verification
that the OpenID Connect OP is Authoritative") asks the relying party to check
that the provider is authoritative for that identifier before trusting it.
:meth:`OpenID2Migration.verify` does, in this order (paraphrased from the spec):

1. The ID token itself is verified as any other (OpenID Connect Core
   §3.1.3.7: signature, ``iss``, ``aud``, ``nonce``...) — done before this
   module is reached (:mod:`gateway.signin.oidc.exchange`).
2. Perform OpenID 2.0 discovery (OpenID 2.0 §7.3) on the ``openid2_id``
   value to obtain the OP Endpoint URL of the OpenID 2.0 provider.
3. If the authority section (host and port) of that OP Endpoint URL is the
   one of the OpenID Connect provider's Authorization Endpoint URI, the
   provider is authoritative. (We compare the whole origin: the scheme too.)
4. If they differ, issue a GET request to the ``openid2_id`` URL with
   ``Accept: application/json``; the answer is a JSON object whose ``iss``
   member MUST exactly match the ``iss`` of the ID token.
5. Only then associate the OpenID Connect identifier (``iss`` + ``sub``)
   with the existing OpenID 2.0 account (§7).

Beyond the spec, because the identifier becomes a user id here: it must be an
http(s) URL (no XRI) that discovery reports as its own claimed identifier
(a redirect to another identifier is refused: the OpenID 2.0 sign-in would
have given the other one), its endpoint must pass ``provider_allowlist`` and
the known providers' authority rules (:mod:`gateway.signin.openid2.providers`), and
every fetch goes through the OpenID 2.0 exchange's SSRF-guarded, time- and
size-capped fetcher (the identifier is the provider's word, as untrusted as
an identifier typed into the login form). Everything blocks: run it on the
sign-in threads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urldefrag, urlsplit

from gateway.errors import FetchError, LoginFailed, ProviderNotAllowed
from gateway.fetch.allowlist import check_endpoint_allowed, origin
from gateway.signin.openid2.consumer import MAX_IDENTIFIER_LENGTH, XRI_PREFIXES, OpenIDExchange
from gateway.signin.openid2.providers import check_authority

MIGRATION_REFUSED = "migration-refused"  # the login page message (gateway.pages.render.MESSAGES)


class MigrationRefused(LoginFailed):
    """The provider's ``openid2_id`` could not be verified: no session, nothing linked."""

    def __init__(self, reason: str, code: str = MIGRATION_REFUSED) -> None:
        super().__init__(f"OpenID 2.0 migration refused: {reason}", code)


@dataclass(frozen=True, slots=True)
class OpenID2Claim:
    """An ``openid2_id`` as an ID token carried it, with what verifying it needs."""

    openid2_id: str
    issuer: str  # the ID token's iss (already checked against discovery)
    authorization_endpoint: str  # of the OpenID Connect provider, from its discovery document


def openid2_realm(redirect_uri: str) -> str:
    """The OpenID 2.0 realm of the site whose callback is ``redirect_uri``: its origin and ``/``.

    The same value :class:`~gateway.runtime.Runtime` gives the OpenID 2.0
    exchange (``public_origin + "/"``): the callback lives at the origin.
    """
    parts = urlsplit(redirect_uri)
    return f"{parts.scheme}://{parts.netloc}/"


class OpenID2Migration:
    """Verifies ``openid2_id`` claims with the OpenID 2.0 exchange's discovery and fetcher."""

    def __init__(self, exchange: OpenIDExchange) -> None:
        self.exchange = exchange

    def verify(self, claim: OpenID2Claim) -> str:
        """The OpenID 2.0 user id the claim proves, or :class:`MigrationRefused`."""
        openid2_id = claim.openid2_id
        if not (0 < len(openid2_id) <= MAX_IDENTIFIER_LENGTH) or openid2_id.lower().startswith(XRI_PREFIXES) \
                or origin(openid2_id) is None:
            raise MigrationRefused(f"openid2_id {openid2_id[:200]!r} is not an http(s) URL")
        try:
            claimed_id, endpoints = self.exchange.discover(openid2_id)
        except LoginFailed as exc:
            raise MigrationRefused(f"discovery of openid2_id {openid2_id[:200]!r} failed: {exc.reason}") from exc
        if claimed_id != urldefrag(openid2_id)[0]:
            raise MigrationRefused(f"discovery of openid2_id {openid2_id[:200]!r} gave another claimed identifier "
                                   f"{claimed_id[:200]!r}")
        if not endpoints:
            raise MigrationRefused(f"openid2_id {openid2_id[:200]!r} names no OpenID 2.0 sign-on endpoint")
        ours = origin(claim.authorization_endpoint)
        same = [e for e in endpoints if origin(e) == ours]
        if same:
            endpoint = same[0]
        else:
            self._check_iss_document(openid2_id, claim.issuer)
            endpoint = endpoints[0]
        try:
            check_endpoint_allowed(endpoint, self.exchange.provider_allowlist)
            check_authority(openid2_id, endpoint)
        except ProviderNotAllowed as exc:
            raise MigrationRefused(exc.reason) from exc
        return openid2_id

    def _check_iss_document(self, openid2_id: str, issuer: str) -> None:
        """§6 when the authorities differ: ``GET openid2_id`` (JSON) must name our ``iss`` exactly."""
        try:
            response = self.exchange.fetcher.fetch(openid2_id, None, {"Accept": "application/json"})
        except FetchError as exc:
            raise MigrationRefused(f"GET {openid2_id[:200]} (Accept: application/json): {exc}") from exc
        try:
            document = json.loads(response.body) if response.status == 200 else None
        except ValueError:
            document = None
        named = document.get("iss") if isinstance(document, dict) else None
        if named != issuer:
            raise MigrationRefused(f"{openid2_id[:200]} is served by another OpenID 2.0 provider, and its JSON "
                                   f"(status {response.status}) names iss {str(named)[:200]!r}, not {issuer}")


__all__ = ["MIGRATION_REFUSED", "MigrationRefused", "OpenID2Claim", "OpenID2Migration", "openid2_realm"]
