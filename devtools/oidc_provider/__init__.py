"""A local OpenID Connect provider for development and tests — never deploy it.

Anyone signs in as anyone: the consent page asks for a user name, e-mail, groups (and,
for the OpenID 2.0 migration, an old OpenID 2.0 identifier). Beyond a correct provider
(discovery, JWKS with rotation, code flow with PKCE S256, userinfo, RP-initiated and
back-channel logout) it can misbehave on demand (``misbehaviour.py``) so tests see a
relying party fail closed, and it carries a GitHub-style OAuth 2.0 fake under
``/github`` (``github.py``).
"""

from __future__ import annotations

from devtools.oidc_provider.app import create_app
from devtools.oidc_provider.clients import Client, ClientConfigError, clients_from_json, gateway_client
from devtools.oidc_provider.misbehaviour import MODES, Mode

__all__ = ["MODES", "Client", "ClientConfigError", "Mode", "clients_from_json", "create_app", "gateway_client"]
