"""Opaque bearer tokens introspected at the development OpenID Connect provider, under uvicorn (RFC 7662).

The provider mints opaque tokens (``/_dev/access-token`` ``{"opaque": true}``), revokes them
(RFC 7009) and breaks its introspection answers one check at a time (``/_dev/misbehave``); the
verifier reads its discovery document and asks its ``/introspect`` over loopback through the
SSRF-guarded fetcher, with the client's credentials, as the gateway does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from starlette.datastructures import Secret

from devtools.oidc_provider import Client, create_app
from gateway.errors import TokenRefused
from gateway.fetch.fetcher import SafeFetcher
from gateway.signin.oidc.bearer import BearerVerifier
from gateway.signin.oidc.introspection import Introspection
from gateway.signin.oidc.metadata import ProviderMetadata
from gateway.signin.provider import Provider
from tests.servers import UvicornThread, free_port

AUDIENCE = "https://api.example.test"
CLIENT_ID, SECRET = "gateway", "introspection-test-secret"
CACHE_SECONDS = 60


class OP:
    def __init__(self, url: str, http: httpx.Client, fetcher: SafeFetcher, server: UvicornThread) -> None:
        self.url = url
        self.http = http
        self.fetcher = fetcher  # the gateway's guarded client, loopback allowed
        self.server = server

    def token(self, username: str = "alice", groups: tuple[str, ...] = ()) -> str:
        response = self.http.post(f"{self.url}/_dev/access-token",
                                  json={"username": username, "groups": list(groups), "opaque": True})
        return str(response.json()["access_token"])

    def misbehave(self, mode: str) -> None:
        self.http.post(f"{self.url}/_dev/misbehave", json={"mode": mode}).raise_for_status()

    def revoke(self, token: str) -> None:
        self.http.post(f"{self.url}/revoke", data={"token": token}, auth=(CLIENT_ID, SECRET)).raise_for_status()


def serve() -> Iterator[OP]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(url, [Client(CLIENT_ID, SECRET, (f"{url}/cb",))], access_token_audience=AUDIENCE)
    fetcher = SafeFetcher(allow_private_addresses=True, connect_timeout=1)
    server = UvicornThread(app, port=port)
    with server, httpx.Client(trust_env=False, timeout=10) as http:
        yield OP(url, http, fetcher, server)
    fetcher.close()


@pytest.fixture(scope="module")
def op() -> Iterator[OP]:
    yield from serve()


@pytest.fixture
def own_op() -> Iterator[OP]:
    """A provider of the test's own, which it may stop."""
    yield from serve()


@pytest.fixture(autouse=True)
def behaves(op: OP) -> Iterator[None]:
    yield
    op.misbehave("none")


def verifier(op: OP, audiences: tuple[str, ...] = (AUDIENCE,), secret: str = SECRET,
             introspect: bool = True) -> BearerVerifier:
    provider = Provider("Local", op.url, "oidc", CLIENT_ID, Secret(secret), groups_claim="groups",
                        bearer_audiences=audiences, bearer_introspection=introspect)
    metadata = {provider.name: ProviderMetadata(op.url, op.fetcher)}
    introspection = Introspection(provider, metadata[provider.name], op.fetcher, time.time, CACHE_SECONDS) \
        if introspect else None
    return BearerVerifier([provider], metadata, lambda identity: identity, time.time, introspection)


def refusal(check: BearerVerifier, token: str) -> TokenRefused:
    with pytest.raises(TokenRefused) as caught:
        check(token)
    return caught.value


def test_an_opaque_token_names_the_same_account_as_a_sign_in_with_its_groups(op: OP) -> None:
    before = time.time()
    verified = verifier(op)(op.token("alice", groups=("admins",)))
    sub = op.http.post(f"{op.url}/_dev/access-token", json={"username": "alice"}).json()["sub"]
    assert verified.identity.user_id == f"{op.url}#{sub}"
    assert verified.identity.groups == ("admins",) and verified.identity.nickname == "alice"
    assert verified.expires > verified.issued >= int(before) - 1


def test_the_answer_is_used_for_the_cache_time_only_never_past_exp(op: OP) -> None:
    before = time.time()
    verified = verifier(op)(op.token())
    assert before + CACHE_SECONDS <= verified.recheck <= time.time() + CACHE_SECONDS
    assert verified.recheck < verified.expires


def test_a_token_revoked_at_the_provider_is_refused(op: OP) -> None:
    token = op.token()
    op.revoke(token)
    refused = refusal(verifier(op), token)
    assert refused.status == 401 and refused.error == "invalid_token" and "not active" in refused.description


@pytest.mark.parametrize(("mode", "why"), [("wrong-aud", "aud"), ("wrong-iss", "iss"), ("expired", "exp")])
def test_an_answer_for_another_audience_issuer_or_a_past_exp_is_refused(op: OP, mode: str, why: str) -> None:
    token = op.token()
    op.misbehave(mode)
    refused = refusal(verifier(op), token)
    assert refused.status == 401 and why in refused.description


def test_without_aud_the_client_id_must_be_an_audience(op: OP) -> None:
    token = op.token()
    op.misbehave("introspection-no-aud")
    assert "neither an audience nor a client_id" in refusal(verifier(op), token).description
    assert verifier(op, audiences=(AUDIENCE, CLIENT_ID))(token).identity.nickname == "alice"


def test_a_signed_token_still_needs_its_aud_and_is_bounded_by_its_exp_alone(op: OP) -> None:
    def signed() -> str:
        return str(op.http.post(f"{op.url}/_dev/access-token", json={"username": "alice"}).json()["access_token"])

    assert verifier(op)(signed()).recheck == float("inf")
    op.misbehave("wrong-aud")
    assert "aud" in refusal(verifier(op), signed()).description


def test_without_introspection_an_opaque_token_is_not_supported(op: OP) -> None:
    refused = refusal(verifier(op, introspect=False), op.token())
    assert refused.status == 401 and "opaque tokens are not supported here" in refused.description


def test_wrong_client_credentials_are_a_503_never_a_pass_nor_an_inactive_token(op: OP) -> None:
    refused = refusal(verifier(op, secret="not-the-secret"), op.token())
    assert refused.status == 503 and "answered 401" in refused.description


def test_an_unreachable_provider_is_a_503(own_op: OP) -> None:
    check = verifier(own_op)
    token = own_op.token()
    own_op.server.__exit__(None, None, None)  # the provider goes away
    refused = refusal(check, token)
    assert refused.status == 503 and "cannot be reached" in refused.description


def test_an_inactive_answer_is_remembered_and_garbage_is_never_sent(own_op: OP) -> None:
    check = verifier(own_op)
    check(own_op.token())  # discovery read while the provider is up
    dead = own_op.token()
    own_op.revoke(dead)
    assert "not active" in refusal(check, dead).description
    own_op.server.__exit__(None, None, None)  # now any question to the provider would be a 503
    assert refusal(check, dead).status == 401  # the inactive answer, remembered
    assert "b64token" in refusal(check, "not,a;token").description  # refused here, not asked about
