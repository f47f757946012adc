"""GET /_gateway/auth, the answer to nginx's auth_request (in process; the nginx tests run it for real)."""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.app import GatewayApp
from gateway.errors import TokenRefused
from gateway.gate.access import parse_rule
from gateway.gate.authenticate import REFRESH_REUSE
from gateway.gate.bearer import BearerTokens
from gateway.proof import InvalidProof, ProofVerifier
from gateway.types import Assurance, Identity, VerifiedToken
from tests.conftest import PROOF_KEY, make_settings
from tests.servers import run_async

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ALICE = Identity("https://op.example/id/alice", "alice", "a@example.test")
# What nginx's auth_request always names (gateway-locations.conf): the original request.
NGINX = {"X-Original-URI": "/"}


@pytest.fixture
def app(tmp_path: Path) -> GatewayApp:
    return GatewayApp(make_settings(tmp_path, 8080))


@pytest.fixture
def client(app: GatewayApp) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


def session_cookie(app: GatewayApp, session_id: str = "sid", signed_in: float | None = None) -> str:
    value = app.runtime.sessions.encode(session_id, ALICE, signed_in or time.time(), None)
    return f"{app.settings.session_cookie}={value}"


def test_no_session_is_401_with_an_encoded_login_url(client: TestClient) -> None:
    response = client.get("/_gateway/auth", headers={"X-Original-URI": "/p?a=1&b=x%20y"})
    assert response.status_code == 401
    assert response.headers["x-gateway-login"] == "/login?next=%2Fp%3Fa%3D1%26b%3Dx%2520y"


def test_unsafe_original_uri_falls_back_to_root(client: TestClient) -> None:
    response = client.get("/_gateway/auth", headers={"X-Original-URI": "//evil.example/"})
    assert response.headers["x-gateway-login"] == "/login"


def test_session_gets_identity_headers_with_a_proof_for_the_original_request(app: GatewayApp,
                                                                             client: TestClient) -> None:
    response = client.get("/_gateway/auth", headers={"X-Original-URI": "/p?q=1", "X-Original-Method": "POST",
                                                     "Cookie": session_cookie(app)})
    assert response.status_code == 200
    assert ProofVerifier(PROOF_KEY).verify(response.headers, "POST", "testserver", "/p?q=1") == ALICE
    assert "set-cookie" not in response.headers  # fresh cookie: nothing to refresh


@pytest.mark.parametrize("headers", [{}, {"X-Forwarded-Uri": "/admin"}, {"X-Original-Method": "GET"}])
def test_an_auth_request_naming_no_original_request_is_refused_not_judged_as_the_root(
        app: GatewayApp, client: TestClient, headers: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    """Without X-Original-URI (nginx), or X-Forwarded-Uri from trusted_proxies (Caddy, Traefik), there is
    nothing to judge: "/" instead would void every rule and give a signed-in person 200 for any path."""
    response = client.get("/_gateway/auth", headers={"Cookie": session_cookie(app), **headers})
    assert response.status_code == 400
    assert not any(name.startswith("x-gateway-") for name in response.headers)
    assert "trusted_proxies" in caplog.text


def test_an_ageing_session_cookie_is_refreshed(app: GatewayApp, client: TestClient, monkeypatch) -> None:
    cookie = session_cookie(app)
    later = time.time() + app.runtime.sessions.refresh_after + 1
    monkeypatch.setattr(app.runtime, "now", lambda: later)  # the session codec's clock too
    response = client.get("/_gateway/auth", headers={"Cookie": cookie, **NGINX})
    assert response.status_code == 200
    assert response.headers["set-cookie"].startswith(app.settings.session_cookie + "=")


def test_a_client_repeating_an_ageing_cookie_gets_one_refresh_not_a_signature_per_request(
        app: GatewayApp, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A script with a fixed Cookie header (or a page's burst before the browser stores the new cookie):
    re-signing costs about as much as the whole check, so one refresh answers them for REFRESH_REUSE s."""
    cookie, other_cookie = session_cookie(app), session_cookie(app, "other")
    clock = [time.time() + app.runtime.sessions.refresh_after + 1]
    monkeypatch.setattr(app.runtime, "now", lambda: clock[0])
    signed = []
    original = app.runtime.sessions.refreshed
    monkeypatch.setattr(app.runtime.sessions, "refreshed", lambda session: signed.append(session) or original(session))
    first = client.get("/_gateway/auth", headers={"Cookie": cookie, **NGINX}).headers["set-cookie"]
    clock[0] += 1
    again = client.get("/_gateway/auth", headers={"Cookie": cookie, **NGINX}).headers["set-cookie"]
    assert again == first and len(signed) == 1
    other = client.get("/_gateway/auth", headers={"Cookie": other_cookie, **NGINX})
    assert other.headers["set-cookie"] != first  # never another cookie's refresh
    clock[0] += REFRESH_REUSE
    later = client.get("/_gateway/auth", headers={"Cookie": cookie, **NGINX}).headers["set-cookie"]
    assert later != first and len(signed) == 3


def test_what_is_worked_out_once_per_session_is_never_used_for_another_identity(app: GatewayApp,
                                                                               client: TestClient) -> None:
    """The headers and signed values are kept by session id; a cookie naming the same id for someone else
    (never issued, but the cache must not depend on that) gets its own identity and proof."""
    bob = Identity("https://op.example/id/bob", "bob", "b@example.test")
    alice_cookie = session_cookie(app, "same")
    bob_cookie = f"{app.settings.session_cookie}={app.runtime.sessions.encode('same', bob, time.time(), None)}"
    for cookie, who in ((alice_cookie, ALICE), (bob_cookie, bob), (alice_cookie, ALICE)):
        response = client.get("/_gateway/auth", headers={"Cookie": cookie, **NGINX})
        assert response.headers["x-gateway-nickname"] == who.nickname
        assert ProofVerifier(PROOF_KEY).verify(response.headers, "GET", "testserver", "/") == who


def test_revoked_session_is_401(app: GatewayApp, client: TestClient) -> None:
    app.runtime.revocation.add("sid")
    assert client.get("/_gateway/auth", headers={"Cookie": session_cookie(app), **NGINX}).status_code == 401


def test_stale_revocation_list_fails_closed(app: GatewayApp, client: TestClient, monkeypatch) -> None:
    monkeypatch.setattr(type(app.runtime.revocation), "healthy", property(lambda self: False))
    assert client.get("/_gateway/auth", headers={"Cookie": session_cookie(app), **NGINX}).status_code == 503


def test_revocation_applies_to_a_cookie_checked_a_moment_ago(app: GatewayApp, client: TestClient) -> None:
    headers = {"Cookie": session_cookie(app), **NGINX}
    assert client.get("/_gateway/auth", headers=headers).status_code == 200
    app.runtime.revocation.add("sid")
    assert client.get("/_gateway/auth", headers=headers).status_code == 401


def test_an_outage_fails_closed_for_a_cookie_checked_a_moment_ago(app: GatewayApp, client: TestClient,
                                                                   monkeypatch) -> None:
    headers = {"Cookie": session_cookie(app), **NGINX}
    assert client.get("/_gateway/auth", headers=headers).status_code == 200
    monkeypatch.setattr(type(app.runtime.revocation), "healthy", property(lambda self: False))
    assert client.get("/_gateway/auth", headers=headers).status_code == 503


def test_every_answer_has_a_length_so_it_is_sent_in_one_piece(app: GatewayApp, client: TestClient,
                                                               monkeypatch) -> None:
    answers = [client.get("/_gateway/auth", headers=NGINX),
               client.get("/_gateway/auth", headers={"Cookie": session_cookie(app), **NGINX})]
    monkeypatch.setattr(type(app.runtime.revocation), "healthy", property(lambda self: False))
    answers.append(client.get("/_gateway/auth", headers={"Cookie": session_cookie(app), **NGINX}))
    assert [a.status_code for a in answers] == [401, 200, 503]
    for answer in answers:
        assert answer.headers["content-length"] == "0" and "transfer-encoding" not in answer.headers


def test_identity_headers_match_the_proof_signers(app: GatewayApp) -> None:
    session = app.runtime.sessions.decode(session_cookie(app).split("=", 1)[1], time.time())
    assert session is not None
    ours = app.runtime.auth.identity_headers(session, "GET", "app.example", "/p")
    signed_in = dataclasses.replace(ALICE, assurance=session.assurance)
    theirs = app.runtime.auth.proof.headers(signed_in, "GET", "app.example", "/p", app.runtime.auth.names)
    assert [(n.decode(), v.decode()) for n, v in ours[:6]] == [(n.lower(), v) for n, v in theirs[:6]]
    assert ours[6][0] == b"x-gateway-proof"
    verified = ProofVerifier(PROOF_KEY).verify(httpx.Headers(ours), "GET", "app.example", "/p")
    assert verified == ALICE and verified is not None
    assert verified.assurance == Assurance(float(int(session.assurance.auth_time)))


def test_proof_is_bound_to_the_host_nginx_passed(app: GatewayApp, client: TestClient) -> None:
    """nginx sends the auth check the Host it sends the app; a proof for one site fails at another."""
    response = client.get("/_gateway/auth", headers={"Host": "Wiki.Example:8443", "X-Original-URI": "/p",
                                                     "Cookie": session_cookie(app)})
    assert response.status_code == 200
    assert ProofVerifier(PROOF_KEY).verify(response.headers, "GET", "wiki.example:8443", "/p") == ALICE
    with pytest.raises(InvalidProof):
        ProofVerifier(PROOF_KEY).verify(response.headers, "GET", "admin.example:8443", "/p")


def test_rules_never_see_the_query_string(tmp_path: Path) -> None:
    """A public rule matched against the whole URI would open /secret?x=/public (GHSA-7rh7-c77v-6434)."""
    rules = (parse_rule(0, {"name": "public-files", "path_regex": "/public", "policy": "public"}),)
    app = GatewayApp(make_settings(tmp_path, 8080, rules=rules))
    with TestClient(app, follow_redirects=False) as client:
        assert client.get("/_gateway/auth", headers={"X-Original-URI": "/public/a.css"}).status_code == 200
        refused = client.get("/_gateway/auth", headers={"X-Original-URI": "/secret?x=/public"})
        assert refused.status_code == 401
        assert refused.headers["x-gateway-login"] == "/login?next=%2Fsecret%3Fx%3D%2Fpublic"


def test_a_forbidden_api_request_is_marked_for_json(tmp_path: Path) -> None:
    rules = (parse_rule(0, {"name": "closed", "paths": ["/admin"], "policy": "deny"}),)
    app = GatewayApp(make_settings(tmp_path, 8080, rules=rules, api_paths=("/api/",)))
    with TestClient(app, follow_redirects=False) as client:
        page = client.get("/_gateway/auth", headers={"X-Original-URI": "/admin", "Cookie": session_cookie(app)})
        assert page.status_code == 403 and "x-gateway-api" not in page.headers
        xhr = client.get("/_gateway/auth", headers={"X-Original-URI": "/admin", "Cookie": session_cookie(app),
                                                    "X-Requested-With": "XMLHttpRequest"})
        assert xhr.status_code == 403 and xhr.headers["x-gateway-api"] == "1"
        api = client.get("/_gateway/auth", headers={"X-Original-URI": "/api/x"})
        assert api.status_code == 401 and api.headers["x-gateway-api"] == "1"


# -- the verdict every door translates (gateway.gate.authenticate.Verdict) ------------------------------------


@pytest.fixture
def started(tmp_path: Path) -> Iterator[GatewayApp]:
    """A gateway whose revocation list is current (its lifespan ran), with a deny and a public rule."""
    rules = ({"name": "closed", "paths": ["/admin"], "policy": "deny"},
             {"name": "static", "paths": ["/static/"], "policy": "public"})
    app = GatewayApp(make_settings(tmp_path, 8080, rules=tuple(parse_rule(i, r) for i, r in enumerate(rules))))
    with TestClient(app):
        yield app


def test_the_verdict_says_sign_in_with_the_login_page_of_the_request(started: GatewayApp) -> None:
    app = started
    verdict = app.runtime.auth.check(None, "GET", "testserver", "/p?a=1")
    assert (verdict.status, verdict.session, verdict.refreshed) == (401, None, None)
    assert verdict.decision is not None and verdict.decision.outcome == "sign_in"
    assert verdict.login == "/login?next=%2Fp%3Fa%3D1"


def test_a_door_may_name_where_the_login_page_sends_the_browser_back(started: GatewayApp) -> None:
    app = started
    verdict = app.runtime.auth.check(None, "GET", "app.example", "/p", "http://127.0.0.1:8080/elsewhere")
    assert verdict.login == "/login?next=%2Felsewhere"  # on the public origin: as a path
    unsafe = app.runtime.auth.check(None, "GET", "app.example", "/p", "https://evil.example/")
    assert unsafe.login == "/login"  # next is validated here, once, for every door


def test_the_verdict_allows_a_live_session_and_carries_it(started: GatewayApp) -> None:
    app = started
    verdict = app.runtime.auth.check(session_cookie(app), "GET", "testserver", "/p")
    assert verdict.status == 200 and verdict.login == "" and not verdict.public
    assert verdict.session is not None and verdict.session.identity == ALICE


def test_the_verdict_of_a_deny_rule_is_403_without_a_login_page(started: GatewayApp) -> None:
    app = started
    verdict = app.runtime.auth.check(session_cookie(app), "GET", "testserver", "/admin")
    assert (verdict.status, verdict.login) == (403, "")
    assert verdict.decision is not None and verdict.decision.rule == "closed"


def test_with_revocations_stale_the_verdict_is_503_except_on_a_public_path(started: GatewayApp,
                                                                            monkeypatch) -> None:
    app = started
    monkeypatch.setattr(type(app.runtime.revocation), "healthy", property(lambda self: False))
    closed = app.runtime.auth.check(session_cookie(app), "GET", "testserver", "/p")
    assert (closed.status, closed.decision, closed.session) == (503, None, None)
    public = app.runtime.auth.check(session_cookie(app), "GET", "testserver", "/static/a.css")
    assert public.status == 200 and public.public and public.session is None  # no identity on a public path


# -- bearer tokens (Authenticator.check_bearer; the verifier itself: tests/signin/oidc/test_bearer.py) --------


class CountingVerifier:
    """Stands in for the provider's verification (the gate's part is under test): alice, for ten minutes."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, token: str) -> VerifiedToken:
        self.calls += 1
        if token != "good":
            raise TokenRefused("not a good token")
        return VerifiedToken(ALICE, time.time() - 1, time.time() + 600)


Bearer = tuple[GatewayApp, CountingVerifier]


@pytest.fixture
def bearer(tmp_path: Path) -> Iterator[Bearer]:
    """A gateway taking tokens on /api/ (its deny and public rules as in ``started``), with a counting verifier."""
    rules = ({"name": "closed", "paths": ["/api/closed"], "policy": "deny"},
             {"name": "docs", "paths": ["/api/docs"], "policy": "public"})
    app = GatewayApp(make_settings(tmp_path, 8080, api_paths=("/api/",),
                                   rules=tuple(parse_rule(i, r) for i, r in enumerate(rules))))
    verifier = CountingVerifier()
    app.runtime.auth.bearer = BearerTokens(verifier)
    with TestClient(app):
        yield app, verifier


def test_a_bearer_token_on_an_api_path_is_verified_once_and_stands_for_the_cookie(bearer: Bearer) -> None:
    app, verifier = bearer
    for _ in range(3):
        verdict = run_async(app.runtime.auth.check_bearer("Bearer good", None, "GET", "testserver", "/api/x"))
        assert verdict.status == 200 and verdict.bearer and verdict.session is not None
        assert verdict.session.identity == ALICE
    assert verifier.calls == 1
    headers = app.runtime.auth.allow_headers(verdict, None, "GET", "testserver", "/api/x", "Bearer good")
    assert b"x-gateway-authorization" not in dict(headers)  # the token stays here (pass_bearer_token off)


def test_a_refused_token_is_401_invalid_token_and_never_falls_back_to_the_cookie(bearer: Bearer) -> None:
    app, _ = bearer
    verdict = run_async(app.runtime.auth.check_bearer("Bearer bad", session_cookie(app), "GET", "testserver",
                                                        "/api/x"))
    assert verdict.status == 401 and verdict.session is None and verdict.login == ""
    assert verdict.challenge.startswith(b'Bearer realm="openid-gateway", error="invalid_token"')


def test_a_denied_token_is_403_insufficient_scope(bearer: Bearer) -> None:
    app, _ = bearer
    verdict = run_async(app.runtime.auth.check_bearer("Bearer good", None, "GET", "testserver", "/api/closed"))
    assert verdict.status == 403 and b'error="insufficient_scope"' in verdict.challenge


def test_a_public_path_passes_without_looking_at_the_token(bearer: Bearer) -> None:
    app, verifier = bearer
    verdict = run_async(app.runtime.auth.check_bearer("Bearer bad", None, "GET", "testserver", "/api/docs"))
    assert verdict.status == 200 and verdict.public and verifier.calls == 0


def test_other_schemes_and_other_paths_leave_the_header_to_the_app(bearer: Bearer) -> None:
    app, verifier = bearer
    basic = run_async(app.runtime.auth.check_bearer("Basic YTpi", session_cookie(app), "GET", "testserver",
                                                      "/api/x"))
    page = run_async(app.runtime.auth.check_bearer("Bearer bad", session_cookie(app), "GET", "testserver", "/p"))
    assert basic.status == page.status == 200 and not basic.bearer and not page.bearer and verifier.calls == 0
    headers = dict(app.runtime.auth.allow_headers(page, None, "GET", "testserver", "/p", "Bearer bad"))
    assert headers[b"x-gateway-authorization"] == b"Bearer bad"  # the app's own header, handed back to nginx


def test_with_revocations_stale_a_token_is_503_too(bearer: Bearer, monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = bearer
    run_async(app.runtime.auth.check_bearer("Bearer good", None, "GET", "testserver", "/api/x"))  # remembered
    monkeypatch.setattr(type(app.runtime.revocation), "healthy", property(lambda self: False))
    verdict = run_async(app.runtime.auth.check_bearer("Bearer good", None, "GET", "testserver", "/api/x"))
    assert verdict.status == 503


def test_a_remembered_token_issued_before_its_user_was_signed_out_everywhere_is_refused(bearer: Bearer) -> None:
    app, _ = bearer
    assert run_async(app.runtime.auth.check_bearer("Bearer good", None, "GET", "testserver", "/api/x")).status == 200
    app.runtime.revocation.add_cutoff(ALICE.user_id, time.time())
    verdict = run_async(app.runtime.auth.check_bearer("Bearer good", None, "GET", "testserver", "/api/x"))
    assert verdict.status == 401 and b"signed out everywhere" in verdict.challenge


def test_pass_bearer_token_hands_the_token_on_to_the_app(bearer: Bearer) -> None:
    app, _ = bearer
    auth = app.runtime.auth
    verdict = run_async(auth.check_bearer("Bearer good", None, "GET", "testserver", "/api/x"))
    auth.pass_bearer_token = True
    headers = dict(auth.allow_headers(verdict, None, "GET", "testserver", "/api/x", "Bearer good"))
    assert headers[b"x-gateway-authorization"] == b"Bearer good"


def test_a_session_too_old_for_a_step_up_rule_is_401_with_what_the_rule_asks(tmp_path: Path) -> None:
    rules = (parse_rule(0, {"name": "admin", "paths": ["/admin"], "policy": "signed_in", "max_age": 300,
                            "acr_values": ["urn:example:mfa"]}),)
    app = GatewayApp(make_settings(tmp_path, 8080, rules=rules))
    with TestClient(app, follow_redirects=False) as client:
        old = session_cookie(app, signed_in=time.time() - 600)
        response = client.get("/_gateway/auth", headers={"X-Original-URI": "/admin/x", "Cookie": old})
        assert response.status_code == 401
        assert response.headers["x-gateway-login"] == ("/login?next=%2Fadmin%2Fx&max_age=300"
                                                       "&acr_values=urn%3Aexample%3Amfa")
        assert client.get("/_gateway/auth", headers={"X-Original-URI": "/posts", "Cookie": old}).status_code == 200


def test_starting_a_step_up_from_the_login_page_counts_against_the_login_rate_limit(tmp_path: Path) -> None:
    """A GET that stores a login state must be limited like POST /login, or a session could fill the store."""
    app = GatewayApp(make_settings(tmp_path, 8080, login_rate_limit=1))
    unreachable = Identity("http://127.0.0.1:1/id/alice", "alice")  # an OpenID 2.0 identifier: discovery fails
    cookie = f"{app.settings.session_cookie}={app.runtime.sessions.encode('sid', unreachable, time.time(), None)}"
    with TestClient(app, follow_redirects=False) as client:
        first = client.get("/login?max_age=60", headers={"Cookie": cookie})
        assert first.status_code == 400  # tried: the provider could not be found
        assert client.get("/login?max_age=60", headers={"Cookie": cookie}).status_code == 429


def test_the_login_page_carries_a_step_up_on_to_whichever_sign_in_is_chosen(client: TestClient) -> None:
    page = client.get("/login?next=/admin&max_age=60&acr_values=urn:example:mfa")
    assert page.status_code == 200
    assert '<input type="hidden" name="max_age" value="60">' in page.text
    assert '<input type="hidden" name="acr_values" value="urn:example:mfa">' in page.text
    assert "This page asks for a recent or stronger sign-in" in page.text
    for malformed in ("max_age=-1", "max_age=1e3", "max_age=60&acr_values=" + "x" * 300):
        assert 'name="max_age"' not in client.get("/login?" + malformed).text, malformed  # asked nothing: plain
