"""Small apps written with real routers, for the differential test (tests/differential/test_routers.py).

One ASGI application (``uvicorn tests.differential.routers:app``) stands behind the gateway and
hands each request to the router its Host names: ``starlette.test`` (Starlette's ``Router``),
``flask.test`` (Flask/Werkzeug's URL map, served through uvicorn's WSGI adapter as a WSGI server
would), ``django.test`` (Django's URL resolver, through Django's own ASGI handler) and
``express.test`` (Express's router in node: the request is relayed byte for byte, its raw target
unchanged, to ``DIFFERENTIAL_EXPRESS_PORT``). Every app has the same routes:

- ``/admin``, ``/reports``, ``/Settings`` and ``DELETE /posts/<id>``: protected handlers that answer
  ``protected:<route>``;
- ``/public``: a public handler that answers ``public``.

Which handler a spelling reaches is the router's own decision; nothing here normalises a path.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import django
from django.conf import settings as django_settings
from django.http import HttpRequest, HttpResponse
from django.urls import path as django_path
from flask import Flask
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from uvicorn.middleware.wsgi import WSGIMiddleware

ROUTES = ("admin", "reports", "Settings")

# --- Starlette -----------------------------------------------------------------------------------


def _starlette_handler(name: str) -> Any:
    async def handler(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"protected:{name.lower()}")

    return handler


async def _starlette_delete(request: Request) -> PlainTextResponse:
    return PlainTextResponse("protected:posts-delete")


async def _starlette_public(request: Request) -> PlainTextResponse:
    return PlainTextResponse("public")


starlette_app = Starlette(routes=[
    *(Route(f"/{name}", _starlette_handler(name), methods=["GET", "POST"]) for name in ROUTES),
    Route("/posts/{id}", _starlette_delete, methods=["DELETE"]),
    Route("/public", _starlette_public),
])

# --- Flask (Werkzeug) ----------------------------------------------------------------------------

flask_app = Flask("differential")
for _name in ROUTES:
    flask_app.add_url_rule(f"/{_name}", f"protected_{_name}", (lambda n=_name: f"protected:{n.lower()}"),
                           methods=["GET", "POST"])
flask_app.add_url_rule("/posts/<int:post>", "posts_delete", lambda post: "protected:posts-delete", methods=["DELETE"])
flask_app.add_url_rule("/public", "public", lambda: "public")

# --- Django --------------------------------------------------------------------------------------


def _django_view(name: str) -> Any:
    def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        if name == "posts-delete" and request.method != "DELETE":
            return HttpResponse("method not allowed", status=405)
        return HttpResponse(name if name == "public" else f"protected:{name}", content_type="text/plain")

    return view


urlpatterns = [
    *(django_path(name, _django_view(name.lower())) for name in ROUTES),
    django_path("posts/<int:post>", _django_view("posts-delete")),
    django_path("public", _django_view("public")),
]

django_settings.configure(
    DEBUG=False, SECRET_KEY="differential-test-only", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
    # A project's defaults: CommonMiddleware's APPEND_SLASH redirects /admin/ (it never serves it).
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"], INSTALLED_APPS=[], USE_TZ=True,
)
django.setup()
from django.core.asgi import get_asgi_application  # noqa: E402  (after settings.configure)

django_app = get_asgi_application()

# --- Express (node), relayed ---------------------------------------------------------------------


async def express_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Relay the request to Express with its raw target and headers; relay the answer back."""
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    target = scope["raw_path"] + (b"?" + scope["query_string"] if scope["query_string"] else b"")
    headers = [(name, value) for name, value in scope["headers"]
               if name not in (b"connection", b"content-length", b"transfer-encoding", b"keep-alive")]
    head = b"%s %s HTTP/1.1\r\n" % (scope["method"].encode("ascii"), target)
    head += b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    head += b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
    reader, writer = await asyncio.open_connection("127.0.0.1", int(os.environ["DIFFERENTIAL_EXPRESS_PORT"]))
    writer.write(head + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    raw_headers, _, content = rest.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in raw_headers.lower():
        content = _unchunk(content)
    content_type = b"text/plain"
    for line in raw_headers.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-type":
            content_type = value.strip()
    await send({"type": "http.response.start", "status": int(status_line.split()[1]),
                "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(content))]})
    await send({"type": "http.response.body", "body": content})


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2:]
    return out


# --- the dispatcher ------------------------------------------------------------------------------

APPS: dict[bytes, Any] = {
    b"starlette": starlette_app,
    b"flask": WSGIMiddleware(flask_app),
    b"django": django_app,
    b"express": express_app,
}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    host = next((value for name, value in scope["headers"] if name == b"host"), b"")
    router = APPS.get(host.split(b".", 1)[0].lower())
    if router is None:
        await send({"type": "http.response.start", "status": 421, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        return
    await router(scope, receive, send)
