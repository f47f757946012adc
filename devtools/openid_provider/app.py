"""``create_app``: one Starlette app serving every profile of the development provider."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from devtools.openid_provider import endpoint
from devtools.openid_provider.consent import Consent
from devtools.openid_provider.discovery import DiscoveryViews
from devtools.openid_provider.pages import STATIC_DIRECTORY, error_page
from devtools.openid_provider.provider import Provider


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_page(request, exc.status_code, str(exc.detail))


def create_app(base_url: str | None = None, *, oidc_issuer: str | None = None,
               ignore_step_up: bool = False) -> Starlette:
    """The development OpenID provider — never deploy it.

    ``base_url`` is the externally visible URL (``"http://127.0.0.1:8001"``); every
    identifier and endpoint URL is built from it. When None it is taken from each
    request's scheme and Host header. Associations and pending requests live in this
    app instance's memory: run one process. ``oidc_issuer``: the OpenID Connect provider
    this one is moving to; claimed identifiers then answer ``Accept: application/json``
    with ``{"iss": oidc_issuer}`` (OpenID 2.0 to OpenID Connect Migration §6). ``ignore_step_up``: PAPE's
    ``max_auth_age`` and policies are disregarded (``devtools/stepup.py``), to test a relying party's refusal.
    """
    provider = Provider(base_url, oidc_issuer, ignore_step_up)
    routes = [
        *DiscoveryViews(provider).routes(),
        *endpoint.routes(provider),
        *Consent(provider).routes(),
        Mount("/static", StaticFiles(directory=STATIC_DIRECTORY), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
