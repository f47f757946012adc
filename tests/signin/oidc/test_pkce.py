"""PKCE's S256 challenge (RFC 7636 §4.2), against the RFC's own example (Appendix B)."""

from __future__ import annotations

from gateway.signin.oidc.exchange import s256_code_challenge


def test_the_s256_challenge_of_rfc_7636_appendix_b_verifier_is_the_rfcs() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256_code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_the_s256_challenge_is_unpadded_base64url() -> None:
    challenge = s256_code_challenge("a" * 43)
    assert len(challenge) == 43
    assert not set(challenge) & {"=", "+", "/"}
