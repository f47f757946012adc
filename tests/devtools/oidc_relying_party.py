"""A relying party for the development OpenID Connect provider's tests, and the servers they need.

It does what a careful client does — PKCE S256, state, nonce, exact redirect URIs — and
verifies every token with joserfc's JWT validation against the provider's published
JWKS, never by hand. The person is an httpx client filling in the consent form.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from devtools.oidc_provider import Client, create_app
from tests.htmlforms import forms
from tests.servers import UvicornThread, free_port

BANNER = "Development OpenID Connect provider — not for production"
GITHUB_BANNER = "Development GitHub-style OAuth 2.0 fake (not GitHub) — not for production"
CLIENT_ID = "gateway"
SECRET = "s3cret:with+odd/chars"
ES_CLIENT_ID = "es-client"
OTHER_CLIENT_ID = "other"
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


class LogoutReceiver:
    """A client's back-channel logout endpoint: keeps every ``logout_token`` posted to it."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.server = UvicornThread(Starlette(routes=[Route("/backchannel-logout", self.receive, methods=["POST"])]))
        self.url = f"{self.server.url}/backchannel-logout"

    async def receive(self, request: Request) -> Response:
        async with request.form() as form:
            token = form.get("logout_token")
        self.tokens.append(token if isinstance(token, str) else "")
        return PlainTextResponse("", status_code=200)


@dataclass
class OP:
    """The provider under test and what the tests need to know about it."""

    url: str
    receiver: LogoutReceiver
    redirect_uri: str = "http://rp.example/_gateway/callback"
    after_logout: str = "http://rp.example/_gateway/login?signed-out=1"
    http: httpx.Client = field(default_factory=lambda: httpx.Client(trust_env=False, timeout=10))

    def discovery(self) -> dict[str, Any]:
        return dict(self.http.get(f"{self.url}/.well-known/openid-configuration").json())

    def key_set(self) -> KeySet:
        return KeySet.import_key_set(self.http.get(f"{self.url}/jwks.json").json())

    def misbehave(self, mode: str) -> None:
        assert self.http.post(f"{self.url}/_dev/misbehave", json={"mode": mode}).json()["mode"] == mode


@contextmanager
def serve_provider(groups_claim: str = "groups", **options: Any) -> Iterator[OP]:
    """The provider on a loopback port with three clients, and a back-channel logout receiver.

    ``options`` go to ``create_app`` (``access_token_audience``, ``ignore_step_up``).
    """
    receiver = LogoutReceiver()
    port = free_port()
    op = OP(f"http://127.0.0.1:{port}", receiver)
    clients = [
        Client(CLIENT_ID, SECRET, (op.redirect_uri, "http://rp.example/other-callback"),
               post_logout_redirect_uris=(op.after_logout,), backchannel_logout_uri=receiver.url),
        Client(ES_CLIENT_ID, "es-secret", (op.redirect_uri,), id_token_signed_response_alg="ES256"),
        Client(OTHER_CLIENT_ID, "other-secret", ("http://other.example/callback",)),
    ]
    app = create_app(op.url, clients, groups_claim=groups_claim, **options)
    with receiver.server, UvicornThread(app, port=port), op.http:
        yield op


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclass
class Flow:
    """One authorization request's secrets, as the relying party keeps them."""

    client_id: str = CLIENT_ID
    redirect_uri: str = "http://rp.example/_gateway/callback"
    state: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    def params(self, **extra: str) -> dict[str, str]:
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
                  "scope": "openid email profile", "state": self.state, "nonce": self.nonce,
                  "code_challenge": s256(self.verifier), "code_challenge_method": "S256"}
        return {key: value for key, value in (params | extra).items() if value is not None}


def consent_form(page: httpx.Response) -> dict[str, str]:
    """The consent page's form fields (a checked checkbox included), after checking the banner."""
    assert page.status_code in (200, 400), page.text  # 400: shown again after a mistake
    assert BANNER in page.text or GITHUB_BANNER in page.text
    return dict(forms(page.text)[0].fields)


def decide(person: httpx.Client, page: httpx.Response, decision: str = "allow", **fields: str | None) -> httpx.Response:
    """Fill in the consent form (a field given as None is left empty or unchecked) and press a button."""
    values = consent_form(page) | {"username": "alice", "email": "alice@example.test", "groups": "staff, admins"}
    for name, value in fields.items():
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
    action = urljoin(str(page.url), forms(page.text)[0].action)
    return person.post(action, data={**values, "decision": decision})


def answer(response: httpx.Response) -> dict[str, str]:
    """The authorization response's parameters: from the redirect's query or the form_post page."""
    if response.status_code in (302, 303):
        return dict(parse_qsl(urlsplit(response.headers["location"]).query))
    assert response.status_code == 200, response.text
    return dict(forms(response.text)[0].fields)


def authorize(op: OP, person: httpx.Client, flow: Flow, **extra: str) -> httpx.Response:
    return person.get(f"{op.url}/authorize?{urlencode(flow.params(**extra))}")


def sign_in(op: OP, person: httpx.Client, flow: Flow | None = None,
            **fields: str | None) -> tuple[Flow, dict[str, str]]:
    """Up to the code: the authorization response, its state and iss already checked."""
    flow = flow or Flow()
    params = answer(decide(person, authorize(op, person, flow), "allow", **fields))
    assert params["state"] == flow.state
    return flow, params


def exchange(op: OP, flow: Flow, code: str, *, secret: str = SECRET, how: str = "basic",
             verifier: str | None = None) -> httpx.Response:
    """The token request, with client_secret_basic (form-urlencoded halves, RFC 6749 §2.3.1) or _post."""
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": flow.redirect_uri,
            "code_verifier": flow.verifier if verifier is None else verifier}
    if how == "basic":
        pair = f"{urlencode({'': flow.client_id})[1:]}:{urlencode({'': secret})[1:]}"
        headers = {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
        return op.http.post(f"{op.url}/token", data=data, headers=headers)
    return op.http.post(f"{op.url}/token", data={**data, "client_id": flow.client_id, "client_secret": secret})


def verify_id_token(op: OP, id_token: str, flow: Flow, key_set: KeySet | None = None) -> dict[str, Any]:
    """What a careful relying party checks (Core §3.1.3.7), with joserfc: signature by a published key
    with an announced asymmetric algorithm, iss, aud, azp, exp, iat, nonce."""
    algorithms = op.discovery()["id_token_signing_alg_values_supported"]
    token = jwt.decode(id_token, key_set or op.key_set(), algorithms=algorithms)
    JWTClaimsRegistry(
        leeway=60,
        iss={"essential": True, "value": op.url},
        aud={"essential": True, "value": flow.client_id},
        azp={"essential": True, "value": flow.client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": flow.nonce},
    ).validate(token.claims)
    return dict(token.claims)


def verify_logout_token(op: OP, logout_token: str, client_id: str = CLIENT_ID) -> dict[str, Any]:
    """Back-Channel Logout 1.0 §2.6, with joserfc: signature, iss, aud, iat, jti, the event, no nonce."""
    token = jwt.decode(logout_token, op.key_set(), algorithms=op.discovery()["id_token_signing_alg_values_supported"])
    JWTClaimsRegistry(
        leeway=60,
        iss={"essential": True, "value": op.url},
        aud={"essential": True, "value": client_id},
        iat={"essential": True},
        jti={"essential": True},
        events={"essential": True},
    ).validate(token.claims)
    assert LOGOUT_EVENT in token.claims["events"]
    assert "nonce" not in token.claims
    assert token.claims.get("sid") or token.claims.get("sub")
    return dict(token.claims)
