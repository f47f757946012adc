"""Bearer tokens verified against the development OpenID Connect provider, under uvicorn (RFC 9068, RFC 6750).

The provider mints access tokens for ``AUDIENCE`` (``/_dev/access-token``, the client credentials
grant) and breaks one check at a time (``/_dev/misbehave``); the verifier reads its discovery
document and JWKS over loopback through the SSRF-guarded fetcher, as the gateway does.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from starlette.datastructures import Secret

from devtools.oidc_provider import Client, create_app
from devtools.oidc_provider.keys import KeyRing
from gateway.errors import TokenRefused
from gateway.fetch.fetcher import SafeFetcher
from gateway.signin.oidc.bearer import BearerVerifier
from gateway.signin.oidc.metadata import ProviderMetadata
from gateway.signin.provider import Provider
from gateway.types import Identity
from tests.servers import UvicornThread, free_port

AUDIENCE = "https://api.example.test"
CLIENT_ID, SECRET = "gateway", "bearer-test-secret"


class OP:
    def __init__(self, url: str, http: httpx.Client, keys: KeyRing, fetcher: SafeFetcher) -> None:
        self.url = url
        self.http = http
        self.keys = keys  # the provider's own signing keys (it runs in this process)
        self.fetcher = fetcher  # the gateway's guarded client, loopback allowed

    def token(self, username: str = "alice", groups: tuple[str, ...] = (), misbehave: str = "none",
              client_id: str = CLIENT_ID) -> str:
        self.http.post(f"{self.url}/_dev/misbehave", json={"mode": misbehave}).raise_for_status()
        try:
            response = self.http.post(f"{self.url}/_dev/access-token",
                                      json={"username": username, "groups": list(groups), "client_id": client_id})
        finally:
            self.http.post(f"{self.url}/_dev/misbehave", json={"mode": "none"}).raise_for_status()
        return str(response.json()["access_token"])


@pytest.fixture(scope="module")
def op() -> Iterator[OP]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(url, [Client(CLIENT_ID, SECRET, (f"{url}/cb",))], access_token_audience=AUDIENCE)
    fetcher = SafeFetcher(allow_private_addresses=True, connect_timeout=1)
    with UvicornThread(app, port=port), httpx.Client(trust_env=False, timeout=10) as http:
        yield OP(url, http, app.state.provider.keys, fetcher)
    fetcher.close()


def verifier(op: OP, audiences: tuple[str, ...] = (AUDIENCE,), clients: tuple[str, ...] = (),
             resolve: object = None) -> BearerVerifier:
    provider = Provider("Local", op.url, "oidc", CLIENT_ID, Secret(SECRET), groups_claim="groups",
                        bearer_audiences=audiences, bearer_clients=clients)
    metadata = {provider.name: ProviderMetadata(op.url, op.fetcher)}
    return BearerVerifier([provider], metadata, resolve or (lambda identity: identity), time.time)  # type: ignore[arg-type]


def refusal(check: BearerVerifier, token: str) -> TokenRefused:
    with pytest.raises(TokenRefused) as caught:
        check(token)
    return caught.value


def test_an_access_token_names_the_same_account_as_a_sign_in_with_the_tokens_groups(op: OP) -> None:
    verified = verifier(op)(op.token("alice", groups=("admins", "staff")))
    sub = op.http.post(f"{op.url}/_dev/access-token", json={"username": "alice"}).json()["sub"]
    assert verified.identity.user_id == f"{op.url}#{sub}"
    assert verified.identity.groups == ("admins", "staff") and verified.identity.provider == "Local"
    assert verified.issued <= time.time() < verified.expires


def test_a_linked_account_is_resolved_as_for_a_browser_sign_in(op: OP) -> None:
    linked = verifier(op, resolve=lambda identity: Identity("https://old.example/id/alice", identity.nickname))
    assert linked(op.token("alice")).identity.user_id == "https://old.example/id/alice"


def test_a_client_credentials_token_authenticates_the_client(op: OP) -> None:
    answer = op.http.post(f"{op.url}/token", data={"grant_type": "client_credentials", "scope": "reports"},
                          auth=(CLIENT_ID, SECRET)).json()
    assert verifier(op)(answer["access_token"]).identity.user_id == f"{op.url}#{CLIENT_ID}"


@pytest.mark.parametrize("misbehave", ["wrong-iss", "wrong-aud", "expired", "issued-in-future", "alg-none",
                                       "hs256-public-key", "bad-signature", "unknown-kid"])
def test_a_token_failing_one_check_is_refused(op: OP, misbehave: str) -> None:
    assert refusal(verifier(op), op.token(misbehave=misbehave)).error == "invalid_token"


def test_an_audience_the_operator_did_not_name_is_refused(op: OP) -> None:
    assert "claims" in refusal(verifier(op, audiences=("https://other.example",)), op.token()).description


def test_a_client_outside_bearer_clients_is_refused(op: OP) -> None:
    check = verifier(op, clients=("cli",))
    assert "client" in refusal(check, op.token(client_id="someone-else")).description
    assert check(op.token(client_id="cli")).identity.nickname == "alice"


def test_an_opaque_token_is_refused_as_not_supported(op: OP) -> None:
    assert "opaque tokens are not supported" in refusal(verifier(op), "0123456789abcdef").description


def test_another_jwt_type_signed_by_the_provider_is_not_an_access_token(op: OP) -> None:
    """A logout token (or any other JWT the provider signs) carries the right aud and a valid signature."""
    now = int(time.time())
    claims = {"iss": op.url, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 60, "jti": "j",
              "events": {"http://schemas.openid.net/event/backchannel-logout": {}}}
    logout_token = op.keys.sign(claims, "RS256", typ="logout+jwt")
    assert "typ" in refusal(verifier(op), logout_token).description
    assert verifier(op)(op.keys.sign(claims, "RS256", typ="at+jwt")).identity.nickname == "alice"


def test_unreachable_keys_are_a_503_not_a_bad_token(op: OP) -> None:
    provider = Provider("Gone", "http://127.0.0.1:9", "oidc", CLIENT_ID, Secret(SECRET), bearer_audiences=(AUDIENCE,))
    metadata = {"Gone": ProviderMetadata(provider.issuer, op.fetcher)}
    head, payload, signature = op.token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    moved = base64.urlsafe_b64encode(json.dumps({**claims, "iss": provider.issuer}).encode()).rstrip(b"=").decode()
    refused = refusal(BearerVerifier([provider], metadata, lambda i: i, time.time), f"{head}.{moved}.{signature}")
    assert refused.status == 503
