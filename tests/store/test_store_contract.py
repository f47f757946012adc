"""The store contract, run against every implementation: SQLite, and Redis on a real redis-server."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from openid.association import Association

from gateway.errors import StoreUnavailable
from gateway.store import (
    LinkRecord,
    LoginStateRecord,
    ProviderSessionRecord,
    RememberRecord,
    SessionRecord,
    SQLiteStore,
    Store,
    open_store,
)
from gateway.store.base import CUTOFF_KEEP, parse_cutoff
from gateway.types import Assurance


@pytest.fixture(params=["sqlite", "redis"])
def location(request: pytest.FixtureRequest) -> str:
    """The ``store`` setting of each implementation: "" (SQLite under tmp_path), or a real Redis's URL."""
    return str(request.getfixturevalue("redis_url")) if request.param == "redis" else ""


@pytest.fixture
def opened(location: str, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Open the store (again): each call is another worker or instance on the same data."""
    stores: list[Store] = []

    def open_one() -> Store:
        stores.append(open_store(location, tmp_path))
        return stores[-1]

    yield open_one
    for impl in stores:
        impl.close()


@pytest.fixture
def store(opened: Callable[[], Store]) -> Store:
    return opened()


def assoc(handle: str, issued: int | None = None, lifetime: int = 600) -> Association:
    return Association(handle, b"s" * 20, int(time.time()) if issued is None else issued, lifetime, "HMAC-SHA1")


def test_associations_newest_first_and_expired_ones_dropped(store: Store) -> None:
    store.storeAssociation("https://op/", assoc("old", int(time.time()) - 10))
    store.storeAssociation("https://op/", assoc("new"))
    store.storeAssociation("https://op/", assoc("dead", int(time.time()) - 1000, 10))
    newest, old = store.getAssociation("https://op/"), store.getAssociation("https://op/", "old")
    assert isinstance(newest, Association) and newest.handle == "new"
    assert isinstance(old, Association) and old.handle == "old"
    assert store.getAssociation("https://op/", "dead") is None
    assert store.removeAssociation("https://op/", "new") is True
    assert store.removeAssociation("https://op/", "new") is False


def test_a_nonce_is_used_once(store: Store) -> None:
    now = int(time.time())
    assert store.useNonce("https://op/", now, "salt") is True
    assert store.useNonce("https://op/", now, "salt") is False  # replay


def test_stale_nonces_are_refused(store: Store) -> None:
    assert store.useNonce("https://op/", int(time.time()) - 6 * 3600, "salt") is False


def session(sid: str, user: str = "u", series: str | None = None) -> SessionRecord:
    now = time.time()
    return SessionRecord(sid, user, now, now + 3600, series, "UA", "127.0.0.1")


def test_sessions_revoke_one_user_or_series(store: Store) -> None:
    for sid, user, series_id in (("a", "u", None), ("b", "u", "s1"), ("c", "v", None)):
        store.create_session(session(sid, user, series_id))
    now = time.time()
    assert store.revoke_series("s1", now) == ["b"]
    assert set(store.revocations_after(0, now)[0]) == {"b"}
    assert set(store.revoke_user("u", now + 1)) == {"a", "b"}  # "b" revoked before: still named
    logged = store.revocations_after(0, now)[0]
    assert {entry for entry in logged if parse_cutoff(entry) is None} == {"a", "b"}
    assert [parse_cutoff(entry) for entry in logged if parse_cutoff(entry)] == [("u", now + 1)]  # the user's tokens
    assert [s.session_id for s in store.list_sessions("v", now)] == ["c"]
    assert store.list_sessions("u", now) == []


def test_signing_everyone_out_logs_a_cutoff_for_everyones_bearer_tokens_kept_past_any_token(store: Store) -> None:
    now = time.time()
    store.revoke_all(now)
    store.revoke_user("nobody-signed-in", now + 1)  # no session: the cutoff is logged all the same
    cutoffs = [parse_cutoff(entry) for entry in store.revocations_after(0, now)[0]]
    assert cutoffs == [("", now), ("nobody-signed-in", now + 1)]
    store.purge_expired(now + CUTOFF_KEEP - 60)
    assert len(store.revocations_after(0, now + CUTOFF_KEEP - 60)[0]) == 2
    store.purge_expired(now + CUTOFF_KEEP + 60)
    assert store.revocations_after(0, now + CUTOFF_KEEP + 60)[0] == []


def test_revoking_a_series_ends_it_and_every_session_restored_from_it(store: Store) -> None:
    store.create_series(series("s1"))
    store.create_series(series("s2"))
    for sid, series_id in (("signed-in", "s1"), ("restarted", "s1"), ("other-device", "s1"), ("other", "s2")):
        store.create_session(session(sid, series=series_id))
    now = time.time()
    assert sorted(store.revoke_series("s1", now)) == ["other-device", "restarted", "signed-in"]
    record = store.get_series("s1")
    assert record is not None and record.revoked_at == now
    assert sorted(store.revocations_after(0, now)[0]) == ["other-device", "restarted", "signed-in"]
    assert store.get_series("s2").revoked_at is None  # type: ignore[union-attr]
    assert sorted(store.revoke_series("s1", now + 1)) == ["other-device", "restarted", "signed-in"]  # idempotent
    assert len(store.revocations_after(0, now)[0]) == 3  # logged once


def test_a_session_restored_from_a_revoked_series_is_born_revoked(store: Store) -> None:
    """A restore that read the series just before a logout ended it leaves no live session."""
    store.create_series(series("s1"))
    store.revoke_series("s1", time.time())
    store.create_session(session("late", series="s1"))
    assert store.revocations_after(0, time.time())[0] == ["late"]
    assert store.list_sessions("u", time.time()) == []


def test_revoke_user_ends_every_remember_me_series_of_the_user(store: Store) -> None:
    store.create_series(series("mine-1"))
    store.create_series(series("mine-2"))
    store.create_series(dataclasses.replace(series("theirs"), user_id="v"))
    store.revoke_user("u", time.time())
    assert store.get_series("mine-1").revoked_at is not None  # type: ignore[union-attr]
    assert store.get_series("mine-2").revoked_at is not None  # type: ignore[union-attr]
    assert store.get_series("theirs").revoked_at is None  # type: ignore[union-attr]
    assert store.rotate_series("mine-1", "h1", "h2", time.time()) is False


def test_revocation_log_positions_follow_commit_order_not_clocks(store: Store) -> None:
    """A revocation stamped with an older clock but committed later is still read after the newer one."""
    for sid in ("early", "late"):
        store.create_session(session(sid))
    now = time.time()
    store.revoke_session("late", now + 100)  # a worker whose clock runs ahead commits first
    seen, position = store.revocations_after(0, now)
    assert seen == ["late"]
    store.revoke_session("early", now - 100)  # another commits afterwards, stamped earlier
    assert store.revocations_after(position, now) == (["early"], position + 1)
    assert store.revocations_after(position + 1, now) == ([], position + 1)
    store.revoke_session("early", now)  # revoking twice logs nothing new
    assert store.revocations_after(position + 1, now)[0] == []


def series(sid: str = "s", token_hash: str = "h1") -> RememberRecord:
    now = time.time()
    return RememberRecord(sid, token_hash, "u", "nick", "e@x", now, now, now + 3600)


def test_a_series_keeps_the_provider_groups_of_its_sign_in(store: Store) -> None:
    store.create_series(dataclasses.replace(series("g"), provider="SSO", groups=("admins", "a,b é")))
    record = store.get_series("g")
    assert record is not None and record.groups == ("admins", "a,b é") and record.provider == "SSO"
    assert store.get_series("s") is None
    store.create_series(series("none"))
    assert store.get_series("none").groups == ()  # type: ignore[union-attr]


def test_a_series_keeps_when_and_how_its_sign_in_authenticated(store: Store) -> None:
    """What a restore carries instead of "authenticated now" (step-up rules judge it)."""
    signed_in = Assurance(1_700_000_000.5, "urn:example:mfa", ("pwd", "otp"))
    store.create_series(dataclasses.replace(series("a"), assurance=signed_in))
    assert store.get_series("a").assurance == signed_in  # type: ignore[union-attr]
    store.create_series(series("none"))
    assert store.get_series("none").assurance is None  # type: ignore[union-attr]


def test_series_rotation_is_compare_and_swap(store: Store) -> None:
    store.create_series(series())
    assert store.rotate_series("s", "h1", "h2", time.time()) is True
    assert store.rotate_series("s", "h1", "h3", time.time()) is False  # a stale token cannot rotate
    record = store.get_series("s")
    assert record is not None and record.token_hash == "h2" and record.previous_hash == "h1"
    store.revoke_series("s", time.time())
    assert store.rotate_series("s", "h2", "h4", time.time()) is False


def test_purge_removes_expired_rows(store: Store) -> None:
    store.create_session(session("x"))
    store.create_series(series())
    store.revoke_session("x", time.time())
    assert store.purge_expired(time.time() + 7200) == 2
    assert store.revocations_after(0, 0.0)[0] == []  # the log of expired sessions is purged too


def test_concurrent_use_from_threads(store: Store) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                store.create_session(session(f"{n}-{i}"))
                store.useNonce("https://op/", int(time.time()), f"{n}-{i}")
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_deleted_store_is_unavailable_until_restored(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite3"
    store = SQLiteStore(path)
    store.create_session(session("a"))
    path.rename(tmp_path / "moved")
    with pytest.raises(StoreUnavailable):
        store.ping()
    with pytest.raises(StoreUnavailable):
        store.revocations_after(0, time.time())
    (tmp_path / "moved").rename(path)
    store.ping()  # heals by itself
    store.close()


def test_missing_state_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="does not exist"):
        SQLiteStore(tmp_path / "nope" / "gateway.sqlite3")


# -- sign-ins in flight ----------------------------------------------------------------------------


def login_state(state_id: str = "st", expires_in: float = 900) -> LoginStateRecord:
    now = time.time()
    data = {"claimed_id": "https://op/id/a", "type_uris": ["http://specs.openid.net/auth/2.0/signon"],
            "local_id": None, "used_yadis": True}
    return LoginStateRecord(state_id, "openid2", "https://op/endpoint", "/echo?x=1", True, now, now + expires_in, data)


def test_a_login_state_is_taken_once_with_everything_it_was_given(store: Store) -> None:
    record = login_state()
    store.put_login_state(record)
    assert store.take_login_state("st", time.time()) == record  # the JSON data comes back as it went in
    assert store.take_login_state("st", time.time()) is None  # a replayed callback finds nothing
    assert store.take_login_state("never-issued", time.time()) is None


def test_an_expired_login_state_is_none_and_purged(store: Store) -> None:
    store.put_login_state(login_state("old", expires_in=-1))
    store.put_login_state(login_state("kept"))
    assert store.take_login_state("old", time.time()) is None
    store.put_login_state(login_state("old2", expires_in=60))
    assert store.purge_expired(time.time() + 120) == 1  # "old2"; "kept" lives on
    assert store.take_login_state("old2", 0.0) is None
    assert store.take_login_state("kept", time.time()) is not None


def test_of_concurrent_takes_of_a_login_state_exactly_one_wins(store: Store) -> None:
    for n in range(20):
        store.put_login_state(login_state(f"race-{n}"))
    for n in range(20):
        start = threading.Barrier(4)
        won: list[LoginStateRecord | None] = []

        def take(state_id: str = f"race-{n}") -> None:
            start.wait()
            won.append(store.take_login_state(state_id, time.time()))

        threads = [threading.Thread(target=take) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(r is not None for r in won) == 1, won


def provider_session(session_id: str, sub: str = "alice", sid: str | None = "op-1",
                     provider: str = "OP") -> ProviderSessionRecord:
    return ProviderSessionRecord(session_id, provider, sub, sid, "header.payload.signature", 4e9)


def test_a_provider_session_is_kept_server_side_and_read_back(store: Store) -> None:
    store.create_session(session("a"))
    store.put_provider_session(provider_session("a"))
    assert store.get_provider_session("a") == provider_session("a")
    assert store.get_provider_session("b") is None


def test_back_channel_logout_revokes_by_sid_else_by_sub_at_that_provider_only(store: Store) -> None:
    now = time.time()
    for sid, op_sid, sub, provider in (("a", "op-1", "alice", "OP"), ("b", "op-2", "alice", "OP"),
                                       ("c", None, "bob", "OP"), ("d", "op-1", "alice", "Other")):
        store.create_session(session(sid))
        store.put_provider_session(provider_session(sid, sub, op_sid, provider))
    assert store.revoke_provider_sessions("OP", None, "op-1", now) == ["a"]
    assert store.revoke_provider_sessions("OP", "bob", "op-2", now) == []  # sid and sub must both match
    assert store.revoke_provider_sessions("OP", "alice", None, now) == ["a", "b"]
    assert store.revoke_provider_sessions("OP", None, None, now) == []
    assert set(store.revocations_after(0, now)[0]) == {"a", "b"}
    assert {s.session_id for s in store.list_all_sessions(now)} == {"c", "d"}


def test_back_channel_logout_ends_the_remember_me_series_and_its_restored_sessions(store: Store) -> None:
    now = time.time()
    store.create_series(RememberRecord("s1", "h", "u", "n", "", now, now, now + 3600))
    store.create_session(session("a", series="s1"))
    store.put_provider_session(provider_session("a"))
    store.create_session(session("restored", series="s1"))
    assert store.revoke_provider_sessions("OP", "alice", "op-1", now) == ["a", "restored"]
    series = store.get_series("s1")
    assert series is not None and series.revoked_at is not None


DAY = 86400.0


def remember_me_sign_in_whose_session_was_purged(store: Store, now: float) -> None:
    """A remember-me sign-in ("first", series "s1", 30 days) a day and more ago: its session expired and was
    purged; "restored" is the session its remember-me cookie made since."""
    store.create_series(RememberRecord("s1", "h", "u", "n", "", now, now, now + 30 * DAY))
    store.create_session(SessionRecord("first", "u", now, now + DAY, "s1"))
    store.put_provider_session(ProviderSessionRecord("first", "OP", "alice", "op-1", "id.token", now + DAY, "s1"))
    store.create_session(SessionRecord("plain", "u", now, now + DAY))  # no remember-me: ends with its session
    store.put_provider_session(ProviderSessionRecord("plain", "OP", "alice", "op-2", "id.token2", now + DAY))
    assert store.purge_expired(now + DAY + 60) == 3  # both sessions and the plain sign-in's provider session
    store.create_session(SessionRecord("restored", "u", now + DAY + 60, now + 2 * DAY, "s1"))


@pytest.mark.parametrize("by", ["sid", "sub"])
def test_back_channel_logout_ends_a_remember_me_series_after_its_first_session_was_purged(
        store: Store, by: str) -> None:
    now = time.time()
    remember_me_sign_in_whose_session_was_purged(store, now)
    later = now + DAY + 120
    sub, sid = ("alice", None) if by == "sub" else (None, "op-1")
    assert store.revoke_provider_sessions("OP", sub, sid, later) == ["restored"]
    series = store.get_series("s1")
    assert series is not None and series.revoked_at == later  # the remember-me cookie restores no more
    assert store.revocations_after(0, later)[0] == ["restored"]
    assert store.rotate_series("s1", "h", "h2", later) is False


def test_a_remember_me_sign_ins_provider_session_lives_as_long_as_its_series(store: Store) -> None:
    now = time.time()
    remember_me_sign_in_whose_session_was_purged(store, now)
    expected = ProviderSessionRecord("first", "OP", "alice", "op-1", "id.token", now + DAY, "s1")
    assert store.get_provider_session("first") == expected
    assert store.get_provider_session("restored") == expected  # RP-initiated logout's id_token_hint, via the series
    assert store.get_provider_session("plain") is None
    store.purge_expired(now + 29 * DAY)
    assert store.get_provider_session("first") == expected
    store.purge_expired(now + 30 * DAY + 60)  # the series is over: so is the record
    assert store.get_provider_session("first") is None
    assert store.revoke_provider_sessions("OP", "alice", None, now + 30 * DAY + 60) == []


def test_a_remember_me_series_finds_its_provider_sign_in_after_every_session_of_it_is_over(store: Store) -> None:
    """RP-initiated logout from a browser left with its remember-me cookie only: ``/logout`` revokes the series,
    then asks for its ``id_token_hint``."""
    now = time.time()
    remember_me_sign_in_whose_session_was_purged(store, now)
    store.create_series(RememberRecord("s2", "h", "u", "n", "", now, now, now + 30 * DAY))  # no provider sign-in
    assert store.purge_expired(now + 2 * DAY + 60) == 1  # the restored session: no session of "s1" is left
    later = now + 2 * DAY + 120
    assert store.revoke_series("s1", later) == []
    expected = ProviderSessionRecord("first", "OP", "alice", "op-1", "id.token", now + DAY, "s1")
    assert store.get_series_provider_session("s1") == expected
    assert store.get_series_provider_session("s2") is None
    assert store.get_series_provider_session("unknown") is None
    store.purge_expired(now + 30 * DAY + 60)  # the series is over: so is the record
    assert store.get_series_provider_session("s1") is None


def test_a_logout_token_jti_is_used_once_per_issuer_until_it_expires(store: Store) -> None:
    now = time.time()
    assert store.use_logout_token("https://op", "j1", now + 60, now) is True
    assert store.use_logout_token("https://op", "j1", now + 60, now) is False  # replay
    assert store.use_logout_token("https://other", "j1", now + 60, now) is True
    assert store.use_logout_token("https://op", "j1", now + 120, now + 61) is True  # expired: forgotten
    store.purge_expired(now + 1000)
    assert store.use_logout_token("https://op", "j1", now + 1100, now + 1000) is True


# -- linked sign-ins -----------------------------------------------------------------------------------


def test_links_are_listed_oldest_first_never_replaced_and_removed_only_by_their_user(store: Store) -> None:
    now = time.time()
    assert store.link_identity(LinkRecord("https://op#2", "u", "OP", now + 1)) is True
    assert store.link_identity(LinkRecord("https://op#1", "u", "OP", now, "migrated")) is True
    assert store.link_identity(LinkRecord("https://gh#9", "v", "GitHub", now)) is True
    assert [link.identity_key for link in store.list_links("u")] == ["https://op#1", "https://op#2"]
    assert store.linked_user("https://op#1") == LinkRecord("https://op#1", "u", "OP", now, "migrated")
    assert store.linked_user("nobody") is None
    assert store.unlink_identity("https://gh#9", "u", now) is None  # someone else's link stays
    assert store.linked_user("https://gh#9") is not None
    assert store.link_identity(LinkRecord("https://op#2", "v", "OP", now + 2)) is False  # never replaced
    assert store.link_identity(LinkRecord("https://op#2", "u", "OP", now + 3)) is False  # nor renewed
    assert store.link_identity(LinkRecord("https://op#2", "u", "OP", now + 1)) is True  # this very link (a retry)
    assert store.linked_user("https://op#2") == LinkRecord("https://op#2", "u", "OP", now + 1)
    assert [link.identity_key for link in store.list_links("v")] == ["https://gh#9"]
    assert store.unlink_identity("https://op#2", "u", now) == []
    assert store.link_identity(LinkRecord("https://op#2", "v", "OP", now + 2)) is True  # unlinked: free again
    assert [link.identity_key for link in store.list_links("u")] == ["https://op#1"]
    assert {link.identity_key for link in store.list_links("v")} == {"https://gh#9", "https://op#2"}
    assert store.unlink_identity("https://op#1", "u", now) == []
    assert store.unlink_identity("https://op#1", "u", now) is None
    assert store.list_links("u") == []


def test_sessions_and_series_record_the_link_that_started_them(store: Store) -> None:
    now = time.time()
    store.link_identity(LinkRecord("https://op#1", "u", "OP", now))
    store.create_series(dataclasses.replace(series("s1"), link_key="https://op#1"))
    store.create_series(series("s2"))
    store.create_session(dataclasses.replace(session("via-link"), link_key="https://op#1"))
    store.create_session(session("own"))
    assert store.get_series("s1").link_key == "https://op#1"  # type: ignore[union-attr]
    assert store.get_series("s2").link_key == ""  # type: ignore[union-attr]
    assert {s.session_id: s.link_key for s in store.list_sessions("u", now)} == {"via-link": "https://op#1",
                                                                                 "own": ""}


def test_unlinking_ends_every_session_and_series_the_link_started_and_nothing_else(store: Store) -> None:
    """A sign-in method taken off an account keeps no way in: not its sessions, not its remember-me series,
    not the sessions restored from that series (even those restored before the series recorded the link)."""
    now = time.time()
    store.link_identity(LinkRecord("https://op#1", "u", "OP", now))
    store.link_identity(LinkRecord("https://gh#2", "u", "GitHub", now))
    linked = "https://op#1"
    store.create_series(dataclasses.replace(series("by-link"), link_key=linked))
    store.create_series(dataclasses.replace(series("by-github"), link_key="https://gh#2"))
    store.create_series(series("own"))
    for sid, series_id, key in (("signed-in", "by-link", linked), ("restored", "by-link", ""),
                                ("plain", None, linked), ("github", "by-github", "https://gh#2"),
                                ("own-1", "own", ""), ("own-2", None, "")):
        store.create_session(dataclasses.replace(session(sid, series=series_id), link_key=key))
    assert store.unlink_identity(linked, "v", now) is None  # not v's: nothing ends
    assert store.revocations_after(0, now)[0] == []
    assert store.unlink_identity(linked, "u", now) == ["plain", "restored", "signed-in"]
    assert sorted(store.revocations_after(0, now)[0]) == ["plain", "restored", "signed-in"]
    assert store.get_series("by-link").revoked_at == now  # type: ignore[union-attr]
    assert store.get_series("by-github").revoked_at is None  # type: ignore[union-attr]
    assert store.get_series("own").revoked_at is None  # type: ignore[union-attr]
    assert sorted(s.session_id for s in store.list_sessions("u", now)) == ["github", "own-1", "own-2"]
    assert store.linked_user(linked) is None and store.linked_user("https://gh#2") is not None


def test_a_session_started_by_a_link_removed_meanwhile_is_born_revoked(store: Store) -> None:
    """A sign-in that resolved through a link just before it was unlinked leaves no live session."""
    now = time.time()
    store.link_identity(LinkRecord("https://op#1", "u", "OP", now))
    store.create_session(dataclasses.replace(session("before"), link_key="https://op#1"))
    store.unlink_identity("https://op#1", "u", now)
    store.create_session(dataclasses.replace(session("late"), link_key="https://op#1"))
    store.link_identity(LinkRecord("https://op#1", "v", "OP", now))  # linked to someone else since
    store.create_session(dataclasses.replace(session("stale", user="u"), link_key="https://op#1"))
    assert sorted(store.revocations_after(0, now)[0]) == ["before", "late", "stale"]
    assert store.list_sessions("u", now) == []
    store.create_session(dataclasses.replace(session("now-theirs", user="v"), link_key="https://op#1"))
    assert [s.session_id for s in store.list_sessions("v", now)] == ["now-theirs"]


# -- rate-limit windows ----------------------------------------------------------------------------------


def test_hits_count_in_fixed_windows_with_the_previous_windows_count(store: Store) -> None:
    start = (time.time() // 60) * 60  # the start of a 60-second window
    assert store.peek_hits("login:1.2.3.4", 60, start) == (0, 0)
    assert store.add_hit("login:1.2.3.4", 60, start) == (1, 0)
    assert store.add_hit("login:1.2.3.4", 60, start + 59) == (2, 0)
    assert store.add_hit("login:5.6.7.8", 60, start) == (1, 0)  # buckets apart
    assert store.add_hit("login:1.2.3.4", 60, start + 60) == (1, 2)  # the next window, the last one's count
    assert store.peek_hits("login:1.2.3.4", 60, start + 61) == (1, 2)
    assert store.peek_hits("login:1.2.3.4", 60, start + 121) == (0, 1)  # two windows on: the first is gone


def test_hits_from_many_threads_and_store_objects_are_all_counted(opened: Callable[[], Store]) -> None:
    stores = [opened(), opened()]
    now = time.time()
    start = threading.Barrier(8)

    def hit(n: int) -> None:
        start.wait()
        for _ in range(25):
            stores[n % 2].add_hit("b", 3600, now)

    threads = [threading.Thread(target=hit, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stores[0].peek_hits("b", 3600, now)[0] == 200


# -- revocations pushed ----------------------------------------------------------------------------------


def test_a_revocation_through_another_store_object_is_pushed_or_the_store_says_it_cannot(
        opened: Callable[[], Store], location: str) -> None:
    """Redis wakes every subscriber (another instance revoked); SQLite answers None and is polled."""
    listener, revoker = opened(), opened()
    pushes = listener.revocation_pushes()
    if location == "":
        assert pushes is None
        return
    assert pushes is not None
    try:
        assert pushes.wait(5) is True  # just subscribed: read the log, nothing was pushed meanwhile
        assert pushes.wait(0.1) is False
        revoker.create_session(session("x"))
        revoker.revoke_session("x", time.time())
        assert pushes.wait(10) is True
        assert listener.revocations_after(0, time.time())[0] == ["x"]
        revoker.revoke_series("none", time.time())  # revoked nothing: nothing pushed
        assert pushes.wait(0.2) is False
    finally:
        pushes.close()


# -- races between instances ----------------------------------------------------------------------------


def race(workers: list[Callable[[], object]]) -> list[object]:
    """Run each worker on a thread of its own, all released at once; their results in order."""
    start = threading.Barrier(len(workers))
    results: list[object] = [None] * len(workers)

    def run(n: int) -> None:
        start.wait()
        results[n] = workers[n]()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_instances_rotating_one_series_at_once_one_wins(opened: Callable[[], Store]) -> None:
    a, b = opened(), opened()
    for n in range(20):
        a.create_series(series(f"s{n}"))
        won = race([lambda n=n: a.rotate_series(f"s{n}", "h1", "from-a", time.time()),  # type: ignore[misc]
                    lambda n=n: b.rotate_series(f"s{n}", "h1", "from-b", time.time())])  # type: ignore[misc]
        assert won.count(True) == 1, won
        record = b.get_series(f"s{n}")
        assert record is not None and record.previous_hash == "h1"
        assert record.token_hash == ("from-a" if won[0] else "from-b")


def test_two_instances_taking_one_login_state_at_once_one_gets_it(opened: Callable[[], Store]) -> None:
    a, b = opened(), opened()
    for n in range(20):
        a.put_login_state(login_state(f"st{n}"))
        got = race([lambda n=n: a.take_login_state(f"st{n}", time.time()),  # type: ignore[misc]
                    lambda n=n: b.take_login_state(f"st{n}", time.time())])  # type: ignore[misc]
        assert sum(record is not None for record in got) == 1, got


def test_a_nonce_is_used_once_across_instances(opened: Callable[[], Store]) -> None:
    a, b = opened(), opened()
    now = int(time.time())
    for n in range(20):
        used = race([lambda n=n: a.useNonce("https://op/", now, f"salt-{n}"),  # type: ignore[misc]
                     lambda n=n: b.useNonce("https://op/", now, f"salt-{n}")])  # type: ignore[misc]
        assert used.count(True) == 1, used
    assert b.useNonce("https://other/", now, "salt-0") is True  # per server URL


def test_a_logout_token_is_used_once_across_instances(opened: Callable[[], Store]) -> None:
    a, b = opened(), opened()
    now = time.time()
    for n in range(20):
        used = race([lambda n=n: a.use_logout_token("https://op", f"j{n}", now + 60, now),  # type: ignore[misc]
                     lambda n=n: b.use_logout_token("https://op", f"j{n}", now + 60, now)])  # type: ignore[misc]
        assert used.count(True) == 1, used


def test_two_instances_linking_one_identity_to_two_users_at_once_one_wins(opened: Callable[[], Store]) -> None:
    a, b = opened(), opened()
    now = time.time()
    for n in range(20):
        key = f"https://op#race-{n}"
        won = race([lambda key=key: a.link_identity(LinkRecord(key, "alice", "OP", now)),  # type: ignore[misc]
                    lambda key=key: b.link_identity(LinkRecord(key, "mallory", "OP", now))])  # type: ignore[misc]
        assert won.count(True) == 1, won
        link = b.linked_user(key)
        assert link is not None and link.user_id == ("alice" if won[0] else "mallory")
        assert [x.user_id for x in (*a.list_links("alice"), *a.list_links("mallory")) if x.identity_key == key] \
            == [link.user_id]  # indexed under the winner only
