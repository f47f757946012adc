"""gateway.signin.identities on a real SQLite store: which user a sign-in reaches, and which links may be made."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.fetch.fetcher import SafeFetcher
from gateway.observe.events import Event, Events, IdentityLinked, IdentityLinkRefused, IdentityUnlinked
from gateway.signin.identities import Identities, LinkIntent, LinkRefused, session_digest
from gateway.signin.oidc.exchange import OIDCIdentity
from gateway.signin.oidc.migration import OpenID2Claim, OpenID2Migration
from gateway.signin.openid2.consumer import OpenIDExchange
from gateway.store import SessionRecord, SQLiteStore
from gateway.store.base import LinkRecord
from gateway.types import Identity

OLD = "https://openid.example/id/alice"
OIDC = "https://op.example#sub-1"
CLIENT = "192.0.2.7"


@pytest.fixture
def identities(tmp_path: Path) -> Iterator[Identities]:
    store = SQLiteStore(tmp_path / "store.sqlite")
    # A fetcher that may fetch nothing on loopback: these tests must never reach discovery.
    with SafeFetcher(allow_private_addresses=False) as fetcher:
        yield Identities(store, OpenID2Migration(OpenIDExchange(store, "https://rp.example/", fetcher=fetcher)),
                         lambda: 1000.0, Events())
    store.close()


def oidc(claim: str | None = None) -> OIDCIdentity:
    openid2 = OpenID2Claim(claim, "https://op.example", "https://op.example/authorize") if claim else None
    return OIDCIdentity(OIDC, "alice", "", (), "Example OP", login=None, openid2=openid2)


def test_an_unlinked_sign_in_keeps_its_own_key(identities: Identities) -> None:
    resolved = identities.resolve(Identity(OLD, "alice"))
    assert (resolved.user_id, resolved.link_key) == (OLD, "")


def test_a_linked_sign_in_reaches_the_user_keeps_its_profile_and_says_which_link(identities: Identities) -> None:
    identities.link(OIDC, "Example OP", OLD, CLIENT)
    resolved = identities.resolve(oidc())
    assert (resolved.user_id, resolved.nickname, resolved.provider) == (OLD, "alice", "Example OP")
    assert resolved.link_key == OIDC  # recorded with its session and series: unlinking ends them


def test_an_existing_link_wins_over_a_migration_claim_which_is_then_not_fetched(identities: Identities) -> None:
    identities.link(OIDC, "Example OP", "https://elsewhere.example/id/bob", CLIENT)
    # The claim points at loopback, which this fetcher refuses: verifying it would raise.
    assert identities.resolve(oidc("http://127.0.0.1:9/id/alice")).user_id == "https://elsewhere.example/id/bob"


def test_a_migration_claim_on_a_key_with_links_of_its_own_is_not_followed(identities: Identities) -> None:
    identities.link("https://api.github.com#7", "GitHub", OIDC, CLIENT)
    assert identities.resolve(oidc("http://127.0.0.1:9/id/alice")).user_id == OIDC
    assert identities.store.linked_user(OIDC) is None


def test_linking_a_sign_in_to_itself_is_refused(identities: Identities) -> None:
    with pytest.raises(LinkRefused) as refusal:
        identities.link(OLD, "X", OLD, CLIENT)
    assert refusal.value.code == "link-self"


def test_links_are_never_replaced_nor_chained(identities: Identities) -> None:
    identities.link(OIDC, "Example OP", OLD, CLIENT)
    cases = [
        (OIDC, OLD, "link-exists"),  # again
        (OIDC, "https://openid.example/id/mallory", "link-taken"),  # someone else's: no takeover
        (OLD, "https://openid.example/id/carol", "link-has-links"),  # OLD has links: would chain
        ("https://api.github.com#7", OIDC, "link-stale"),  # OIDC now reaches OLD: a stale session's user
    ]
    for key, user, code in cases:
        with pytest.raises(LinkRefused) as refusal:
            identities.link(key, "X", user, CLIENT)
        assert refusal.value.code == code
    assert identities.links(OLD) == [LinkRecord(OIDC, OLD, "Example OP", 1000.0, "linked")]


def test_unlink_removes_only_ones_own_link(identities: Identities) -> None:
    identities.link(OIDC, "Example OP", OLD, CLIENT)
    assert identities.unlink(OIDC, "https://openid.example/id/mallory", CLIENT) is None
    assert identities.store.linked_user(OIDC) is not None
    assert identities.unlink(OIDC, OLD, CLIENT) == [] and identities.store.linked_user(OIDC) is None


def test_a_link_intent_survives_the_login_state_and_nothing_else_is_one() -> None:
    intent = LinkIntent(OLD, session_digest("session-1"))
    assert LinkIntent.of({"provider": "x", **intent.data()}) == intent
    assert session_digest("session-1") != "session-1" and len(intent.session) == 64
    for data in ({}, {"link_user": OLD}, {"link_user": "", "link_session": "x"}, {"link_user": 1, "link_session": "x"}):
        assert LinkIntent.of(data) is None


def test_every_link_unlink_and_refusal_is_one_event(identities: Identities) -> None:
    heard: list[Event] = []
    identities.events.subscribe(heard.append)
    identities.link(OIDC, "Example OP", OLD, CLIENT)
    for key, user in ((OIDC, OLD), (OIDC, "https://openid.example/id/mallory"), (OLD, OLD)):
        with pytest.raises(LinkRefused):
            identities.link(key, "X", user, CLIENT)
    assert identities.unlink(OIDC, "https://openid.example/id/mallory", CLIENT) is None
    assert identities.unlink(OIDC, OLD, CLIENT) == []
    assert heard == [
        IdentityLinked(OLD, OIDC, "Example OP", CLIENT),
        IdentityLinkRefused(OLD, OIDC, "link-exists", CLIENT),
        IdentityLinkRefused("https://openid.example/id/mallory", OIDC, "link-taken", CLIENT),
        IdentityLinkRefused(OLD, OLD, "link-self", CLIENT),
        IdentityLinkRefused("https://openid.example/id/mallory", OIDC, "not-yours", CLIENT),
        IdentityUnlinked(OLD, OIDC, CLIENT, 0),
    ]


def test_unlinking_ends_the_sessions_the_link_started_and_the_event_counts_them(identities: Identities) -> None:
    identities.link(OIDC, "Example OP", OLD, CLIENT)
    identities.store.create_session(SessionRecord("through-the-link", OLD, 1000.0, 9e9, link_key=OIDC))
    identities.store.create_session(SessionRecord("own-sign-in", OLD, 1000.0, 9e9))
    heard: list[Event] = []
    identities.events.subscribe(heard.append)
    assert identities.unlink(OIDC, OLD, CLIENT) == ["through-the-link"]
    assert heard == [IdentityUnlinked(OLD, OIDC, CLIENT, 1)]
    assert [s.session_id for s in identities.store.list_sessions(OLD, 1000.0)] == ["own-sign-in"]
