"""The microblog's pages and its one JSON endpoint.

Every page shows who the app believes is signed in, as the gateway vouched for
it (:mod:`backend_app.identity`). The app links to the gateway's ``/login`` and
``/logout`` and never handles credentials itself.

``/admin`` is for the group ``admins``. The gateway's access rules may already
keep everyone else out; the app checks the verified groups again itself, so
that a missing or mistyped rule does not open the page to everyone signed in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from backend_app.database import Database, Post, User
from backend_app.identity import identity_of
from gateway.paths import DEFAULT, Paths
from gateway.proof import InvalidProof
from gateway.types import Identity

logger = logging.getLogger("backend_app.pages")

T = TypeVar("T")

MAX_POST_LENGTH = 280
PAGE_SIZE = 50
ADMIN_GROUP = "admins"
TEMPLATES_DIR = Path(__file__).with_name("templates")

# No inline scripts or styles anywhere, so the policy can be strict.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self';"
        " base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def template_environment() -> jinja2.Environment:
    """Every template is HTML, so every template is escaped.

    ``auto_reload=False``: the templates ship with the app and do not change while it runs; Jinja's default
    would ``stat()`` each template file (a page is three) on every render to see whether it did.
    """
    loader = jinja2.FileSystemLoader(TEMPLATES_DIR)
    return jinja2.Environment(loader=loader, autoescape=True, trim_blocks=True, lstrip_blocks=True,
                              auto_reload=False)


class PostRejected(ValueError):
    """A post body that cannot be published; the message is shown to the author."""


def clean_post_body(text: str) -> str:
    """The body to store: stripped, line endings normalised, 1 to 280 characters."""
    body = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not body:
        raise PostRejected("Write something first: the post is empty.")
    if len(body) > MAX_POST_LENGTH:
        raise PostRejected(f"A post has at most {MAX_POST_LENGTH} characters; this one has {len(body)}.")
    return body


def is_cross_site(request: Request) -> bool:
    """Whether the browser says a state-changing request came from another site.

    The app has no session of its own to hang a CSRF token on; Fetch Metadata
    (``Sec-Fetch-Site``) lets it refuse forms posted from other sites whatever
    the gateway's cookie settings are.
    """
    return request.headers.get("sec-fetch-site", "") in ("cross-site", "same-site")


def login_url(path: str, gateway: Paths = DEFAULT) -> str:
    """The gateway's login page, back to ``path`` afterwards."""
    return f"{gateway.login}?next={quote(path, safe='/')}"


def is_admin(identity: Identity | None) -> bool:
    """Whether the gateway vouched that this person is in the group ``admins``."""
    return identity is not None and ADMIN_GROUP in identity.groups


class Pages:
    """The route handlers, bound to one database and one template set."""

    def __init__(self, database: Database, templates: Jinja2Templates | None = None,
                 gateway: Paths = DEFAULT) -> None:
        self.database = database
        self.gateway = gateway  # the gateway's pages (its route_prefix: MICROBLOG_GATEWAY_PREFIX)
        self.templates = templates or Jinja2Templates(env=template_environment())

    async def current_user(self, request: Request) -> User | None:
        """The local user of the verified identity, created on its first visit."""
        me, _ = await self.with_user(request, lambda me: None)
        return me

    async def with_user(self, request: Request, query: Callable[[User | None], T]) -> tuple[User | None, T]:
        """The local user of the verified identity (as :meth:`current_user`) and what ``query`` reads for the page.

        One trip to the thread pool for both: every trip costs a hand-over to a worker thread and back to the
        event loop (futex wake-ups, the GIL changing hands), more than the indexed reads themselves, and under
        load those hand-overs multiply (measured in docs/performance.md: a signed-in page made two trips).
        """
        identity = identity_of(request)
        database = self.database

        def read() -> tuple[User | None, T]:
            me = None if identity is None else database.sync_user(identity)
            return me, query(me)

        return await run_in_threadpool(read)

    def render(
        self, request: Request, name: str, me: User | None, status_code: int = 200, **context: Any
    ) -> Response:
        context.update(me=me, login_url=login_url(request.url.path, self.gateway),
                       logout_url=self.gateway.logout, account_url=self.gateway.account,
                       is_admin=is_admin(identity_of(request)))
        return self.templates.TemplateResponse(
            request, name, context, status_code=status_code, headers=SECURITY_HEADERS
        )

    async def home(self, request: Request) -> Response:
        me, posts = await self.with_user(request, lambda me: self.database.recent_posts(PAGE_SIZE))
        return self._home(request, me, posts)

    def _home(
        self, request: Request, me: User | None, posts: list[Post], status_code: int = 200, message: str = "",
        draft: str = "",
    ) -> Response:
        return self.render(
            request,
            "index.html",
            me,
            status_code,
            posts=posts,
            message=message,
            draft=draft,
            max_length=MAX_POST_LENGTH,
        )

    async def publish(self, request: Request) -> Response:
        me = await self.current_user(request)
        if me is None:
            return self.render(request, "error.html", None, 403, title="Sign in to write a post", message="")
        if is_cross_site(request):
            return self.render(
                request, "error.html", me, 403, title="Refused", message="Posts can only be written from this site."
            )
        form = await request.form(max_files=0, max_fields=5, max_part_size=16 * 1024)
        text = form.get("body")
        text = text if isinstance(text, str) else ""
        try:
            body = clean_post_body(text)
        except PostRejected as exc:
            posts = await run_in_threadpool(self.database.recent_posts, PAGE_SIZE)
            return self._home(request, me, posts, 400, message=str(exc), draft=text)
        await run_in_threadpool(self.database.add_post, me, body)
        return RedirectResponse("/", status_code=303)

    async def user(self, request: Request) -> Response:
        nickname: str = request.path_params["nickname"]

        def author_and_posts(me: User | None) -> tuple[User | None, list[Post]]:
            author = self.database.user_by_nickname(nickname)
            return author, [] if author is None else self.database.posts_of(author, PAGE_SIZE)

        me, (author, posts) = await self.with_user(request, author_and_posts)
        if author is None:
            return self.render(
                request, "error.html", me, 404, title="No such user", message=f"Nobody here is called {nickname}."
            )
        return self.render(request, "user.html", me, author=author, posts=posts)

    async def about(self, request: Request) -> Response:
        """What the microblog is, and whether this request came with an identity (a public page has none)."""
        me = await self.current_user(request)
        return self.render(request, "about.html", me, identity=identity_of(request))

    async def admin(self, request: Request) -> Response:
        """Every user, for the group ``admins`` only (checked here too, whatever the gateway's rules)."""
        identity = identity_of(request)
        me, members = await self.with_user(request, lambda me: self.database.members() if is_admin(identity) else [])
        if not is_admin(identity):
            who = "nobody (not signed in)" if identity is None else repr(identity.user_id)
            logger.warning("refused %s to %s: not in the group %r", request.url.path, who, ADMIN_GROUP)
            message = (f"This page is for the group {ADMIN_GROUP} only, and "
                       + ("you are not signed in." if me is None else f"you are signed in as {me.nickname}, who is"
                          " not in it."))
            return self.render(request, "error.html", me, 403, title="Administrators only", message=message)
        return self.render(request, "admin.html", me, members=members, admin_group=ADMIN_GROUP)

    async def whoami(self, request: Request) -> Response:
        """The identity the app sees: for operators checking their set-up (``groups`` when there are any)."""
        identity = identity_of(request)
        if identity is None:
            return JSONResponse({"user": None})
        data: dict[str, Any] = {"user": identity.user_id, "nickname": identity.nickname, "email": identity.email}
        if identity.groups:
            data["groups"] = list(identity.groups)
        if identity.assurance is not None:  # X-Gateway-Auth-Time / X-Gateway-Acr, verified with the rest
            data["auth_time"] = int(identity.assurance.auth_time)
            data["acr"] = identity.assurance.acr
        return JSONResponse(data)

    async def http_error(self, request: Request, exc: Exception) -> Response:
        """Starlette's 404/405/400 (bad form) as pages in the site's layout."""
        assert isinstance(exc, HTTPException)
        me = await self.current_user(request)
        response = self.render(
            request, "error.html", me, exc.status_code, title=_TITLES.get(exc.status_code, "Error"), message=exc.detail
        )
        response.headers.update(exc.headers or {})
        return response

    def refused(self, request: Request, exc: InvalidProof) -> Response:
        """The 401 page for a request whose identity headers lack a valid proof."""
        return self.render(
            request,
            "error.html",
            None,
            401,
            title="The gateway's proof is missing or invalid",
            message="This request carries identity headers that the gateway did not vouch for. Sign in again.",
        )


_TITLES = {400: "Bad request", 404: "Page not found", 405: "Method not allowed", 413: "Too large"}

__all__ = ["ADMIN_GROUP", "MAX_POST_LENGTH", "Pages", "PostRejected", "clean_post_body", "is_admin", "is_cross_site",
           "login_url"]
