"""Step-up (``max_age``, ``acr_values``) through nginx in both modes, against the local providers.

The stack's OpenID Connect provider (``devtools/oidc_provider``, ``devtools/stepup.py``) has two levels,
``...:acr:pwd`` (its form) and ``...:acr:mfa`` (the form with the development one-time code), and can keep
a session of its own ("Stay signed in at this provider"), answering later requests at once with the
original ``auth_time`` and ``acr`` unless asked for more. With ``--ignore-step-up`` it never is: the
gateway must then refuse, once, without a loop, and leave the person's session as it was.

``/echo/admin`` asks for a sign-in of the last :data:`MAX_AGE` seconds, ``/echo/mfa`` for the mfa level;
``/echo/api/mfa`` the same for bearer tokens (RFC 9470). The app behind (tests/upstream_app.py) echoes
what it receives; every identity it got is checked with the proof verifier apps use (gateway.proof).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from devtools.oidc_provider.state import ACR_MFA, ACR_PWD
from devtools.stack import Stack
from devtools.stepup import DEV_OTP
from gateway.proof import ProofVerifier
from gateway.types import Identity
from tests.devtools.oidc_relying_party import decide
from tests.htmlforms import submit
from tests.signin_steps import follow_autopost
from tests.stack_fixtures import ECHO_APP, start_stack
from tests.test_bearer_stack import AUDIENCE

pytestmark = pytest.mark.nginx

MAX_AGE = 3  # seconds: small, so that a sign-in grows too old for it within the test
RULES = [
    {"name": "admin", "paths": ["/echo/admin"], "policy": "signed_in", "max_age": MAX_AGE},
    {"name": "mfa", "paths": ["/echo/mfa"], "policy": "signed_in", "acr_values": [ACR_MFA]},
    {"name": "mfa-api", "paths": ["/echo/api/mfa"], "policy": "signed_in", "acr_values": [ACR_MFA],
     "max_age": 600, "bearer": True},
]
GATEWAY_ENV = {"GATEWAY_RULES": json.dumps(RULES), "GATEWAY_API_PATHS": json.dumps(["/echo/api"])}


@pytest.fixture(scope="module", params=["auth_request", "proxy"], name="stack")
def stack_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory, request.param, ECHO_APP, GATEWAY_ENV, bearer_audience=AUDIENCE)


@pytest.fixture(scope="module", params=["auth_request", "proxy"], name="ignoring")
def ignoring_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The same, with providers that ignore every step-up request (``--ignore-step-up``)."""
    yield from start_stack(tmp_path_factory, request.param, ECHO_APP, GATEWAY_ENV, ignore_step_up=True,
                           bearer_audience=AUDIENCE)


def sign_in(browser: httpx.Client, stack: Stack, path: str, *, remember: bool = False,
            **fields: str | None) -> httpx.Response:
    """Be sent to the login page by ``path``, press the OpenID Connect button, answer the consent form."""
    page = browser.get(stack.url + path)
    assert page.url.path == "/login", (page.url, stack.logs())
    consent = submit(browser, page, button=("provider", stack.oidc_url), check=("remember",) if remember else ())
    assert consent.url.port == stack.ports.oidc, (consent.url, stack.logs())
    return decide(browser, consent, "allow", **fields)


def seen(response: httpx.Response, stack: Stack) -> Identity:
    """The identity the app received on ``response``, its proof checked as an app checks it."""
    assert response.status_code == 200 and response.url.path.startswith("/echo/"), (
        response.status_code, response.url, response.text[:300], stack.logs())
    echo = response.json()
    headers = httpx.Headers([tuple(pair) for pair in echo["headers"]])
    uri = echo["raw_path"] + ("?" + echo["query_string"] if echo["query_string"] else "")
    verified = ProofVerifier(stack.proof_key).verify(headers, echo["method"], headers.get("host", ""), uri)
    assert verified is not None and verified.assurance is not None
    return verified


def at_the_provider(response: httpx.Response, stack: Stack) -> bool:
    return response.url.port == stack.ports.oidc and response.status_code == 200


def test_a_weaker_sign_in_is_sent_to_its_provider_and_comes_back_to_the_same_page(stack: Stack) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        first = seen(sign_in(browser, stack, "/echo/start"), stack)
        assert first.assurance is not None and first.assurance.acr == ACR_PWD
        weaker = httpx.Cookies(browser.cookies)
        asked = browser.get(stack.url + "/echo/mfa/page?x=1")
        # Straight to the provider of the session (no chooser), asked for mfa; the login URL said what.
        assert at_the_provider(asked, stack), (asked.url, stack.logs())
        login = next(r for r in asked.history if r.url.path == "/login")
        assert login.url.params.get("acr_values") == ACR_MFA and login.url.params.get("next") == "/echo/mfa/page?x=1"
        authorize = asked.url  # the consent page is the authorization request's answer
        assert authorize.params.get("prompt") == "login" and authorize.params.get("acr_values") == ACR_MFA
        assert json.loads(authorize.params["claims"]) == {"id_token": {"acr": {"essential": True, "values": [ACR_MFA]}}}
        back = decide(browser, asked, otp=DEV_OTP)
        assert back.url.path == "/echo/mfa/page" and back.url.params.get("x") == "1", (back.url, stack.logs())
        stepped = seen(back, stack)
        assert stepped.user_id == first.user_id and stepped.assurance is not None
        assert stepped.assurance.acr == ACR_MFA and stepped.assurance.auth_time >= first.assurance.auth_time
        assert seen(browser.get(stack.url + "/echo/mfa/again"), stack).user_id == first.user_id
    with httpx.Client(cookies=weaker, follow_redirects=True, timeout=15) as copy:  # the weaker session is over
        assert copy.get(stack.url + "/echo/page").url.path == "/login", stack.logs()


def test_without_the_one_time_code_the_provider_asks_again_and_the_page_stays_closed(stack: Stack) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        seen(sign_in(browser, stack, "/echo/start"), stack)
        asked = browser.get(stack.url + "/echo/mfa/page")
        refused = decide(browser, asked, otp=None)
        assert refused.url.port == stack.ports.oidc and "one-time code" in refused.text, (refused.url, stack.logs())
        again = browser.get(stack.url + "/echo/mfa/page")  # still not in: sent to the provider once more
        assert at_the_provider(again, stack), again.url


def test_a_sign_in_older_than_max_age_must_be_made_again(stack: Stack) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        seen(sign_in(browser, stack, "/echo/admin/"), stack)
        time.sleep(MAX_AGE + 1)
        asked = browser.get(stack.url + "/echo/admin/")
        assert at_the_provider(asked, stack), (asked.url, stack.logs())
        assert asked.url.params.get("max_age") == str(MAX_AGE) and asked.url.params.get("prompt") == "login"
        assert seen(decide(browser, asked), stack).assurance is not None


def test_a_remember_me_restore_is_not_a_fresh_sign_in(stack: Stack) -> None:
    """The attack: keep a remember-me cookie (a copy, or a shared computer), come back later: the restore must
    carry the old sign-in's time, so a max_age rule asks the provider again instead of letting it in."""
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        signed_in = seen(sign_in(browser, stack, "/echo/start", remember=True), stack)
        name = next(c.name for c in browser.cookies.jar if c.expires and c.name.endswith("remember"))
        kept = browser.cookies[name]
    time.sleep(MAX_AGE + 1)
    with httpx.Client(follow_redirects=True, timeout=15) as restarted:
        restarted.cookies.set(name, kept)
        restored = seen(restarted.get(stack.url + "/echo/page"), stack)  # restored, on a path without step-up
        assert restored.user_id == signed_in.user_id and restored.assurance == signed_in.assurance
        asked = restarted.get(stack.url + "/echo/admin/")
        assert at_the_provider(asked, stack), (asked.url, asked.text[:300], stack.logs())
        fresh = seen(decide(restarted, asked), stack)  # a real sign-in refreshes it
        assert fresh.assurance is not None and signed_in.assurance is not None
        assert fresh.assurance.auth_time > signed_in.assurance.auth_time


def test_a_provider_that_ignores_the_step_up_is_refused_once_and_the_session_stays(ignoring: Stack) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        signed_in = seen(sign_in(browser, ignoring, "/echo/start", stay="yes"), ignoring)
        refused = browser.get(ignoring.url + "/echo/mfa/page", headers={"Accept-Language": "fr"})
        assert refused.status_code == 403, (refused.status_code, refused.url, ignoring.logs())
        assert refused.url.path.endswith("/callback") and len(refused.history) < 8  # once, not a loop
        assert "Une connexion plus récente est nécessaire" in refused.text
        assert "step-up refused" in ignoring.log("gateway")
        assert seen(browser.get(ignoring.url + "/echo/page"), ignoring).user_id == signed_in.user_id


def test_a_provider_that_ignores_max_age_is_refused_too(ignoring: Stack) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        seen(sign_in(browser, ignoring, "/echo/start", stay="yes"), ignoring)
        time.sleep(MAX_AGE + 1)
        refused = browser.get(ignoring.url + "/echo/admin/")
        assert refused.status_code == 403 and "A more recent sign-in is needed" in refused.text, (
            refused.status_code, refused.url, ignoring.logs())


def openid2_sign_in(browser: httpx.Client, stack: Stack, path: str, stay: bool = False) -> httpx.Response:
    """The same with the local OpenID 2.0 provider's button; ``stay``: keep a session at the provider."""
    page = browser.get(stack.url + path)
    assert page.url.path == "/login", (page.url, stack.logs())
    consent = follow_autopost(browser, submit(browser, page, button=("provider", stack.provider_identifier)))
    return openid2_consent(browser, stack, consent, stay)


def openid2_consent(browser: httpx.Client, stack: Stack, page: httpx.Response, stay: bool = False) -> httpx.Response:
    assert page.url.port == stack.ports.provider and 'name="decision"' in page.text, (page.url, stack.logs())
    fields = {"username": "alice"} if "readonly" not in page.text else {}
    return follow_autopost(browser, submit(browser, page, {**fields, **({"stay": "yes"} if stay else {})},
                                           button=("decision", "allow")))


def test_openid_2_asks_through_pape_and_comes_back(stack: Stack) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        first = seen(openid2_sign_in(browser, stack, "/echo/admin/"), stack)
        time.sleep(MAX_AGE + 1)
        asked = follow_autopost(browser, browser.get(stack.url + "/echo/admin/"))
        assert asked.url.port == stack.ports.provider, (asked.url, stack.logs())
        again = seen(openid2_consent(browser, stack, asked), stack)
        assert again.user_id == first.user_id and again.assurance is not None and first.assurance is not None
        assert again.assurance.auth_time > first.assurance.auth_time


def test_an_openid_2_provider_that_ignores_max_auth_age_is_refused(ignoring: Stack) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        signed_in = seen(openid2_sign_in(browser, ignoring, "/echo/start", stay=True), ignoring)
        time.sleep(MAX_AGE + 1)
        refused = follow_autopost(browser, browser.get(ignoring.url + "/echo/admin/"))
        assert refused.status_code == 403 and "A more recent sign-in is needed" in refused.text, (
            refused.status_code, refused.url, ignoring.logs())
        assert f"more than max_age {MAX_AGE}s" in ignoring.log("gateway")  # its signed PAPE auth_time, judged
        assert seen(browser.get(ignoring.url + "/echo/page"), ignoring).user_id == signed_in.user_id


def token(stack: Stack, acr: str, auth_time: int | None = None) -> str:
    body: dict[str, object] = {"username": "alice", "acr": acr}
    if auth_time is not None:
        body["auth_time"] = auth_time
    with httpx.Client(base_url=stack.oidc_url, timeout=10) as provider:
        response = provider.post("/_dev/access-token", json=body)
        response.raise_for_status()
    return str(response.json()["access_token"])


def test_a_token_short_of_the_rule_gets_rfc_9470s_challenge(stack: Stack) -> None:
    url = stack.url + "/echo/api/mfa/report"
    weak = httpx.get(url, headers={"Authorization": f"Bearer {token(stack, ACR_PWD)}"}, timeout=15)
    assert weak.status_code == 401, (weak.status_code, weak.headers, stack.logs())
    assert weak.headers["www-authenticate"] == (
        'Bearer realm="openid-gateway", error="insufficient_user_authentication", error_description="a more recent'
        f' or stronger sign-in is required", max_age=600, acr_values="{ACR_MFA}"')
    old = httpx.get(url, headers={"Authorization": f"Bearer {token(stack, ACR_MFA, int(time.time()) - 3600)}"},
                    timeout=15)
    assert old.status_code == 401 and "insufficient_user_authentication" in old.headers["www-authenticate"]
    strong = httpx.get(url, headers={"Authorization": f"Bearer {token(stack, ACR_MFA)}"}, timeout=15)
    identity = seen(strong, stack)
    assert identity.assurance is not None and identity.assurance.acr == ACR_MFA
