"""Mode 2: the gateway as the reverse proxy in front of the application (hot path).

:class:`ProxyDoor` (:mod:`~gateway.front.proxy.door`) asks the gate about each request and
:class:`UpstreamProxy` forwards each authenticated request to ``upstream_url``
over pooled keep-alive HTTP/1.1 connections and streams both bodies; see its
docstring for what it guarantees about headers, bodies and failures.

Why a hand-written client
-------------------------
Every request of the site goes through here, so the client was chosen on
numbers: ``wrk -t2 -c32 -d4s`` for ``GET /hello`` of ``tests/upstream_app.py``,
every server under uvicorn (httptools, uvloop, access log off), on the 2-core
development machine, shared with other work (hence the ranges over 3-5 runs).
The ratio is requests per second through the proxy divided by those of the
same path without the proxy::

    client inside the proxy                              wrk->proxy->app   nginx->proxy->app
    httpx.AsyncClient (streaming, pool of 100)           1-3 %             2-3 %
    aiohttp.ClientSession (TCPConnector(limit=100),      17-20 %           21-29 %
      no cookie jar, no auto headers, no decompression)
    this package: asyncio.Protocol + httptools parser    35-44 %           40-45 %

httpx pays for its generality (httpcore's pool locks, h11, anyio streams) on
every request; aiohttp is much better but still builds URL, header multidict and
stream reader objects per request. The protocol here feeds bytes straight into
llhttp (already installed for uvicorn), keeps headers as the raw lists ASGI
uses, builds each request head with one ``join`` and one ``write``, and a
request answered in one packet costs a single future and timer. A profile of the
proxy process under load shows the remainder is uvicorn's own ``send`` (two
writes per response) and the socket system calls, so little more is to be had
inside this package. Large bodies stream at several hundred MB/s with the
proxy's memory flat (``tests/test_proxy.py`` moves 200 MB each way).

Deployment notes: run the gateway with ``proxy_headers=False`` (it resolves the
client address itself), ``server_header=False`` and ``date_header=False`` (the
application's own ``Server`` and ``Date`` pass through), and the pool is per
worker process.
"""

from __future__ import annotations

from gateway.front.proxy._proxy import UpstreamProxy, default_error_page
from gateway.front.proxy._websocket import refuse as refuse_websocket
from gateway.front.proxy.door import ProxyDoor

__all__ = ["ProxyDoor", "UpstreamProxy", "default_error_page", "refuse_websocket"]
