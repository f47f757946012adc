"""``openid-gateway sessions list|revoke`` and ``keys secret``, run as the real console script.

The browsers sign in through a real gateway (proxy mode, the echo app behind);
the command works on the same store; the running gateway must refuse the
revoked browsers within its revocation refresh (polled with a deadline), and
a remember-me cookie must not sign them back in.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.cli.test_main import run
from tests.conftest import PROOF_KEY, GatewayFactory, RunningGateway
from tests.servers import UvicornThread
from tests.signin_steps import sign_in

DEADLINE = 15.0  # seconds; the gateways here refresh every 0.2 s


@pytest.fixture
def browsers() -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with httpx.Client(follow_redirects=True, timeout=15) as erin, \
            httpx.Client(follow_redirects=True, timeout=15) as frank:
        yield erin, frank


def command(gateway: RunningGateway, *args: str) -> tuple[int, str, str]:
    """Run ``openid-gateway <args>`` on the gateway's store (its own configuration, from the environment)."""
    env = {"GATEWAY_PUBLIC_URL": gateway.settings.public_url, "GATEWAY_SECRET_KEYS": "k" * 40,
           "GATEWAY_PROOF_KEY": PROOF_KEY, "GATEWAY_STATE_DIR": str(gateway.settings.state_dir)}
    result = run(*args, env=env)
    return result.returncode, result.stdout, result.stderr


def signed_in(browser: httpx.Client, gateway: RunningGateway) -> bool:
    """Whether the browser reaches the app (the echo) rather than the login page; remember-me is tried too."""
    response = browser.get(gateway.url + "/echo")
    return response.status_code == 200 and response.url.path == "/echo"


def refused_within_deadline(browser: httpx.Client, gateway: RunningGateway) -> bool:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if not signed_in(browser, gateway):
            return True
        time.sleep(0.05)
    return False


def test_revoke_user_signs_a_browser_out_of_a_running_gateway(
        gateway_factory: GatewayFactory, provider: UvicornThread, browsers: tuple[httpx.Client, httpx.Client]) -> None:
    gateway = gateway_factory()
    erin, frank = browsers
    erin_id, frank_id = f"{provider.url}/id/erin", f"{provider.url}/id/frank"
    sign_in(erin, gateway.url, erin_id, "erin", remember=True)
    sign_in(frank, gateway.url, frank_id, "frank")
    assert signed_in(erin, gateway) and signed_in(frank, gateway)

    status, out, _ = command(gateway, "sessions", "list")
    assert status == 0 and erin_id in out and frank_id in out and "remembered" in out
    status, out, _ = command(gateway, "sessions", "list", "--user", erin_id)
    assert status == 0 and len(out.splitlines()) == 1 and frank_id not in out

    status, out, err = command(gateway, "sessions", "revoke", "--user", erin_id)
    assert status == 0, err
    assert "revoked 1 session" in out
    assert refused_within_deadline(erin, gateway)  # and her remember-me cookie does not bring her back
    assert signed_in(frank, gateway)
    assert erin_id not in command(gateway, "sessions", "list")[1]


def test_revoke_one_session_and_then_everyone(
        gateway_factory: GatewayFactory, provider: UvicornThread, browsers: tuple[httpx.Client, httpx.Client]) -> None:
    gateway = gateway_factory()
    erin, frank = browsers
    sign_in(erin, gateway.url, f"{provider.url}/id/erin", "erin", remember=True)
    sign_in(frank, gateway.url, f"{provider.url}/id/frank", "frank")
    frank_line = command(gateway, "sessions", "list", "--user", f"{provider.url}/id/frank")[1]
    frank_session = frank_line.split("\t")[0]

    assert command(gateway, "sessions", "revoke", "--session", "no-such-session")[0] == 1
    status, out, err = command(gateway, "sessions", "revoke", "--session", frank_session)
    assert status == 0 and "revoked 1 session" in out, err
    assert refused_within_deadline(frank, gateway)
    assert signed_in(erin, gateway)

    status, out, err = command(gateway, "sessions", "revoke", "--all")
    assert status == 0, err
    assert refused_within_deadline(erin, gateway)  # remember-me series ended too
    assert command(gateway, "sessions", "list")[1] == ""


def test_revoking_someone_already_signed_out_counts_0_sessions_and_still_cuts_off_their_bearer_tokens(
        gateway_factory: GatewayFactory, provider: UvicornThread, browsers: tuple[httpx.Client, httpx.Client]) -> None:
    """``revoke --user`` always records the person's bearer-token cutoff, so it always exits 0; a script learns
    from "revoked 0 sessions" that no browser was live. Only ``--session`` has nothing to do, and exits 1."""
    gateway = gateway_factory()
    erin, _ = browsers
    erin_id = f"{provider.url}/id/erin"
    sign_in(erin, gateway.url, erin_id, "erin", remember=True)
    erin_session = command(gateway, "sessions", "list", "--user", erin_id)[1].split("\t")[0]
    assert command(gateway, "sessions", "revoke", "--user", erin_id)[0] == 0

    status, out, err = command(gateway, "sessions", "revoke", "--user", erin_id)
    assert status == 0, err
    assert "revoked 0 sessions" in out and erin_id in out and "bearer tokens issued until now" in out
    status, out, err = command(gateway, "sessions", "revoke", "--session", erin_session)
    assert status == 1 and out == ""
    assert "no live session" in err and erin_session in err
    status, out, _ = command(gateway, "sessions", "revoke", "--all")
    assert status == 0 and "revoked 0 sessions" in out


def test_the_user_session_and_all_options_exclude_each_other(gateway: RunningGateway) -> None:
    status, _, err = command(gateway, "sessions", "revoke", "--user", "x", "--all")
    assert status == 2 and "not allowed with" in err
    assert command(gateway, "sessions", "revoke")[0] == 2


def test_keys_secret_prints_a_new_secret_key_and_proof_key() -> None:
    first, second = run("keys", "secret"), run("keys", "secret")
    assert first.returncode == 0
    keys = [line.split()[-1] for line in first.stdout.splitlines() if line.startswith(("secret key:", "proof key:"))]
    assert len(keys) == 2 and all(len(key) >= 64 for key in keys) and keys[0] != keys[1]
    assert keys[0] not in second.stdout
