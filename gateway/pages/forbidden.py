"""``/_gateway/forbidden``: the 403 page of a signed-in person a rule does not let in.

nginx (mode 1) sends its ``error_page 403`` here with the original request
URI in ``X-Original-URI``; the proxy (mode 2) renders it the same way. The
page says who the person is signed in as and offers to sign in as someone
else (sign out, then the login page with the same ``next``), never a
redirect to the login page: that would loop.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import StoreUnavailable
from gateway.pages.forms import CSRFForms
from gateway.pages.render import add_cookies
from gateway.pages.services import Services

__all__ = ["ForbiddenEndpoint"]


class ForbiddenEndpoint:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.runtime = services.runtime
        self.paths = services.runtime.paths
        self.forms = CSRFForms(services.runtime)

    async def page(self, request: Request) -> Response:
        runtime = self.runtime
        target = runtime.next_targets.safe(request.headers.get("x-original-uri"))
        try:
            session = self.services.current_session(request)
        except StoreUnavailable:
            session = None
        token, cookies = self.forms.form_token(request)
        page = self.services.pages.render(
            "forbidden.html", status=403, identity=session.identity if session else None, csrf_token=token,
            switch_next=self.paths.login_url(target))
        return add_cookies(page, cookies)
