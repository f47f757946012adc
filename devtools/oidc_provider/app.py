"""``create_app``: the development OpenID Connect provider and its GitHub-style fake in one Starlette app."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from devtools.oidc_provider.authorize import Authorization
from devtools.oidc_provider.clients import Client
from devtools.oidc_provider.discovery import Discovery
from devtools.oidc_provider.github import GitHubFake
from devtools.oidc_provider.logout import Logout
from devtools.oidc_provider.pages import SHARED_STATIC_DIRECTORY, STATIC_DIRECTORY, error_page
from devtools.oidc_provider.provider import Provider
from devtools.oidc_provider.token_endpoint import TokenEndpoint


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_page(request, exc.status_code, str(exc.detail))


def create_app(base_url: str | None = None, clients: list[Client] | None = None, *,
               groups_claim: str = "groups", openid2_provider: str | None = None,
               access_token_audience: str | None = None, ignore_step_up: bool = False,
               opaque_access_tokens: bool = False) -> Starlette:
    """The development OpenID Connect provider — never deploy it.

    ``base_url`` is the issuer (``"http://127.0.0.1:8002"``); when None it is taken from
    each request's scheme and Host header. Keys, codes, tokens and sessions live in this
    app instance's memory: run one process. ``app.state.provider`` is the shared state.
    ``openid2_provider`` (a local OpenID 2.0 provider's URL) makes ``openid2_id`` the identifier of
    the same user name there (OpenID 2.0 to OpenID Connect Migration). ``access_token_audience``: access
    tokens are RFC 9068 JWTs for that audience, and the client credentials grant is offered.
    ``ignore_step_up``: ``max_age``, ``prompt=login``, ``acr_values`` and ``claims`` are disregarded
    (``devtools/stepup.py``), so a relying party's refusal of a provider that ignores them can be tested.
    ``opaque_access_tokens``: access tokens are random strings even with an audience; a resource server
    learns what they stand for from the introspection endpoint (RFC 7662).
    """
    provider = Provider(base_url, clients or [], groups_claim, openid2_provider, access_token_audience,
                        ignore_step_up, opaque_access_tokens)
    routes = [
        *Discovery(provider).routes(),
        *Authorization(provider).routes(),
        *TokenEndpoint(provider).routes(),
        *Logout(provider).routes(),
        *GitHubFake(provider).routes(),
        Mount("/static/oidc", StaticFiles(directory=STATIC_DIRECTORY), name="oidc-static"),
        Mount("/static", StaticFiles(directory=SHARED_STATIC_DIRECTORY), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    app.state.provider = provider
    return app
