"""The microblog believes the gateway's JWT only when PyJWT verifies it against the gateway's JWKS.

Real HTTP on loopback: the gateway's own JWKS endpoint (the keys as the
gateway publishes them) and the microblog configured with MICROBLOG_JWKS_URL,
each served by uvicorn. Tokens are signed by the gateway's signer (joserfc);
the microblog checks them with PyJWT. Each attack must end in the
microblog's 401, never in an identity and never as anonymous.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend_app import create_app, load_app_settings
from gateway.gate.assertion import AssertionSigner
from gateway.gate.signing_keys import SigningKeys, add_next, generate_key, validated
from gateway.pages.jwks import JWKSEndpoint
from gateway.paths import JWKS as JWKS_PATH
from gateway.types import Identity
from tests.backend_app.support import KEY, sign
from tests.servers import UvicornThread

ISSUER = "https://gateway.example"
ALICE = Identity("https://op.example/id/alice", "alice", "alice@example.com", ("admins",))
HOST = "blog.example:8443"


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return add_next(validated([generate_key("ES256")]), "EdDSA")


@pytest.fixture(scope="module")
def jwks_server(keys: SigningKeys) -> Iterator[UvicornThread]:
    with UvicornThread(JWKSEndpoint(keys), lifespan="off") as server:
        yield server


@pytest.fixture(scope="module")
def blog(jwks_server: UvicornThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UvicornThread]:
    settings = load_app_settings({
        "MICROBLOG_JWKS_URL": jwks_server.url + JWKS_PATH, "MICROBLOG_ISSUER": ISSUER + "/",
        "MICROBLOG_STATE_DIR": str(tmp_path_factory.mktemp("blog")),
    })
    with UvicornThread(create_app(settings)) as server:
        yield server


def signer(keys: SigningKeys, *, clock: float | None = None, issuer: str = ISSUER) -> AssertionSigner:
    return AssertionSigner(keys, issuer, "s" * 40, clock=(lambda: clock) if clock is not None else time.time)


def whoami(blog: UvicornThread, token: str | None, host: str = HOST, **headers: str) -> httpx.Response:
    sent = {"Host": host, **headers}
    if token is not None:
        sent["X-Gateway-Assertion"] = token
    return httpx.get(blog.url + "/api/whoami", headers=sent)


def refused(response: httpx.Response) -> bool:
    return response.status_code == 401 and "alice" not in response.text


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def handmade(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A token built by hand: what an attacker sends (no library would make these)."""
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.{b64(signature)}"


def good_claims() -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": HOST, "sub": "https://op.example/id/mallory", "nickname": "mallory",
            "iat": now, "exp": now + 60, "jti": "x"}


def test_a_real_assertion_is_believed(blog: UvicornThread, keys: SigningKeys) -> None:
    response = whoami(blog, signer(keys).sign(ALICE, HOST, "session-1", groups=ALICE.groups))
    assert response.status_code == 200, response.text
    assert response.json() == {"user": ALICE.user_id, "nickname": "alice", "email": "alice@example.com",
                               "groups": ["admins"]}


def test_the_host_is_compared_without_letter_case(blog: UvicornThread, keys: SigningKeys) -> None:
    token = signer(keys).sign(ALICE, "Blog.Example:8443", "session-1")
    assert whoami(blog, token, host="BLOG.example:8443").json()["user"] == ALICE.user_id


def test_no_headers_is_anonymous(blog: UvicornThread) -> None:
    assert whoami(blog, None).json() == {"user": None}


def test_a_token_signed_with_another_key_is_refused(blog: UvicornThread, keys: SigningKeys) -> None:
    stranger = validated([generate_key("ES256")])
    assert refused(whoami(blog, signer(stranger).sign(ALICE, HOST, "s")))  # unknown kid
    # The published kid, signed with another key of the same kind: the signature does not verify.
    impostor = SigningKeys((type(keys.current)(stranger.current.key, keys.current.kid, "ES256", "current"),))
    token = signer(impostor).sign(ALICE, HOST, "s")
    assert refused(whoami(blog, token))


def test_an_expired_token_is_refused(blog: UvicornThread, keys: SigningKeys) -> None:
    assert refused(whoami(blog, signer(keys, clock=time.time() - 120).sign(ALICE, HOST, "s")))


def test_a_token_from_the_future_is_refused(blog: UvicornThread, keys: SigningKeys) -> None:
    assert refused(whoami(blog, signer(keys, clock=time.time() + 600).sign(ALICE, HOST, "s")))


def test_a_token_for_another_host_is_refused(blog: UvicornThread, keys: SigningKeys) -> None:
    other_site = signer(keys).sign(ALICE, "wiki.example:8443", "s")
    assert refused(whoami(blog, other_site))
    # The same token is good where it was made for: only the Host differs.
    assert whoami(blog, other_site, host="wiki.example:8443").json()["user"] == ALICE.user_id
    other_port = signer(keys).sign(ALICE, "blog.example:9443", "s")
    assert refused(whoami(blog, other_port))


def test_a_token_from_another_issuer_is_refused(blog: UvicornThread, keys: SigningKeys) -> None:
    assert refused(whoami(blog, signer(keys, issuer="https://other-gateway.example").sign(ALICE, HOST, "s")))


def test_alg_none_is_refused(blog: UvicornThread, keys: SigningKeys) -> None:
    token = handmade({"alg": "none", "kid": keys.current.kid, "typ": "JWT"}, good_claims())
    assert refused(whoami(blog, token))
    assert refused(whoami(blog, handmade({"alg": "none", "typ": "JWT"}, good_claims())))


def test_hs256_keyed_with_the_public_key_is_refused(blog: UvicornThread, keys: SigningKeys,
                                                    jwks_server: UvicornThread) -> None:
    """The classic key confusion: the public key (as PEM, or as the JWKS serves it) used as an HMAC secret."""
    public_pem = keys.current.key.as_pem(private=False)
    published = json.dumps(httpx.get(jwks_server.url + JWKS_PATH).json()["keys"][0]).encode()
    for secret in (public_pem, published):
        header = {"alg": "HS256", "kid": keys.current.kid, "typ": "JWT"}
        unsigned = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(good_claims()).encode())}"
        signature = hmac.new(secret, unsigned.encode("ascii"), hashlib.sha256).digest()
        assert refused(whoami(blog, f"{unsigned}.{b64(signature)}"))


def test_the_alg_must_be_the_keys_own(blog: UvicornThread, keys: SigningKeys) -> None:
    """An ES256 token naming the EdDSA key's kid (both published): refused, not tried with another algorithm."""
    next_kid = next(entry.kid for entry in keys.entries if entry.status == "next")
    renamed = SigningKeys((type(keys.current)(keys.current.key, next_kid, "ES256", "current"),))
    assert refused(whoami(blog, signer(renamed).sign(ALICE, HOST, "s")))


def test_identity_headers_without_an_assertion_are_refused(blog: UvicornThread) -> None:
    assert refused(whoami(blog, None, **{"X-Gateway-User": "https://op.example/id/alice"}))


def test_a_valid_hmac_proof_is_not_enough_when_the_app_wants_the_jwt(blog: UvicornThread) -> None:
    headers = dict(sign(ALICE, "GET", "/api/whoami", host=HOST))
    assert refused(httpx.get(blog.url + "/api/whoami", headers={"Host": HOST, **headers}))


def test_two_assertions_are_refused(blog: UvicornThread, keys: SigningKeys) -> None:
    token = signer(keys).sign(ALICE, HOST, "s")
    response = httpx.get(blog.url + "/api/whoami", headers=[("Host", HOST), ("X-Gateway-Assertion", token),
                                                            ("X-Gateway-Assertion", token)])
    assert response.status_code == 401


def test_garbage_is_refused_not_a_500(blog: UvicornThread) -> None:
    for token in ("", "a.b.c", "x" * 9000, "eyJhbGciOiJFUzI1NiJ9..", "a.b"):
        response = whoami(blog, token)
        assert response.status_code == 401, (token[:20], response.status_code)
    latin1 = httpx.get(blog.url + "/api/whoami", headers=[(b"Host", HOST.encode()),
                                                          (b"X-Gateway-Assertion", b"\xe9.\xff.\x80")])
    assert latin1.status_code == 401


def test_an_unreachable_jwks_refuses_and_says_why(tmp_path: Path, keys: SigningKeys,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    from tests.servers import free_port

    settings = load_app_settings({"MICROBLOG_JWKS_URL": f"http://127.0.0.1:{free_port()}{JWKS_PATH}",
                                  "MICROBLOG_ISSUER": ISSUER, "MICROBLOG_STATE_DIR": str(tmp_path)})
    with UvicornThread(create_app(settings)) as server, caplog.at_level("WARNING", "backend_app.identity"):
        assert refused(whoami(server, signer(keys).sign(ALICE, HOST, "s")))
    assert "keys cannot be fetched" in caplog.text


@pytest.mark.parametrize(("env", "problem"), [
    ({}, "MICROBLOG_PROOF_KEY is not set"),
    ({"MICROBLOG_PROOF_KEY": KEY, "MICROBLOG_JWKS_URL": "https://g.example/jwks", "MICROBLOG_ISSUER": ISSUER},
     "both set"),
    ({"MICROBLOG_JWKS_URL": "https://g.example/jwks"}, "MICROBLOG_ISSUER is not set"),
    ({"MICROBLOG_JWKS_URL": "g.example/jwks", "MICROBLOG_ISSUER": ISSUER}, "MICROBLOG_JWKS_URL must be an http(s)"),
    ({"MICROBLOG_PROOF_KEY": KEY, "MICROBLOG_HEADER_ASSERTION": "bad header"}, "MICROBLOG_HEADER_ASSERTION must be"),
])
def test_settings_need_one_way_of_believing_the_gateway(env: dict[str, str], problem: str) -> None:
    from gateway.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        load_app_settings(env)
    assert any(problem in p for p in info.value.problems), info.value.problems
