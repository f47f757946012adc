"""Shared values for the microblog's tests: a proof key, identities, and signing."""

from __future__ import annotations

import time

from gateway.proof import HeaderNames, ProofSigner
from gateway.types import Identity

KEY = "test-proof-key-0123456789abcdefghijklmnopqrstuvwxyz"
ALICE = Identity("https://alice.example/", "alice", "alice@example.com")
BOB = Identity("https://openid.example/id/bob", "bob", "bob@example.com")
# The Host header Starlette's TestClient sends.
TEST_HOST = "testserver"


def sign(
    identity: Identity, method: str, uri: str, key: str = KEY, names: HeaderNames | None = None,
    host: str = TEST_HOST, seconds_ago: int = 0,
) -> list[tuple[str, str]]:
    """The headers the gateway would add to ``method uri`` sent to ``host`` for ``identity``.

    ``seconds_ago`` dates the proof in the past (the signer's clock, no patching).
    """
    issued = int(time.time()) - seconds_ago
    signer = ProofSigner(key, clock=lambda: issued)
    return signer.headers(identity, method, host, uri, names or HeaderNames())

