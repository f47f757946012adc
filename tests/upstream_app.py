"""A small plain-ASGI upstream for the proxy tests, the nginx tests and the benchmark.

Serve it with ``UvicornThread(app)`` or ``uvicorn tests.upstream_app:app``.

Routes:

- ``/hello``              a fixed ``hello`` (the trivial app of the benchmark)
- ``/echo``, ``/echo/...``  JSON of the method, path, raw path, query, headers and client it received
- ``/upload``             streams the request body; JSON ``{"bytes": n, "sha256": hex}``
- ``/download?size=N``    N bytes of :func:`pattern` in 64 KiB chunks (``&chunked=1``: no Content-Length)
- ``/redirect``           302 to ``/elsewhere``
- ``/cookies``            two ``Set-Cookie`` headers
- ``/status/<code>``      that status (no body for 1xx, 204, 304)
- ``/slow?seconds=S``     answers after S seconds
- ``/drop``               promises 1 MiB, sends one chunk, then the connection dies
- ``/hop``                 answers with hop-by-hop headers (and ``x-kept: yes``) a proxy must drop
- ``/connections``        how many distinct client connections have reached this app
- ``/held?stream=ID``     a streamed answer: its first part at once, the rest once ``/release?stream=ID``
                          is asked (``&type=sse``: two Server-Sent Events, ``&accel=no``: ``X-Accel-Buffering: no``)
- ``/release?stream=ID``  lets that stream finish
- WebSocket ``/ws/...``   accepts (the first subprotocol offered, if any) and echoes every message; the text
                          ``handshake`` gets the JSON of the handshake (as ``/echo``), ``close <code> <reason>``
                          makes the app close with that code, ``crash`` raises (uvicorn drops the connection);
                          ``/ws/refuse`` answers the handshake with a 403, ``/ws/redirect`` with a 302
- ``/ws-closes``          JSON list of ``[path, code, reason]`` of the WebSockets the client side closed

Serve it with ``proxy_headers=False`` (``--no-proxy-headers``) so that ``client``
is the real peer, not what an ``X-Forwarded-For`` header says.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import deque
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

CHUNK = 64 * 1024
_BLOCK = bytes(range(256)) * (CHUNK // 256)

# (host, port) of every client connection seen: the proxy's pool reuse shows here.
connections_seen: set[tuple[str, int]] = set()
# Downloads still being sent: one that outlives its client shows a leak.
active_downloads = 0
# The paths of the latest requests that reached the app: a refused request never shows here.
paths_seen: deque[str] = deque(maxlen=1000)
# /held streams waiting for their /release, by id.
_releases: dict[str, asyncio.Event] = {}
# [path, code, reason] of each WebSocket closed by the other side.
websocket_closes: deque[list[Any]] = deque(maxlen=1000)


def pattern(size: int) -> Iterator[bytes]:
    """The deterministic bytes ``/download`` sends, in 64 KiB chunks."""
    while size > 0:
        chunk = _BLOCK if size >= CHUNK else _BLOCK[:size]
        size -= len(chunk)
        yield chunk


def pattern_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for chunk in pattern(size):
        digest.update(chunk)
    return digest.hexdigest()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        paths_seen.append(scope["path"])
        await _websocket(scope, receive, send)
        return
    if scope["type"] != "http":
        return
    client = scope.get("client")
    if client:
        connections_seen.add((client[0], client[1]))
    path: str = scope["path"]
    paths_seen.append(path)
    if path == "/hello":
        await _respond(send, 200, b"hello")
        return
    query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}
    handler = _ROUTES.get(path)
    if handler is None and path.startswith("/echo/"):
        handler = _echo
    if handler is not None:
        await handler(scope, receive, send, query)
    elif path.startswith("/status/"):
        await _status(send, int(path[len("/status/") :]))
    else:
        await _respond(send, 404, b"not found")


async def _respond(
    send: Any,
    status: int,
    body: bytes,
    content_type: bytes = b"text/plain",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    headers.extend(extra or ())
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Any, data: Any, status: int = 200) -> None:
    await _respond(send, status, json.dumps(data).encode(), b"application/json")


async def _read_body(receive: Any) -> tuple[int, str]:
    digest = hashlib.sha256()
    count = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        count += len(chunk)
        digest.update(chunk)
        if not message.get("more_body", False):
            break
    return count, digest.hexdigest()


async def _echo(scope: dict[str, Any], receive: Any, send: Any, query: dict[str, str]) -> None:
    count, _ = await _read_body(receive)
    client = scope.get("client")
    await _json(
        send,
        {
            "method": scope["method"],
            "path": scope["path"],
            "raw_path": (scope.get("raw_path") or b"").decode("latin-1"),
            "query_string": scope["query_string"].decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "client": list(client) if client else None,
            "body_bytes": count,
        },
    )


async def _upload(scope: dict[str, Any], receive: Any, send: Any, query: dict[str, str]) -> None:
    count, sha = await _read_body(receive)
    await _json(send, {"bytes": count, "sha256": sha})


async def _download(scope: dict[str, Any], receive: Any, send: Any, query: dict[str, str]) -> None:
    global active_downloads
    size = int(query.get("size", "0"))
    headers = [(b"content-type", b"application/octet-stream")]
    if query.get("chunked") != "1":
        headers.append((b"content-length", str(size).encode()))
    await _read_body(receive)
    active_downloads += 1
    disconnected = asyncio.ensure_future(receive())  # completes when the client goes
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for chunk in pattern(size):
            if disconnected.done():
                return
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await asyncio.sleep(0)  # a send to a gone client does not yield; let the watcher run
        await send({"type": "http.response.body", "body": b""})
    finally:
        disconnected.cancel()
        active_downloads -= 1


async def _redirect(scope: dict[str, Any], receive: Any, send: Any, query: dict[str, str]) -> None:
    await _respond(send, 302, b"", extra=[(b"location", b"/elsewhere")])


async def _cookies(scope: dict[str, Any], receive: Any, send: Any, query: dict[str, str]) -> None:
    cookies = [(b"set-cookie", b"a=1; Path=/; HttpOnly"), (b"set-cookie", b"b=2; Path=/; Secure")]
    await _respond(send, 200, b"cookies", extra=cookies)


async def _status(send: Any, code: int) -> None:
    if code < 200 or code in (204, 304):
        await send({"type": "http.response.start", "status": code, "headers": [(b"etag", b'"v1"')]})
        await send({"type": "http.response.body", "body": b""})
    else:
        await _respond(send, code, f"status {code}".encode())


async def _slow(scope: dict[str, Any], receive: Any, send: Any, query: dict[str, str]) -> None:
    await asyncio.sleep(float(query.get("seconds", "1")))
    await _respond(send, 200, b"slow")


async def _drop(scope: dict[str, Any], receive: Any, send: Any, query: dict[str, str]) -> None:
    # Returning before the promised length makes uvicorn close the connection.
    headers = [(b"content-type", b"application/octet-stream"), (b"content-length", str(1024 * 1024).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": _BLOCK, "more_body": True})


async def _hop(scope: dict[str, Any], receive: Any, send: Any, query: dict[str, str]) -> None:
    hop = [
        (b"connection", b"x-internal"),
        (b"x-internal", b"secret"),
        (b"keep-alive", b"timeout=5"),
        (b"proxy-authenticate", b"Basic"),
        (b"trailer", b"x-checksum"),
        (b"upgrade", b"h2c"),
        (b"x-kept", b"yes"),
    ]
    await _respond(send, 200, b"hop", extra=hop)


async def _connections(scope: dict[str, Any], receive: Any, send: Any, query: dict[str, str]) -> None:
    await _json(send, {"connections": len(connections_seen)})


def _scope_json(scope: dict[str, Any]) -> dict[str, Any]:
    client = scope.get("client")
    return {
        "path": scope["path"],
        "raw_path": (scope.get("raw_path") or b"").decode("latin-1"),
        "query_string": scope["query_string"].decode("latin-1"),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "client": list(client) if client else None,
    }


async def _held(scope: dict[str, Any], receive: Any, send: Any, query: dict[str, str]) -> None:
    release = _releases.setdefault(query.get("stream", ""), asyncio.Event())
    sse = query.get("type") == "sse"
    headers = [(b"content-type", b"text/event-stream" if sse else b"application/octet-stream"),
               (b"cache-control", b"no-cache")]
    if query.get("accel") == "no":
        headers.append((b"x-accel-buffering", b"no"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    first, second = (b"data: first\n\n", b"data: second\n\n") if sse else (b"first part;", b"second part")
    await send({"type": "http.response.body", "body": first, "more_body": True})
    try:
        await asyncio.wait_for(release.wait(), 60)
    finally:
        _releases.pop(query.get("stream", ""), None)
    await send({"type": "http.response.body", "body": second})


async def _release(scope: dict[str, Any], receive: Any, send: Any, query: dict[str, str]) -> None:
    release = _releases.get(query.get("stream", ""))
    if release is None:
        await _respond(send, 404, b"no such stream")
        return
    release.set()
    await _respond(send, 200, b"released")


async def _websocket_closes(scope: dict[str, Any], receive: Any, send: Any, query: dict[str, str]) -> None:
    await _json(send, list(websocket_closes))


async def _websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    if scope["path"] == "/ws/redirect":
        await send({"type": "websocket.http.response.start", "status": 302,
                    "headers": [(b"location", b"/ws/echo"), (b"content-length", b"0")]})
        await send({"type": "websocket.http.response.body", "body": b""})
        return
    if scope["path"] == "/ws/refuse":
        body = b"no websockets here"
        await send({"type": "websocket.http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode()),
                                (b"x-app-refusal", b"yes")]})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    subprotocols = scope.get("subprotocols") or []
    await send({"type": "websocket.accept", "subprotocol": subprotocols[0] if subprotocols else None,
                "headers": [(b"set-cookie", b"ws=1; Path=/")]})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            websocket_closes.append([scope["path"], message.get("code"), message.get("reason") or ""])
            return
        text = message.get("text")
        if text == "handshake":
            await send({"type": "websocket.send", "text": json.dumps(_scope_json(scope))})
        elif text == "crash":
            raise RuntimeError("the app crashed mid-socket (on purpose)")  # uvicorn drops the connection
        elif text is not None and text.startswith("close "):
            _, code, reason = text.split(" ", 2)
            await send({"type": "websocket.close", "code": int(code), "reason": reason})
            return
        elif text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


_ROUTES = {
    "/echo": _echo,
    "/upload": _upload,
    "/download": _download,
    "/redirect": _redirect,
    "/cookies": _cookies,
    "/slow": _slow,
    "/drop": _drop,
    "/hop": _hop,
    "/connections": _connections,
    "/held": _held,
    "/release": _release,
    "/ws-closes": _websocket_closes,
}
