"""Session cookies: signing, lifetimes, key rotation, and decoding that never raises."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer

from gateway.state.sessions import (
    SESSION_SALT,
    VERIFIED_CACHE_TTL,
    CookiePolicy,
    SessionCodec,
    TokenCodec,
    VerifiedCookies,
    host_cookie_name,
    read_cookie,
    read_cookies,
    strip_cookies,
)
from gateway.types import Assurance, Identity

ALICE = Identity("https://op.example/id/alice", "alice", "alice@example.test")
OLD, NEW = "old-key-" + "o" * 32, "new-key-" + "n" * 32


def codec(*keys: str, idle: int = 3600, lifetime: int = 86400) -> SessionCodec:
    return SessionCodec(list(keys), idle, lifetime)


def test_round_trip() -> None:
    c = codec(NEW)
    now = time.time()
    session = c.decode(c.encode("sid", ALICE, now, "series"), now)
    assert session is not None
    assert (session.session_id, session.identity, session.series_id) == ("sid", ALICE, "series")


def test_the_provider_travels_in_the_cookie_and_older_cookies_without_it_still_verify() -> None:
    c = codec(NEW)
    now = time.time()
    steam = Identity(ALICE.user_id, "alice", provider="Steam")
    session = c.decode(c.encode("sid", steam, now, None), now)
    assert session is not None and session.identity.provider == "Steam"
    six_fields = URLSafeTimedSerializer([NEW], salt=SESSION_SALT).dumps(
        ["sid", ALICE.user_id, "alice", "", now, None])  # signed before the provider was recorded
    old = c.decode(six_fields, now)
    assert old is not None and old.identity.provider == ""


def test_tampered_cookie_is_not_signed_in() -> None:
    c = codec(NEW)
    value = c.encode("sid", ALICE, time.time(), None)
    assert c.decode(value[:-2] + ("xx" if value[-2:] != "xx" else "yy"), time.time()) is None


def test_cookie_signed_with_a_foreign_key_is_not_signed_in() -> None:
    value = codec("someone-else-" + "x" * 32).encode("sid", ALICE, time.time(), None)
    assert codec(NEW).decode(value, time.time()) is None


class Clock:
    """The codec's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_idle_timeout_uses_the_last_refresh() -> None:
    clock = Clock()
    c = SessionCodec([NEW], 60, 86400, clock=clock)
    signed_in = clock.now
    idle_cookie = c.encode("sid", ALICE, signed_in, None)
    clock.now += 120  # two minutes without a refresh
    assert c.decode(idle_cookie, clock.now) is None
    assert c.decode(c.encode("sid", ALICE, signed_in, None), clock.now) is not None  # refreshed just now


def test_refreshing_keeps_the_sign_in_time_so_an_active_session_still_ends() -> None:
    """A refresh re-signs the cookie (new idle deadline) but must not restart the absolute lifetime."""
    clock = Clock()
    c = SessionCodec([NEW], 60, 300, clock=clock)
    signed_in = clock.now
    value = c.encode("sid", ALICE, signed_in, None)
    while clock.now < signed_in + 300:
        session = c.decode(value, clock.now)
        assert session is not None and session.auth_time == signed_in
        value = c.refreshed(session)  # the auth check re-signs an active session's cookie
        clock.now += 30  # a request every 30 s: never idle
    clock.now += 1
    assert c.decode(value, clock.now) is None  # 301 s after sign-in, however active


def test_absolute_lifetime_is_enforced_even_when_refreshed() -> None:
    c = codec(NEW, lifetime=100)
    value = c.encode("sid", ALICE, time.time() - 101, None)  # signed just now, signed in long ago
    assert c.decode(value, time.time()) is None


def test_key_rotation_newest_signs_all_verify_removal_signs_out() -> None:
    before = codec(OLD).encode("sid", ALICE, time.time(), None)
    rotated = codec(OLD, NEW)
    assert rotated.decode(before, time.time()) is not None  # rotating does not sign anyone out
    after = rotated.encode("sid", ALICE, time.time(), None)
    assert codec(NEW).decode(after, time.time()) is not None  # the newest key signed it
    assert codec(NEW).decode(before, time.time()) is None  # removing the old key does


def test_refresh_is_due_after_a_tenth_of_the_idle_timeout() -> None:
    c = codec(NEW, idle=1000)
    session = c.decode(c.encode("sid", ALICE, time.time(), None), time.time())
    assert session is not None
    assert not c.needs_refresh(session, time.time())
    assert c.needs_refresh(session, time.time() + 101)


@given(st.one_of(st.none(), st.text(max_size=5000), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_decoding_never_raises(value: str | None) -> None:
    assert codec(NEW).decode(value, time.time()) is None
    assert TokenCodec([NEW], "salt").decode(value) is None


@given(st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=20), st.floats()), max_size=8))
def test_validly_signed_garbage_payloads_are_not_sessions(payload: list[object]) -> None:
    value = URLSafeTimedSerializer([NEW], salt=SESSION_SALT).dumps(payload)
    session = codec(NEW).decode(value, time.time())
    assert session is None or isinstance(session.identity.user_id, str)


def test_read_cookie_finds_one_cookie() -> None:
    header = 'a=1; gw_session="quoted"; gw_session_x=2'
    assert read_cookie(header, "gw_session") == "quoted"
    assert read_cookie(header, "gw") is None
    assert read_cookie(None, "gw_session") is None


def test_read_cookies_finds_every_copy_in_order() -> None:
    header = 'gw_session=first; other=1; gw_session="second"; gw_session_x=3;gw_session=third'
    assert read_cookies(header, "gw_session") == ["first", "second", "third"]
    assert read_cookie(header, "gw_session") == "first"  # what the auth check uses: the same parser
    assert read_cookies(None, "gw_session") == [] and read_cookies("a=1", "gw_session") == []


def test_strip_cookies_removes_the_named_and_prefixed_cookies_and_keeps_the_rest_in_order() -> None:
    header = "app=1; gw_session=s; theme=dark;gw_state_abc=x; gw_csrf=c; gw_stateless=keep; gw_remember=r"
    names = frozenset({"gw_session", "gw_csrf", "gw_remember"})
    assert strip_cookies(header, names, ("gw_state_",)) == "app=1; theme=dark; gw_stateless=keep"
    assert strip_cookies("gw_session=s; gw_state_1=x", names, ("gw_state_",)) == ""
    assert strip_cookies("a=1;;  b=2 ", names) == "a=1; b=2"


def test_host_prefixed_names_only_on_https_without_a_cookie_domain() -> None:
    assert host_cookie_name("gw_session", https=True, domain="") == "__Host-gw_session"
    assert host_cookie_name("gw_session", https=True, domain="example.com") == "gw_session"
    assert host_cookie_name("gw_session", https=False, domain="") == "gw_session"  # __Host- needs Secure
    assert host_cookie_name("__Host-mine", https=True, domain="") == "__Host-mine"


def test_cookie_policy_attributes() -> None:
    secure = CookiePolicy(secure=True, domain="example.com").set("n", "v", max_age=10)
    assert secure == "n=v; Path=/; Max-Age=10; HttpOnly; SameSite=Lax; Secure; Domain=example.com"
    assert "Secure" not in CookiePolicy(secure=False).set("n", "v")
    assert "Max-Age=0" in CookiePolicy(secure=False).delete("n")


# -- verified cookies are remembered, lifetimes are not ---------------------------------------


def test_a_remembered_cookie_still_idles_out() -> None:
    c = codec(NEW, idle=60)
    now = time.time()
    value = c.encode("sid", ALICE, now, None)
    assert c.decode(value, now) is not None  # verified once, now remembered
    assert c.decode(value, now + 61) is None


def test_a_remembered_cookie_still_reaches_its_absolute_lifetime() -> None:
    c = codec(NEW, lifetime=100)
    now = time.time()
    value = c.encode("sid", ALICE, now - 99, None)
    assert c.decode(value, now) is not None
    assert c.decode(value, now + 2) is None


def test_a_tampered_copy_of_a_remembered_cookie_is_not_signed_in() -> None:
    c = codec(NEW)
    now = time.time()
    value = c.encode("sid", ALICE, now, None)
    assert c.decode(value, now) is not None
    assert c.decode(value[:-2] + ("xx" if value[-2:] != "xx" else "yy"), now) is None


def test_a_remembered_cookie_is_verified_again_after_a_few_seconds(monkeypatch) -> None:
    c = codec(NEW)
    now = time.time()
    value = c.encode("sid", ALICE, now, None)
    assert c.decode(value, now) is not None
    verified: list[str] = []
    verify = c._verify
    monkeypatch.setattr(c, "_verify", lambda v: verified.append(v) or verify(v))
    assert c.decode(value, now + 1) is not None
    assert verified == []
    assert c.decode(value, now + VERIFIED_CACHE_TTL + 0.5) is not None
    assert verified == [value]


def test_the_verified_cookie_cache_is_bounded() -> None:
    c = codec(NEW)
    now = time.time()
    session = c.decode(c.encode("sid", ALICE, now, None), now)
    assert session is not None
    cache = VerifiedCookies(size=3, ttl=60)
    for i in range(10):
        cache.put(str(i), session, now)
    assert len(cache) == 3
    assert cache.get("9", now) is session and cache.get("0", now) is None


def test_garbage_is_never_remembered() -> None:
    c = codec(NEW)
    for value in ("garbage", "a.b.c", codec("other-" + "x" * 32).encode("sid", ALICE, time.time(), None)):
        assert c.decode(value, time.time()) is None
    assert len(c._verified) == 0


def test_cookie_policy_refuses_names_and_values_that_could_split_a_header() -> None:
    import pytest

    policy = CookiePolicy(secure=False)
    for name, value in (("a b", "v"), ("n", "v;Secure=0"), ("n", "v\r\nSet-Cookie: x=1"), ("n\u2603", "v")):
        with pytest.raises(ValueError):
            policy.set(name, value)
    with pytest.raises(ValueError):
        policy.delete("x\r\ny")


def test_the_assurance_travels_in_the_cookie_and_survives_a_refresh() -> None:
    c = codec(NEW)
    now = time.time()
    restored = Assurance(now - 4000, "urn:example:mfa", ("pwd", "otp"))
    session = c.decode(c.encode("sid", ALICE, now, "series", restored), now)
    assert session is not None and session.assurance == restored and session.auth_time == now
    refreshed = c.decode(c.refreshed(session), now + 1)
    assert refreshed is not None and refreshed.assurance == restored


def test_cookies_without_an_assurance_mean_authenticated_when_the_session_started() -> None:
    c = codec(NEW)
    now = time.time()
    six_fields = URLSafeTimedSerializer([NEW], salt=SESSION_SALT).dumps(["sid", ALICE.user_id, "a", "", now - 10, None])
    for value in (c.encode("sid", ALICE, now - 10, None), six_fields):
        session = c.decode(value, now)
        assert session is not None and session.assurance == Assurance(now - 10)


def test_a_malformed_assurance_is_no_session() -> None:
    now = time.time()
    for bad in ([now, "acr"], [now, 5, []], ["x", "", []], [now, "", [1]]):
        value = URLSafeTimedSerializer([NEW], salt=SESSION_SALT).dumps(["sid", ALICE.user_id, "a", "", now, None, "",
                                                                        [], bad])
        assert codec(NEW).decode(value, now) is None
