"""A configured provider: one sign-in button, and who the gateway is to that provider.

It lives with the sign-in methods that use it (the settings build it from TOML and environment), so
the protocols never import the settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from starlette.datastructures import Secret

ProviderType = Literal["openid2", "oidc", "oauth2"]
DEFAULT_SCOPES = "openid email profile"


@dataclass(frozen=True, slots=True)
class Provider:
    """A one-click sign-in button on the login page.

    ``type`` "openid2": ``identifier`` is the OpenID 2.0 identifier the button
    sends. ``type`` "oidc": ``identifier`` is the issuer (discovery is at
    ``<issuer>/.well-known/openid-configuration``) and the client fields say
    who we are to it; the button starts an OpenID Connect code flow.
    """

    name: str
    identifier: str
    type: ProviderType = "openid2"
    client_id: str = ""
    client_secret: Secret | None = field(default=None, repr=False)
    scopes: str = DEFAULT_SCOPES
    groups_claim: str = ""
    # type "oauth2" (preset github): identifier is the authorization endpoint; these are the rest.
    token_url: str = ""
    api_url: str = ""
    groups_from: tuple[str, ...] = ()
    # type "oidc": /logout also ends the session at the provider (RP-Initiated Logout, end_session_endpoint).
    logout_at_provider: bool = False
    # type "oidc": send openid2_realm and map a verified openid2_id to its OpenID 2.0 user
    # (gateway.signin.oidc.migration).
    openid2_migration: bool = False
    # type "oidc": its JWT access tokens and ID tokens authenticate API clients when their aud is one of these
    # (gateway.signin.oidc.bearer); empty: no bearer tokens from this provider. bearer_clients: when set, the
    # token's client_id (or azp) must be one of them.
    bearer_audiences: tuple[str, ...] = ()
    bearer_clients: tuple[str, ...] = ()
    # type "oidc": an opaque bearer token is introspected at this provider (RFC 7662,
    # gateway.signin.oidc.introspection) with the client's credentials; off: opaque tokens are refused. Each
    # answer is used bearer_introspection_cache seconds at most (never past the token's exp), so that a
    # revocation at the provider is seen that soon.
    bearer_introspection: bool = False
    bearer_introspection_cache: int = 60

    @property
    def issuer(self) -> str:
        return self.identifier
