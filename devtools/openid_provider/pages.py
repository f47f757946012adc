"""Rendering: HTML pages from one base layout, XRDS documents, error pages.

Templates are autoescaped (``.html`` and ``.xml``) and carry no inline script, so the
Content-Security-Policy allows nothing but our own stylesheet (and, on the one page
that needs it, our own script file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

HERE = Path(__file__).parent
STATIC_DIRECTORY = HERE / "static"
TEMPLATES = Jinja2Templates(directory=HERE / "templates")

XRDS_MEDIA_TYPE = "application/xrds+xml"
PAGE_CSP = "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'"
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def page(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """An HTML page extending ``base.html``."""
    return TEMPLATES.TemplateResponse(
        request, template, context or {}, status_code=status_code, headers={**PAGE_HEADERS, **(headers or {})},
    )


def error_page(request: Request, status_code: int, message: str) -> Response:
    return page(request, "error.html", {"status_code": status_code, "message": message}, status_code=status_code)


def autosubmit_page(request: Request, action: str, fields: dict[str, str]) -> Response:
    """An indirect response too long for a URL (OpenID 2.0 §5.2.1): a form the browser POSTs.

    python3-openid's own page submits it with an inline script; ours loads a script file
    so that the Content-Security-Policy still forbids inline code.
    """
    return page(request, "autosubmit.html", {"action": action, "fields": fields},
                headers={"Content-Security-Policy": f"{PAGE_CSP}; script-src 'self'"})


def wants_xrds(request: Request) -> bool:
    """Yadis discovery (Yadis 1.0 §6.2.4) asks for XRDS with this Accept header."""
    return XRDS_MEDIA_TYPE in request.headers.get("accept", "")


def xrds(request: Request, service_types: list[str], endpoint: str) -> Response:
    """An XRDS document with one OpenID 2.0 service (OpenID 2.0 §7.3.2)."""
    return TEMPLATES.TemplateResponse(
        request, "xrds.xml", {"service_types": service_types, "endpoint": endpoint}, media_type=XRDS_MEDIA_TYPE,
    )
