"""A hostile OpenID provider for the tests: it asserts whatever identifier it is told to.

Its signatures are valid (it is a real python3-openid server), so only the
relying party's check that the endpoint is authoritative for the claimed
identifier (OpenID 2.0 §11.2) stands between it and a stolen account.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from openid.server.server import Server
from openid.store.memstore import MemoryStore
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.servers import UvicornThread, free_port

XRDS = """<?xml version="1.0" encoding="UTF-8"?>
<xrds:XRDS xmlns:xrds="xri://$xrds" xmlns="xri://$xrd*($v*2.0)"><XRD><Service priority="0">
<Type>http://specs.openid.net/auth/2.0/server</Type><URI>{endpoint}</URI></Service></XRD></xrds:XRDS>"""


def rogue_app(base: str, asserted: str) -> Starlette:
    server = Server(MemoryStore(), base + "/endpoint")

    async def op_identifier(request: Request) -> Response:
        return Response(XRDS.format(endpoint=base + "/endpoint"), media_type="application/xrds+xml")

    async def endpoint(request: Request) -> Response:
        query = dict(request.query_params)
        if request.method == "POST":
            query.update({k: v for k, v in (await request.form()).items() if isinstance(v, str)})
        openid_request = server.decodeRequest(query)
        if openid_request.mode in ("checkid_setup", "checkid_immediate"):
            answer = openid_request.answer(True, identity=asserted, claimed_id=asserted)
        else:
            answer = server.handleRequest(openid_request)
        web = server.encodeResponse(answer)
        return Response(web.body, status_code=web.code, headers=web.headers)

    return Starlette(routes=[Route("/openid", op_identifier),
                             Route("/endpoint", endpoint, methods=["GET", "POST"])])


@contextmanager
def rogue_provider(asserted: str) -> Iterator[UvicornThread]:
    port = free_port()
    with UvicornThread(rogue_app(f"http://127.0.0.1:{port}", asserted), port=port) as server:
        yield server
