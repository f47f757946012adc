"""The identity proof, checked with the plain-HMAC recipe the README gives to apps in any language."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from gateway.proof import HeaderNames, InvalidProof, ProofSigner, ProofVerifier
from gateway.types import Identity

KEY = "k" * 40
ALICE = Identity("https://op.example/id/alice", "Zoë", "alice@example.test")


def readme_verify(key: str, headers: dict[str, str], method: str, uri: str, max_age: int = 30) -> bool:
    """The README's algorithm, without itsdangerous."""
    if uri.endswith("?"):
        uri = uri[:-1]
    timestamp, signature = headers["X-Gateway-Proof"].split(".")
    message = "\n".join([method, uri, headers["X-Gateway-User"], headers["X-Gateway-Nickname"],
                         headers["X-Gateway-Email"]]).encode()
    derived = hmac.new(key.encode(), b"openid-gateway.identity-proof", hashlib.sha256).digest()
    expected = hmac.new(derived, message + b"." + timestamp.encode(), hashlib.sha256).digest()
    given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    issued = int.from_bytes(base64.urlsafe_b64decode(timestamp + "=" * (-len(timestamp) % 4)), "big")
    return hmac.compare_digest(expected, given) and 0 <= time.time() - issued <= max_age


def headers_for(identity: Identity, method: str = "GET", uri: str = "/a?b=1") -> dict[str, str]:
    return dict(ProofSigner(KEY).headers(identity, method, uri, HeaderNames()))


def test_readme_recipe_verifies_the_gateway_proof() -> None:
    headers = headers_for(ALICE)
    assert headers["X-Gateway-Nickname"] == "Zo%C3%AB"  # non-ASCII is percent-encoded
    assert readme_verify(KEY, headers, "GET", "/a?b=1")
    assert not readme_verify(KEY, headers, "POST", "/a?b=1")
    assert not readme_verify("other" * 10, headers, "GET", "/a?b=1")


def test_verifier_returns_the_decoded_identity() -> None:
    assert ProofVerifier(KEY).verify(headers_for(ALICE), "GET", "/a?b=1") == ALICE


@pytest.mark.parametrize(("field", "value"), [("X-Gateway-User", "https://evil/"), ("X-Gateway-Email", "x@y"),
                                              ("X-Gateway-Proof", "1.2")])
def test_any_change_breaks_the_proof(field: str, value: str) -> None:
    headers = {**headers_for(ALICE), field: value}
    with pytest.raises(InvalidProof):
        ProofVerifier(KEY).verify(headers, "GET", "/a?b=1")


def test_identity_without_proof_is_refused_and_no_identity_is_anonymous() -> None:
    with pytest.raises(InvalidProof):
        ProofVerifier(KEY).verify({"X-Gateway-User": "https://op/id/x"}, "GET", "/")
    assert ProofVerifier(KEY).verify({}, "GET", "/") is None


def test_trailing_question_mark_is_signed_as_the_app_sees_it() -> None:
    assert ProofVerifier(KEY).verify(headers_for(ALICE, uri="/path?"), "GET", "/path") == ALICE
