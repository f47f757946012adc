"""The gate's side of bearer tokens: the remembered-token table, the header, the RFC 6750 challenge.

The verifier here is a counting stand-in for :class:`gateway.signin.oidc.bearer.BearerVerifier`
(tested against the development provider in tests/signin/oidc/test_bearer.py): what is under test
is what the gate does around it.
"""

from __future__ import annotations

import time

import pytest

from gateway.errors import TokenRefused
from gateway.gate.bearer import MAX_TOKEN_LIFETIME, BearerTokens, bearer_token, challenge
from gateway.types import Assurance, Identity, VerifiedToken
from tests.servers import run_async

ALICE = Identity("https://op.example#alice", "alice")


class Counting:
    """Accepts every token not starting with "bad", issued at ``issued`` for ``lifetime`` seconds."""

    def __init__(self, lifetime: float = 600, issued: float | None = None) -> None:
        self.calls: list[str] = []
        self.lifetime = lifetime
        self.issued = time.time() if issued is None else issued

    def __call__(self, token: str) -> VerifiedToken:
        self.calls.append(token)
        if token.startswith("bad"):
            raise TokenRefused("bad token")
        return VerifiedToken(ALICE, self.issued, self.issued + self.lifetime)


def test_a_token_is_verified_once_and_remembered_until_its_exp_only() -> None:
    now = time.time()
    verifier = Counting(lifetime=600, issued=now)
    tokens = BearerTokens(verifier)
    first = run_async(tokens.verify("t1", now))
    assert run_async(tokens.verify("t1", now + 599)) == first and verifier.calls == ["t1"]
    assert first.session.identity == ALICE and first.session.auth_time == now
    run_async(tokens.verify("t1", now + 600))  # at its exp: asked again (the verifier judges the leeway)
    run_async(tokens.verify("t1", now + 601))  # and not remembered past it
    assert verifier.calls == ["t1", "t1", "t1"]


def test_an_introspected_token_is_remembered_until_its_recheck_not_its_exp() -> None:
    now = time.time()
    calls: list[str] = []

    def introspected(token: str) -> VerifiedToken:  # the provider must be asked again after 60 s (RFC 7662)
        calls.append(token)
        return VerifiedToken(ALICE, now, now + 600, recheck=now + 60)

    tokens = BearerTokens(introspected)
    first = run_async(tokens.verify("opaque", now))
    assert tokens.remembered("opaque", now + 59) == first
    assert tokens.remembered("opaque", now + 60) is None  # a revocation at the provider is seen from now on
    run_async(tokens.verify("opaque", now + 61))
    assert calls == ["opaque", "opaque"]


def test_a_verifier_that_fails_unexpectedly_is_a_503_never_a_500() -> None:
    def broken(token: str) -> VerifiedToken:
        raise KeyError("a bug")

    with pytest.raises(TokenRefused) as caught:
        run_async(BearerTokens(broken).verify("t", time.time()))
    assert caught.value.status == 503


def test_refused_tokens_are_not_remembered_and_the_table_holds_no_token_text() -> None:
    verifier = Counting()
    tokens = BearerTokens(verifier, size=2)
    for _ in range(2):
        with pytest.raises(TokenRefused):
            run_async(tokens.verify("bad-token", time.time()))
    assert verifier.calls == ["bad-token", "bad-token"]
    for name in ("a", "b", "c"):
        run_async(tokens.verify(name, time.time()))
    assert len(tokens._known) == 2 and not any(b"a" == key or len(key) != 32 for key in tokens._known)


def test_a_token_claiming_to_live_longer_than_the_cutoff_is_kept_is_refused() -> None:
    """A sign-out everywhere's cutoff is kept CUTOFF_KEEP: a longer-lived token would outlive it."""
    with pytest.raises(TokenRefused, match="lives longer"):
        run_async(BearerTokens(Counting(lifetime=MAX_TOKEN_LIFETIME + 1)).verify("long", time.time()))


def test_an_empty_bearer_header_is_invalid_request() -> None:
    with pytest.raises(TokenRefused) as caught:
        run_async(BearerTokens(Counting()).verify("", time.time()))
    assert caught.value.error == "invalid_request"


@pytest.mark.parametrize(("header", "token"), [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("BEARER abc", "abc"),
                                               ("Bearer", ""), ("Basic YTpi", None), ("Bearerabc", None)])
def test_the_bearer_scheme_is_read_case_insensitively_and_other_schemes_are_left_alone(header: str,
                                                                                       token: str | None) -> None:
    assert bearer_token(header) == token


def test_a_challenge_cannot_be_broken_out_of_by_its_description() -> None:
    value = challenge("invalid_token", 'bad "quoted" \\ text\r\nX-Injected: 1')
    assert value == (b'Bearer realm="openid-gateway", error="invalid_token", '
                     b"error_description=\"bad 'quoted' ' text''X-Injected: 1\"")


def test_a_tokens_assurance_is_its_auth_time_and_acr_and_without_auth_time_it_is_never_fresh() -> None:
    """RFC 9470 §3: step-up rules judge the sign-in behind a token, not when the token was minted (a refresh
    token mints fresh access tokens from a sign-in of long ago)."""
    now = time.time()
    signed_in = Assurance(now - 7200, "urn:example:mfa", ("pwd", "otp"))

    def with_assurance(token: str) -> VerifiedToken:
        return VerifiedToken(Identity(ALICE.user_id, "alice", assurance=signed_in), now, now + 600)

    known = run_async(BearerTokens(with_assurance).verify("t", now))
    assert known.session.assurance == signed_in
    unknown = run_async(BearerTokens(Counting(issued=now)).verify("t", now))
    assert unknown.session.assurance == Assurance(0.0)
