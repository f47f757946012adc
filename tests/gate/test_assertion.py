"""The JWT identity assertion on the gateway's side: key files, settings, the JWKS endpoint, the signed headers.

Every token is checked with PyJWT, not with joserfc that signed it, and every
HTTP exchange is real (uvicorn on loopback). The microblog's refusals of
forged tokens are in tests/backend_app/test_assertion.py; nginx in both modes
in tests/test_assertion_stack.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from gateway.errors import ConfigError
from gateway.gate.assertion import AssertionSigner, audience_of
from gateway.gate.signing_keys import (
    KeyFileError,
    add_next,
    generate_key,
    load_signing_keys,
    promote,
    retire,
    validated,
    write_key_file,
)
from gateway.paths import JWKS as JWKS_PATH
from gateway.settings import load_settings
from gateway.types import Identity
from tests.conftest import PROOF_KEY, GatewayFactory, RunningGateway

ALICE = Identity("https://op.example/id/alice", "alice", "alice@example.test")
NO_EMAIL = Identity("https://op.example/id/bob", "bob")
ROOT = Path(__file__).parents[2]


def key_file(tmp_path: Path, alg: Any = "ES256", name: str = "keys.json") -> Path:
    path = tmp_path / name
    write_key_file(path, validated([generate_key(alg)]), replace=False)
    return path


def openssl_key(tmp_path: Path, *args: str) -> Path:
    """A PEM private key made by openssl, as an operator would make one."""
    path = tmp_path / f"key-{len(list(tmp_path.iterdir()))}.pem"
    subprocess.run(["openssl", "genpkey", *args, "-out", str(path)], check=True, capture_output=True)
    path.chmod(0o600)  # as an operator must: the gateway refuses a key file other users may read
    return path


def verify(token: str, jwks: dict[str, Any], audience: str, issuer: str) -> dict[str, Any]:
    """What any app does: PyJWT with the published key named by the token's kid."""
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]]
    claims: dict[str, Any] = jwt.decode(token, key, algorithms=[key.algorithm_name], audience=audience,
                                        issuer=issuer, options={"require": ["exp", "iat", "iss", "aud", "sub"]})
    return claims


def session_cookie(gw: RunningGateway, identity: Identity = ALICE, session_id: str = "session-1") -> str:
    value = gw.app.runtime.sessions.encode(session_id, identity, time.time(), None)
    return f"{gw.settings.session_cookie}={value}"


def echoed(response: httpx.Response) -> dict[str, list[str]]:
    """The upstream's echo: header name (lower-case) -> every value it received."""
    assert response.status_code == 200, response.text
    found: dict[str, list[str]] = {}
    for name, value in response.json()["headers"]:
        found.setdefault(name.lower(), []).append(value)
    return found


# -- key files --------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_a_generated_key_file_signs_tokens_pyjwt_verifies(tmp_path: Path, alg: str) -> None:
    keys = load_signing_keys(key_file(tmp_path, alg))
    signer = AssertionSigner(keys, "https://gw.example", "s" * 40)
    token = signer.sign(ALICE, "App.Example:8443", "session-1", groups=["admins", "staff"], provider="op")
    header = jwt.get_unverified_header(token)
    assert header == {"alg": alg, "kid": keys.current.kid, "typ": "JWT"}
    claims = verify(token, keys.jwks(), "app.example:8443", "https://gw.example")
    assert claims["sub"] == ALICE.user_id and claims["nickname"] == "alice" and claims["email"] == ALICE.email
    assert claims["groups"] == ["admins", "staff"] and claims["provider"] == "op"
    assert claims["exp"] - claims["iat"] == 60
    assert claims["sid"] == signer.sid("session-1") and "session-1" not in json.dumps(claims)
    assert len(claims["jti"]) >= 22 and claims["jti"] != verify(
        signer.sign(ALICE, "app.example:8443", "session-1"), keys.jwks(), "app.example:8443", "https://gw.example"
    )["jti"]


def test_no_email_claim_without_a_vouched_email(tmp_path: Path) -> None:
    keys = load_signing_keys(key_file(tmp_path))
    token = AssertionSigner(keys, "https://gw.example", "s" * 40).sign(NO_EMAIL, "a.example", "s1")
    claims = verify(token, keys.jwks(), "a.example", "https://gw.example")
    assert "email" not in claims and claims["groups"] == [] and claims["provider"] == ""


def test_the_sid_is_a_keyed_hash_stable_per_session(tmp_path: Path) -> None:
    keys = load_signing_keys(key_file(tmp_path))
    one, other = AssertionSigner(keys, "i", "a" * 40), AssertionSigner(keys, "i", "b" * 40)
    assert one.sid("s1") == one.sid("s1") != one.sid("s2")
    assert one.sid("s1") != other.sid("s1")  # needs the gateway's secret: an app cannot map ids to sids


def test_audience_lower_cases_ascii_only_and_keeps_the_port() -> None:
    assert audience_of("App.EXAMPLE:8080") == "app.example:8080"
    assert audience_of("BÜcher.example") == "bÜcher.example"


@pytest.mark.parametrize(("args", "alg"), [
    (("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"), "ES256"),
    (("-algorithm", "ed25519"), "EdDSA"),
])
def test_an_openssl_pem_key_is_the_current_key(tmp_path: Path, args: tuple[str, ...], alg: str) -> None:
    keys = load_signing_keys(openssl_key(tmp_path, *args))
    assert keys.current.alg == alg and keys.current.kid == keys.current.key.thumbprint()
    token = AssertionSigner(keys, "https://gw.example", "s" * 40).sign(ALICE, "a.example", "s1")
    assert verify(token, keys.jwks(), "a.example", "https://gw.example")["sub"] == ALICE.user_id


def test_key_file_problems_are_one_line_each(tmp_path: Path) -> None:
    rsa = openssl_key(tmp_path, "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
    p384 = openssl_key(tmp_path, "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384")
    entry = generate_key()
    public_only = {"keys": [entry.public_jwk()]}
    two_current = {"keys": [generate_key().private_jwk(), generate_key().private_jwk()]}
    wrong_alg = {"keys": [{**entry.private_jwk(), "alg": "HS256"}]}
    same_kid = {"keys": [entry.private_jwk(), {**generate_key().private_jwk(), "kid": entry.kid, "status": "next"}]}
    cases = {
        tmp_path / "missing.json": "cannot be read",
        tmp_path: "cannot be read",  # a directory
        rsa: "RSAPrivateKey: use EC P-256 or Ed25519",
        p384: "use EC P-256 or Ed25519",
        tmp_path / "garbage": "neither a PEM private key nor a JWK Set",
        tmp_path / "list.json": "not a JWK Set",
        tmp_path / "public.json": "public only",
        tmp_path / "two.json": "exactly one key with status 'current', found 2",
        tmp_path / "alg.json": "can only sign ES256",
        tmp_path / "kid.json": "same kid",
    }
    (tmp_path / "garbage").write_text("not a key")
    (tmp_path / "list.json").write_text("[1, 2]")
    for name, document in (("public", public_only), ("two", two_current), ("alg", wrong_alg), ("kid", same_kid)):
        (tmp_path / f"{name}.json").write_text(json.dumps(document))
    for path, expected in cases.items():
        with pytest.raises(KeyFileError) as info:
            load_signing_keys(path)
        message = str(info.value)
        assert expected in message and str(path) in message and "\n" not in message, message


def test_the_key_file_is_written_owner_only(tmp_path: Path) -> None:
    os.umask(0o022)
    path = key_file(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600


# -- rotation -----------------------------------------------------------------------------------


def test_rotation_publishes_the_next_key_before_it_signs_and_the_previous_until_retired(tmp_path: Path) -> None:
    first = validated([generate_key()])
    old = first.current.kid
    with_next = add_next(first, "EdDSA")
    new = next(entry.kid for entry in with_next.entries if entry.status == "next")
    # Step 1: published, not signing.
    assert [key["kid"] for key in with_next.jwks()["keys"]] == [old, new]
    before = AssertionSigner(with_next, "https://gw.example", "s" * 40).sign(ALICE, "a.example", "s1")
    assert jwt.get_unverified_header(before)["kid"] == old
    # Step 2: it signs; the old key is still published, so a token signed a moment ago still verifies.
    promoted = promote(with_next)
    assert promoted.current.kid == new
    assert [key["kid"] for key in promoted.jwks()["keys"]] == [new, old]
    assert verify(before, promoted.jwks(), "a.example", "https://gw.example")["sub"] == ALICE.user_id
    after = AssertionSigner(promoted, "https://gw.example", "s" * 40).sign(ALICE, "a.example", "s1")
    assert jwt.get_unverified_header(after) == {"alg": "EdDSA", "kid": new, "typ": "JWT"}
    # Step 3: gone.
    retired = retire(promoted)
    assert [key["kid"] for key in retired.jwks()["keys"]] == [new]
    with pytest.raises(KeyError):
        verify(before, retired.jwks(), "a.example", "https://gw.example")


def test_rotation_steps_out_of_order_are_refused() -> None:
    keys = validated([generate_key()])
    with pytest.raises(KeyFileError, match="no 'next' key"):
        promote(keys)
    with pytest.raises(KeyFileError, match="already has a 'next' key"):
        add_next(add_next(keys))
    with pytest.raises(KeyFileError, match="no 'previous' key"):
        retire(keys)
    with pytest.raises(KeyFileError, match="retire it first"):
        promote(add_next(promote(add_next(keys))))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)


def test_the_keys_command_generates_and_rotates_a_file(tmp_path: Path) -> None:
    path = str(tmp_path / "keys.json")
    assert run_cli("keys", "generate", path).returncode == 0
    first = load_signing_keys(path).current.kid
    again = run_cli("keys", "generate", path)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "already exists" in again.stderr
    early = run_cli("keys", "promote", path)
    assert early.returncode == 2 and "add-next first" in early.stderr
    for step in ("add-next", "promote", "retire"):
        done = run_cli("keys", step, path)
        assert done.returncode == 0, done.stderr
    keys = load_signing_keys(path)
    assert len(keys.entries) == 1 and keys.current.kid != first


# -- settings ------------------------------------------------------------------------------------


def settings_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"GATEWAY_PUBLIC_URL": "https://gw.example", "GATEWAY_SECRET_KEYS": "s" * 40,
            "GATEWAY_PROOF_KEY": PROOF_KEY, "GATEWAY_STATE_DIR": str(tmp_path), **extra}


def test_the_default_is_the_proof_alone(tmp_path: Path) -> None:
    settings = load_settings(None, settings_env(tmp_path))
    assert settings.identity_assertion == "proof" and settings.assertion_keys_file == ""
    assert settings.header_assertion == "X-Gateway-Assertion"


@pytest.mark.parametrize(("extra", "expected"), [
    ({"GATEWAY_IDENTITY_ASSERTION": "jwt"}, "assertion_keys_file is missing: identity_assertion = 'jwt' signs"),
    ({"GATEWAY_IDENTITY_ASSERTION": "both", "GATEWAY_ASSERTION_KEYS_FILE": "/nonexistent/keys.json"},
     "assertion_keys_file '/nonexistent/keys.json' cannot be read: No such file or directory"),
    ({"GATEWAY_IDENTITY_ASSERTION": "jws"}, "GATEWAY_IDENTITY_ASSERTION must be one of 'proof', 'jwt', 'both'"),
    ({"GATEWAY_HEADER_ASSERTION": "x-gateway-proof"}, "header_assertion 'x-gateway-proof' must differ"),
])
def test_assertion_settings_are_checked_at_start_up(tmp_path: Path, extra: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, settings_env(tmp_path, **extra))
    assert any(problem.startswith(expected) for problem in info.value.problems), info.value.problems


def test_a_wrong_key_type_stops_start_up_with_one_line(tmp_path: Path) -> None:
    rsa = openssl_key(tmp_path, "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
    config = tmp_path / "gateway.toml"
    config.write_text(f'public_url = "https://gw.example"\nsecret_keys = ["{"s" * 40}"]\nproof_key = "{"p" * 40}"\n'
                      f'identity_assertion = "jwt"\nassertion_keys_file = "{rsa}"\n')
    result = run_cli("check-config", "--config", str(config))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "RSAPrivateKey: use EC P-256 or Ed25519" in result.stderr


# -- the JWKS endpoint ------------------------------------------------------------------------


def test_the_jwks_is_served_with_an_etag_and_a_short_cache_life(tmp_path: Path,
                                                                gateway_factory: GatewayFactory) -> None:
    path = key_file(tmp_path)
    gw = gateway_factory(mode="auth_request", assertion_keys_file=str(path))
    response = httpx.get(gw.url + JWKS_PATH)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=60"
    assert response.headers["content-type"] == "application/json"
    keys = response.json()["keys"]
    assert [key["kid"] for key in keys] == [load_signing_keys(path).current.kid]
    assert all("d" not in key and "status" not in key for key in keys)  # public halves only
    etag = response.headers["etag"]
    again = httpx.get(gw.url + JWKS_PATH, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert httpx.get(gw.url + JWKS_PATH, headers={"If-None-Match": '"other"'}).status_code == 200
    head = httpx.head(gw.url + JWKS_PATH)
    assert head.status_code == 200 and head.content == b""
    assert httpx.post(gw.url + JWKS_PATH).status_code == 405


def test_every_instance_with_the_same_file_serves_the_same_etag(tmp_path: Path,
                                                                gateway_factory: GatewayFactory) -> None:
    path = str(key_file(tmp_path))
    one, two = gateway_factory(assertion_keys_file=path), gateway_factory(assertion_keys_file=path)
    first, second = httpx.get(one.url + JWKS_PATH), httpx.get(two.url + JWKS_PATH)
    assert first.content == second.content and first.headers["etag"] == second.headers["etag"]


def test_without_a_key_file_there_is_no_jwks(tmp_path: Path, gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(mode="auth_request")
    assert httpx.get(gw.url + JWKS_PATH).status_code == 404


def test_rotation_through_restarts_next_published_before_it_signs(tmp_path: Path,
                                                                  gateway_factory: GatewayFactory) -> None:
    """Each step of the procedure, as instances restarted on the changed file serve and sign."""
    path = key_file(tmp_path)
    old = load_signing_keys(path).current.kid

    def restart() -> tuple[RunningGateway, list[str], str]:
        gw = gateway_factory(mode="auth_request", identity_assertion="jwt", assertion_keys_file=str(path))
        published = [key["kid"] for key in httpx.get(gw.url + JWKS_PATH).json()["keys"]]
        answer = httpx.get(gw.url + "/_gateway/auth", headers={"Cookie": session_cookie(gw), "X-Original-URI": "/"})
        return gw, published, answer.headers["x-gateway-assertion"]

    write_key_file(path, add_next(load_signing_keys(path)), replace=True)
    first, published, token = restart()
    new = published[1]
    assert published == [old, new] and jwt.get_unverified_header(token)["kid"] == old
    write_key_file(path, promote(load_signing_keys(path)), replace=True)
    gw, published, token_after = restart()
    assert published == [new, old] and jwt.get_unverified_header(token_after)["kid"] == new
    jwks = httpx.get(gw.url + JWKS_PATH).json()
    # The token signed with the old key before the promotion still verifies against the new JWKS.
    claims = verify(token, jwks, f"127.0.0.1:{first.server.port}", first.settings.public_origin)
    assert claims["sub"] == ALICE.user_id
    write_key_file(path, retire(load_signing_keys(path)), replace=True)
    gw, published, _ = restart()
    assert published == [new]


# -- the assertion on the wire: mode 1's auth check, mode 2's proxy ---------------------------------


@pytest.mark.parametrize(("setting", "proof", "assertion"), [
    ("proof", True, False), ("jwt", False, True), ("both", True, True),
])
def test_the_auth_check_answers_with_the_configured_proofs(tmp_path: Path, gateway_factory: GatewayFactory,
                                                           setting: str, proof: bool, assertion: bool) -> None:
    gw = gateway_factory(mode="auth_request", identity_assertion=setting, assertion_keys_file=str(key_file(tmp_path)))
    response = httpx.get(gw.url + "/_gateway/auth", headers={
        "Cookie": session_cookie(gw), "Host": "App.Example:8443", "X-Original-URI": "/p"})
    assert response.status_code == 200
    assert ("x-gateway-proof" in response.headers) is proof
    assert ("x-gateway-assertion" in response.headers) is assertion
    assert response.headers["x-gateway-user"] == ALICE.user_id
    if assertion:
        jwks = httpx.get(gw.url + JWKS_PATH).json()
        claims = verify(response.headers["x-gateway-assertion"], jwks, "app.example:8443", gw.settings.public_origin)
        assert claims["sub"] == ALICE.user_id and claims["sid"] == gw.app.runtime.assertion.sid("session-1")


def test_proxy_mode_forwards_the_assertion_for_the_host_asked_and_strips_the_clients(
        tmp_path: Path, gateway_factory: GatewayFactory) -> None:
    path = key_file(tmp_path)
    gw = gateway_factory(identity_assertion="jwt", assertion_keys_file=str(path))
    own = AssertionSigner(load_signing_keys(path), gw.settings.public_origin, "s" * 40)
    forged = own.sign(Identity("https://op.example/id/mallory", "mallory"), "app.example", "x")
    got = echoed(httpx.get(gw.url + "/echo", headers={
        "Cookie": session_cookie(gw), "Host": "app.example", "X-Gateway-Assertion": forged,
        "x_gateway_assertion": forged}))
    assert len(got["x-gateway-assertion"]) == 1 and "x_gateway_assertion" not in got
    jwks = httpx.get(gw.url + JWKS_PATH).json()
    claims = verify(got["x-gateway-assertion"][0], jwks, "app.example", gw.settings.public_origin)
    assert claims["sub"] == ALICE.user_id
    assert "x-gateway-proof" not in got  # "jwt": the assertion alone
    # Anonymous on a public path: the client's copy is still removed.
    public = gateway_factory(identity_assertion="jwt", assertion_keys_file=str(path), public_paths=("/echo",))
    anonymous = echoed(httpx.get(public.url + "/echo", headers={"X-Gateway-Assertion": forged}))
    assert "x-gateway-assertion" not in anonymous


def test_proxy_mode_serves_the_jwks_itself_without_sign_in(tmp_path: Path, gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(identity_assertion="jwt", assertion_keys_file=str(key_file(tmp_path)))
    response = httpx.get(gw.url + JWKS_PATH)
    assert response.status_code == 200 and response.json()["keys"]


def test_signing_cost(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Not a timing assertion: prints µs per assertion for the report (pytest -s)."""
    for alg in ("ES256", "EdDSA"):
        signer = AssertionSigner(load_signing_keys(key_file(tmp_path, alg, f"{alg}.json")), "https://g", "s" * 40)
        start, count = time.perf_counter(), 500
        for _ in range(count):
            signer.sign(ALICE, "app.example", "session-1")
        with capsys.disabled():
            print(f"\n{alg}: {(time.perf_counter() - start) / count * 1e6:.1f} µs per assertion")


def test_the_jwt_carries_the_groups_the_gateway_puts_the_person_in(tmp_path: Path,
                                                                   gateway_factory: GatewayFactory) -> None:
    from gateway.gate.access import parse_groups

    gw = gateway_factory(mode="auth_request", identity_assertion="jwt", assertion_keys_file=str(key_file(tmp_path)),
                         groups=parse_groups({"staff": [ALICE.user_id], "admins": [ALICE.email],
                                              "others": ["https://op.example/id/bob"]}))
    response = httpx.get(gw.url + "/_gateway/auth", headers={"Cookie": session_cookie(gw), "X-Original-URI": "/"})
    jwks = httpx.get(gw.url + JWKS_PATH).json()
    claims = verify(response.headers["x-gateway-assertion"], jwks, f"127.0.0.1:{gw.server.port}",
                    gw.settings.public_origin)
    assert claims["groups"] == ["admins", "staff"]  # sorted; the same as X-Gateway-Groups
    assert response.headers["x-gateway-groups"] == "admins,staff"


def test_the_provider_claim_names_who_vouched_for_the_sign_in(tmp_path: Path, gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(mode="auth_request", identity_assertion="jwt", assertion_keys_file=str(key_file(tmp_path)))
    vouched = Identity(ALICE.user_id, ALICE.nickname, ALICE.email, provider="Steam")
    response = httpx.get(gw.url + "/_gateway/auth",
                         headers={"Cookie": session_cookie(gw, vouched), "X-Original-URI": "/"})
    claims = verify(response.headers["x-gateway-assertion"], httpx.get(gw.url + JWKS_PATH).json(),
                    f"127.0.0.1:{gw.server.port}", gw.settings.public_origin)
    assert claims["provider"] == "Steam"
