"""Rendering: this provider's pages on its own ``base.html``, reusing the OpenID 2.0 provider's look.

The stylesheet, the auto-submit script and the error page come from
``devtools/openid_provider``; templates found here take precedence, so its
``error.html`` extends *this* base with the OpenID Connect banner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from devtools.openid_provider.pages import PAGE_CSP, PAGE_HEADERS
from devtools.openid_provider.pages import STATIC_DIRECTORY as SHARED_STATIC_DIRECTORY

HERE = Path(__file__).parent
STATIC_DIRECTORY = HERE / "static"
SHARED_TEMPLATES = SHARED_STATIC_DIRECTORY.parent / "templates"
LOADER = jinja2.ChoiceLoader([jinja2.FileSystemLoader(HERE / "templates"), jinja2.FileSystemLoader(SHARED_TEMPLATES)])
TEMPLATES = Jinja2Templates(env=jinja2.Environment(loader=LOADER, autoescape=True))

OIDC_TOOL = "Development OpenID Connect provider"
GITHUB_TOOL = "Development GitHub-style OAuth 2.0 fake (not GitHub)"

__all__ = ["GITHUB_TOOL", "OIDC_TOOL", "SHARED_STATIC_DIRECTORY", "STATIC_DIRECTORY", "error_page", "form_post_page",
           "page"]


def page(request: Request, template: str, context: dict[str, Any] | None = None, *, status_code: int = 200,
         headers: dict[str, str] | None = None, tool: str = OIDC_TOOL) -> Response:
    """An HTML page extending this package's ``base.html``, whose banner names ``tool``."""
    return TEMPLATES.TemplateResponse(
        request, template, {"tool": tool, **(context or {})}, status_code=status_code,
        headers={**PAGE_HEADERS, **(headers or {})},
    )


def error_page(request: Request, status_code: int, message: str, *, tool: str = OIDC_TOOL) -> Response:
    return page(request, "error.html", {"status_code": status_code, "message": message}, status_code=status_code,
                tool=tool)


def form_post_page(request: Request, action: str, fields: dict[str, str]) -> Response:
    """``response_mode=form_post`` (OAuth 2.0 Form Post Response Mode §2): a form the browser posts.

    Submitted by the shared script file, so the page's Content-Security-Policy still forbids inline code.
    """
    return page(request, "form_post.html", {"action": action, "fields": fields},
                headers={"Content-Security-Policy": f"{PAGE_CSP}; script-src 'self'"})
