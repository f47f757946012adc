"""Shared values for the microblog's tests: a proof key, identities, and signing."""

from __future__ import annotations

import time

import pytest
from itsdangerous import TimestampSigner

from gateway.proof import HeaderNames, ProofSigner
from gateway.types import Identity

KEY = "test-proof-key-0123456789abcdefghijklmnopqrstuvwxyz"
ALICE = Identity("https://alice.example/", "alice", "alice@example.com")
BOB = Identity("https://openid.example/id/bob", "bob", "bob@example.com")


def sign(
    identity: Identity, method: str, uri: str, key: str = KEY, names: HeaderNames | None = None
) -> list[tuple[str, str]]:
    """The headers the gateway would add to ``method uri`` for ``identity``."""
    return ProofSigner(key).headers(identity, method, uri, names or HeaderNames())


def sign_at(
    monkeypatch: pytest.MonkeyPatch, seconds_ago: int, identity: Identity, method: str, uri: str
) -> list[tuple[str, str]]:
    """Headers whose proof was made ``seconds_ago`` seconds in the past."""
    past = int(time.time()) - seconds_ago
    with monkeypatch.context() as patch:
        patch.setattr(TimestampSigner, "get_timestamp", lambda self: past)
        return sign(identity, method, uri)
