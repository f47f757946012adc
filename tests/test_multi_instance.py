"""Three gateway instances behind nginx's round robin on one Redis: one truth, whichever instance answers.

Real processes on loopback (:mod:`devtools.stack`): nginx with the
``upstream gateway`` of deploy/nginx/gateway-upstream.conf (round robin, no
sticky sessions), three gateways on a real ``redis-server``, the development
provider and the echo app; every test in both modes. The stack's nginx names
the instance behind each gateway page (``X-Gateway-Instance``); a step that
must happen on one chosen instance asks that instance itself, as nginx would
(tests/instances.py).

Revocations are refreshed by polling only every :data:`REFRESH` seconds here:
what reaches another instance sooner came by push.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from devtools.stack import MODES, Stack
from tests.instances import (
    REMEMBER,
    SESSION,
    accepted,
    csrf_token,
    direct,
    instance_steps,
    refused_everywhere_within,
    signed_in,
)
from tests.signin_steps import sign_in
from tests.stack_fixtures import ECHO_APP, start_stack
from tests.test_oidc_stack import oidc_sign_in

pytestmark = pytest.mark.nginx

INSTANCES = 3
REFRESH = 5.0
# The promise: a logout on one instance is refused by every other within a second.
REVOCATION_DEADLINE = 1.0
FAILURE_LIMIT = 4
CLUSTER_ENV = {
    "GATEWAY_REVOCATION_REFRESH": str(REFRESH),
    # No grace: a replayed previous remember-me token is theft at once (the grace rule is the stores' contract).
    "GATEWAY_REMEMBER_GRACE": "0",
    "GATEWAY_FAILURE_RATE_LIMIT": str(FAILURE_LIMIT),
}
# The rate-limit test's own client address (nginx passes it on): other tests' failures do not count.
LIMITED_CLIENT = "127.0.0.2"


@pytest.fixture(scope="module", params=MODES, name="cluster")
def cluster_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory, request.param, ECHO_APP, CLUSTER_ENV, instances=INSTANCES,
                           store="redis")


# -- one sign-in, several instances ---------------------------------------------------------------


def openid2_sign_in(browser: httpx.Client, stack: Stack) -> httpx.Response:
    """OpenID 2.0 (association and nonce in the store): the local provider's identifier, typed in."""
    return sign_in(browser, stack.url, stack.provider_identifier, "alice", next_target="/echo")


def oidc_sign_in_to_echo(browser: httpx.Client, stack: Stack) -> httpx.Response:
    """OpenID Connect (state, nonce and PKCE verifier in the login state): the local provider's button."""
    return oidc_sign_in(browser, stack, "/echo")


@pytest.mark.parametrize("sign_in_with", [openid2_sign_in, oidc_sign_in_to_echo], ids=["openid2", "oidc"])
def test_a_sign_in_whose_steps_land_on_different_instances_completes(
        cluster: Stack, sign_in_with: Callable[[httpx.Client, Stack], httpx.Response]) -> None:
    for _attempt in range(5):  # nginx's round robin; its two workers each keep their own turn
        with httpx.Client(follow_redirects=True, timeout=15) as browser:
            steps = instance_steps(cluster, browser)
            page = sign_in_with(browser, cluster)
            cookies = {SESSION: browser.cookies[SESSION]}
        started = [number for method, path, number in steps if (method, path) == ("POST", "/login")]
        finished = [number for method, path, number in steps if path == "/_gateway/callback"]
        assert len(started) == 1 and len(finished) == 1, steps
        if started != finished:
            break
    else:
        raise AssertionError(f"every sign-in started and finished on one instance: {steps}")
    # The login state written by one instance was taken by another, and the page behind it was reached.
    assert page.status_code == 200 and str(page.url) == cluster.url + "/echo", steps
    assert httpx.Headers(page.json()["headers"])["x-gateway-nickname"] == "alice"
    assert len({number for _, _, number in steps}) >= 2
    # The session is one record in the shared store: every instance accepts it.
    assert all(accepted(cluster, number, cookies) for number in range(1, INSTANCES + 1))


def test_every_instance_takes_its_turn_without_sticky_sessions(cluster: Stack) -> None:
    with signed_in(cluster, "bob") as browser:
        steps = instance_steps(cluster, browser)
        for _ in range(2 * INSTANCES):
            assert browser.get(cluster.url + "/_gateway/account").status_code == 200
    assert {number for _, _, number in steps} == set(range(1, INSTANCES + 1)), steps


# -- remember-me: restored on one instance, a replay caught on another -------------------------------


def test_remember_me_restores_on_one_instance_and_a_replayed_old_token_is_theft_on_another(cluster: Stack) -> None:
    with signed_in(cluster, "carol", remember=True) as browser:
        old_remember = browser.cookies[REMEMBER]
    with direct(cluster, 1, {REMEMBER: old_remember}) as restarted:  # the browser restarted: no session cookie
        restore = restarted.get("/login", params={"next": "/echo"})
        assert restore.status_code in (302, 303) and restore.headers["location"] == "/echo", restore.text[:500]
        restored = {SESSION: restore.cookies[SESSION]}
        new_remember = restore.cookies[REMEMBER]
    assert new_remember != old_remember  # rotated on instance 1
    assert accepted(cluster, 3, restored)
    # A copy of the cookie from before the rotation, replayed on instance 2: theft.
    with direct(cluster, 2, {REMEMBER: old_remember}) as thief:
        replay = thief.get("/login", params={"next": "/echo"})
        assert replay.status_code == 200 and SESSION not in replay.cookies  # the login page, nobody signed in
    assert "suspected remember-me cookie theft" in cluster.log("gateway-2", tail=None)
    assert "suspected remember-me cookie theft" not in cluster.log("gateway-1", tail=None)
    # The series and the session restored from it end on every instance; the rotated token is dead too.
    refused_everywhere_within(cluster, restored, list(range(1, INSTANCES + 1)), REVOCATION_DEADLINE)
    with direct(cluster, 3, {REMEMBER: new_remember}) as holder:
        again = holder.get("/login", params={"next": "/echo"})
        assert again.status_code == 200 and SESSION not in again.cookies


# -- revocations reach every instance ----------------------------------------------------------------


def test_a_logout_on_one_instance_is_refused_by_the_others_within_a_second(cluster: Stack) -> None:
    with signed_in(cluster, "dave") as browser:
        cookies = {SESSION: browser.cookies[SESSION]}
    assert all(accepted(cluster, number, cookies) for number in range(1, INSTANCES + 1))
    with direct(cluster, 1, cookies) as leaving:
        logout = leaving.get("/logout", headers={"Sec-Fetch-Site": "same-origin"})
    assert logout.status_code in (302, 303) and logout.headers["location"].startswith("/login")
    took = refused_everywhere_within(cluster, cookies, [2, 3], REVOCATION_DEADLINE)
    print(f"\n[{cluster.mode}] logout on instance 1 refused by instances 2 and 3 after {took * 1000:.0f} ms"
          f" (polling refresh: {REFRESH:.0f} s)")
    # And through nginx, whichever instance it asks.
    with httpx.Client(cookies=cookies, timeout=10) as copy:
        for _ in range(INSTANCES):
            assert copy.get(cluster.url + "/echo").status_code == 302


def test_signing_out_everywhere_on_one_instance_ends_the_sessions_on_all(cluster: Stack) -> None:
    with signed_in(cluster, "erin") as laptop, signed_in(cluster, "erin", remember=True) as phone:
        laptop_cookies = {SESSION: laptop.cookies[SESSION]}
        phone_cookies = {SESSION: phone.cookies[SESSION]}
        phone_remember = phone.cookies[REMEMBER]
        with direct(cluster, 2, laptop_cookies) as on_two:
            page = on_two.get("/_gateway/account")
            assert page.status_code == 200, page.text[:500]
            done = on_two.post("/_gateway/account/signout-everywhere", data={"csrf_token": csrf_token(page)})
            assert done.status_code in (200, 303), done.text[:500]
    took = refused_everywhere_within(cluster, phone_cookies, [1, 3], REVOCATION_DEADLINE)
    print(f"\n[{cluster.mode}] sign out everywhere on instance 2 refused by instances 1 and 3 after"
          f" {took * 1000:.0f} ms")
    assert not any(accepted(cluster, number, laptop_cookies) for number in range(1, INSTANCES + 1))
    with direct(cluster, 3, {REMEMBER: phone_remember}) as restarted:  # the series ended with them
        again = restarted.get("/login", params={"next": "/echo"})
        assert again.status_code == 200 and SESSION not in again.cookies


# -- rate limits ---------------------------------------------------------------------------------------


def test_failed_sign_ins_are_counted_across_instances(cluster: Stack) -> None:
    transport = httpx.HTTPTransport(local_address=LIMITED_CLIENT)
    with httpx.Client(transport=transport, timeout=10) as client:
        steps = instance_steps(cluster, client)
        answers = [client.get(cluster.url + "/_gateway/callback").status_code for _ in range(FAILURE_LIMIT)]
        assert all(status in (302, 303) for status in answers), answers  # each a failed sign-in: back to /login
        refused = client.get(cluster.url + "/_gateway/callback")
    counted_on = {number for _, _, number in steps[:FAILURE_LIMIT]}
    # Spread over the instances, no one of them saw the limit by itself; the next failure is refused anyway.
    assert len(counted_on) >= 2, steps
    assert refused.status_code == 429, (refused.status_code, refused.text[:300], steps)
    assert "retry-after" in refused.headers



# -- an instance goes away ---------------------------------------------------------------------------


def test_an_instance_stopped_for_an_upgrade_signs_nobody_out(cluster: Stack) -> None:
    with signed_in(cluster, "grace") as browser:
        cookies = {SESSION: browser.cookies[SESSION]}
    cluster.processes["gateway-3"].close()
    try:
        # nginx finds it refusing connections and asks the next instance (deploy/nginx/gateway-upstream.conf).
        with httpx.Client(cookies=cookies, timeout=10) as grace:
            assert all(grace.get(cluster.url + "/echo").status_code == 200 for _ in range(2 * INSTANCES))
        with httpx.Client(follow_redirects=True, timeout=15) as newcomer:  # sign-ins too, POSTs included
            page = sign_in(newcomer, cluster.url, cluster.provider_identifier, "heidi", next_target="/echo")
            assert page.status_code == 200 and str(page.url) == cluster.url + "/echo"
    finally:
        cluster.restart_gateway(3)  # the upgraded instance: it knows every session from the store
    assert accepted(cluster, 3, cookies)
