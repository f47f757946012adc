"""Redis failing under two gateway instances behind nginx: fail closed, never hang, lose nobody, accuse nobody.

Real processes on loopback (:mod:`devtools.stack`, ``store="redis"``): nginx,
two gateway instances, the echo app, the development provider and a real
``redis-server`` with its append-only file, in both modes. The faults are
real too: Redis stopped (SIGTERM) and started again, restarted on its
append-only file, and slowed down with ``CLIENT PAUSE`` sent on a connection
of the test's own (every command, or only writes, waits until the pause ends).

The settings are the tests' (tests/stack_fixtures.py): revocations refreshed
every 0.2 s, so an instance trusts what it knows for 5 s without the store;
the store's own timeout is the gateway's default, 2 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import httpx
import pytest

from devtools.redis_server import RedisServer
from devtools.stack import MODES, Stack
from tests.htmlforms import submit
from tests.instances import REMEMBER, SESSION, accepted, direct, signed_in, wait_until
from tests.stack_fixtures import ECHO_APP, start_stack

pytestmark = pytest.mark.nginx

INSTANCES = 2
# Longer than the store's timeout (2 s), shorter than the 5 s an instance trusts its revocations without it.
PAUSE = 3.5
# No answer may take longer than this: an answer that does not come in time is a hang, and fails the test.
ANSWER_BOUND = 10.0
# Stopped Redis: 5 s of trusted revocations, then 503; with a margin for a busy machine.
OUTAGE_DEADLINE = 15.0
THEFT = "suspected remember-me cookie theft"


@pytest.fixture(scope="module", params=MODES, name="site")
def site_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory, request.param, ECHO_APP, instances=INSTANCES, store="redis")


@pytest.fixture(autouse=True)
def redis_back_after(site: Stack) -> Iterator[RedisServer]:
    """The stack's Redis; running again after each test, whatever the test did to it."""
    assert site.redis is not None
    yield site.redis
    if not site.redis.running:
        site.redis.start()


def pause(redis: RedisServer, what: str) -> None:
    """``CLIENT PAUSE`` for :data:`PAUSE` seconds: ``ALL`` commands, or only ``WRITE`` ones (scripts included)."""
    with redis.client() as admin:
        admin.execute_command("CLIENT", "PAUSE", str(int(PAUSE * 1000)), what)


def thefts(stack: Stack) -> int:
    return sum(stack.log(name, tail=None).count(THEFT) for name in stack.gateway_names)


def timed(call: Callable[[], httpx.Response]) -> tuple[int, float]:
    start = time.monotonic()
    status = call().status_code
    return status, time.monotonic() - start


def restore(stack: Stack, number: int, remember: str) -> httpx.Response:
    """A browser back after a restart (no session cookie) opens a protected page: /login restores it."""
    with direct(stack, number, {REMEMBER: remember}) as browser:
        return browser.get("/login", params={"next": "/echo"})


def restored(response: httpx.Response) -> bool:
    if response.status_code == 503:
        return False
    assert response.status_code in (302, 303) and response.headers["location"] == "/echo", (
        response.status_code, response.text[:300])
    return True


def restore_until_done(stack: Stack, number: int, remember: str) -> httpx.Response:
    """Restore again and again, as a person reloading the page would, until the answer is not 503."""
    answers: list[httpx.Response] = []

    def attempt() -> bool:
        answers.append(restore(stack, number, remember))
        return restored(answers[-1])

    wait_until(attempt, OUTAGE_DEADLINE, f"restored on instance {number}")
    return answers[-1]


def sessions_listed(stack: Stack, session: str) -> int:
    """How many sessions the account page lists for the person of this session cookie."""
    with direct(stack, 1, {SESSION: session}) as browser:
        page = browser.get("/_gateway/account")
    assert page.status_code == 200, page.text[:300]
    return page.text.count('data-label="Signed in"')


def test_with_redis_stopped_protected_pages_get_503_within_seconds_and_recover_by_themselves(site: Stack) -> None:
    assert site.redis is not None
    with signed_in(site, "alice") as browser:
        cookies = {SESSION: browser.cookies[SESSION]}
    with httpx.Client(cookies=cookies, timeout=ANSWER_BOUND) as alice:  # a hang raises ReadTimeout: a failure
        assert alice.get(site.url + "/echo").status_code == 200
        seen: list[int] = []

        def every_instance_answers(status: int) -> Callable[[], bool]:
            """Whether one request to each instance (nginx's round robin) got ``status``."""
            def check() -> bool:
                seen.extend(alice.get(site.url + "/echo").status_code for _ in range(INSTANCES))
                return seen[-INSTANCES:] == [status] * INSTANCES
            return check

        site.redis.stop()
        # Each instance trusts its own revocations for 5 s after its own last refresh: they turn within a moment.
        to_503 = wait_until(every_instance_answers(503), OUTAGE_DEADLINE, "503 from every instance with Redis stopped")
        # Signed in while the revocations this instance knows are fresh, then 503: never an error or the app
        # without a check.
        assert set(seen) <= {200, 503}, seen
        page = alice.get(site.url + "/echo")
        assert page.status_code == 503 and "Temporarily unavailable" in page.text
        with httpx.Client(timeout=ANSWER_BOUND) as newcomer:  # a sign-in needs the store: refused, not hanging
            login = newcomer.get(site.url + "/login")
            if login.status_code == 200:
                login = submit(newcomer, login, {"identifier": site.provider_identifier})
            assert login.status_code == 503, login.text[:300]
        site.redis.start()
        seen.clear()
        back = wait_until(every_instance_answers(200), OUTAGE_DEADLINE, "200 again from every instance")
        assert set(seen) <= {200, 503}, seen
    print(f"\n[{site.mode}] Redis stopped: 503 from every instance after {to_503:.1f} s; Redis started: 200 again"
          f" after {back:.2f} s")


def test_a_redis_restarted_on_its_append_only_file_loses_nobody(site: Stack) -> None:
    assert site.redis is not None
    with signed_in(site, "bob", remember=True) as bob, signed_in(site, "carol") as carol:
        bob_session, bob_remember = bob.cookies[SESSION], bob.cookies[REMEMBER]
        carol_cookies = {SESSION: carol.cookies[SESSION]}
    with direct(site, 1, carol_cookies) as leaving:
        assert leaving.get("/logout", headers={"Sec-Fetch-Site": "same-origin"}).status_code in (302, 303)
    site.redis.restart()
    # A new process for instance 2: all it knows is what Redis kept.
    site.restart_gateway(2)
    wait_until(lambda: accepted(site, 2, {SESSION: bob_session}), OUTAGE_DEADLINE, "bob signed in on instance 2")
    assert accepted(site, 1, {SESSION: bob_session})
    assert not accepted(site, 2, carol_cookies)  # her logout was kept: the revocation log survived
    assert sessions_listed(site, bob_session) == 1  # his session record too
    back = restore(site, 2, bob_remember)  # and his remember-me series
    assert restored(back) and back.cookies[REMEMBER] != bob_remember
    assert accepted(site, 1, {SESSION: back.cookies[SESSION]})


def test_a_slow_redis_gives_503_where_the_store_is_needed_and_never_a_pile_up(site: Stack) -> None:
    assert site.redis is not None
    with signed_in(site, "dave") as browser:
        cookies = {SESSION: browser.cookies[SESSION]}
    newcomers = [httpx.Client(timeout=ANSWER_BOUND) for _ in range(4)]
    dave = httpx.Client(cookies=cookies, timeout=ANSWER_BOUND)
    try:
        login_pages = [client.get(site.url + "/login") for client in newcomers]  # before Redis slows down
        assert all(page.status_code == 200 for page in login_pages)
        pause(site.redis, "ALL")
        paused_at = time.monotonic()
        with ThreadPoolExecutor(max_workers=24) as pool:  # a burst, all at once: ReadTimeout would be a hang
            hot = [pool.submit(timed, lambda: dave.get(site.url + "/echo")) for _ in range(16)]
            signins = [pool.submit(timed, partial(submit, client, page, {"identifier": site.provider_identifier}))
                       for client, page in zip(newcomers, login_pages, strict=True)]
            account = [pool.submit(timed, lambda: dave.get(site.url + "/_gateway/account")) for _ in range(4)]
            answers = {"hot": [f.result() for f in hot], "sign-in": [f.result() for f in signins],
                       "account": [f.result() for f in account]}
        # The hot path needs no store while its revocations are fresh: signed-in people keep their pages.
        assert {status for status, _ in answers["hot"]} == {200}, answers
        # What needs the store gets 503 once the store's timeout is up; nothing waits for the pause to end.
        assert {status for status, _ in answers["sign-in"] + answers["account"]} == {503}, answers
        slowest = max(seconds for group in answers.values() for _, seconds in group)
        assert time.monotonic() - paused_at < ANSWER_BOUND
        # Once Redis answers again, sign-ins work again, by themselves.
        with httpx.Client(timeout=ANSWER_BOUND) as later:

            def signs_in() -> bool:
                answer = submit(later, later.get(site.url + "/login"), {"identifier": site.provider_identifier})
                assert answer.status_code in (200, 302, 303, 503), answer.status_code
                return answer.status_code != 503

            back = wait_until(signs_in, OUTAGE_DEADLINE, "sign-ins working again")
        assert dave.get(site.url + "/echo").status_code == 200
    finally:
        dave.close()
        for client in newcomers:
            client.close()
    print(f"\n[{site.mode}] Redis paused {PAUSE} s: hot path {max(s for _, s in answers['hot']) * 1000:.0f} ms at"
          f" most, store-bound pages 503 in {slowest:.2f} s at most; sign-ins back {back:.2f} s after the burst")


def test_a_blip_in_the_middle_of_a_rotation_accuses_nobody_and_creates_one_session(site: Stack) -> None:
    assert site.redis is not None
    with signed_in(site, "erin", remember=True) as browser:
        first_session, remember = browser.cookies[SESSION], browser.cookies[REMEMBER]
    before = thefts(site)
    # Writes paused: the restore reads the series, then its rotation (a script) waits past the store's timeout.
    pause(site.redis, "WRITE")
    blip = restore(site, 1, remember)
    assert blip.status_code == 503 and SESSION not in blip.cookies and REMEMBER not in blip.cookies
    # The browser keeps its cookie and tries again, on the other instance, until Redis answers.
    again = restore_until_done(site, 2, remember)
    assert thefts(site) == before, "the person was accused of theft after a blip"
    session, remember = again.cookies[SESSION], again.cookies.get(REMEMBER) or remember
    assert accepted(site, 1, {SESSION: session})
    # The first sign-in's session and one restored session: the attempts that failed made none.
    assert sessions_listed(site, session) == 2
    # Redis stopped as a restore comes in: the same.
    site.redis.stop()
    assert restore(site, 1, remember).status_code == 503
    site.redis.start()
    retried = restore_until_done(site, 1, remember)
    assert thefts(site) == before
    assert sessions_listed(site, retried.cookies[SESSION]) == 3
    # The series is whole: its latest cookie restores once more, and the first session was never touched.
    latest = retried.cookies.get(REMEMBER) or remember
    assert restored(restore(site, 2, latest))
    assert accepted(site, 2, {SESSION: first_session})
