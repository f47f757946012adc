"""The identity proof, checked with the plain-HMAC recipe docs/apps.md gives to apps in any language."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
import sys
import time
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner

from gateway import InvalidProof as ExportedInvalidProof
from gateway.errors import GatewayError
from gateway.proof import (
    HeaderNames,
    InvalidProof,
    ProofSigner,
    ProofVerifier,
    decode_groups,
    encode_groups,
    request_uri,
)
from gateway.types import Assurance, Identity

KEY = "k" * 40
ALICE = Identity("https://op.example/id/alice", "Zoë", "alice@example.test")
BOB = Identity("https://op.example/id/bob", "bob", "bob@victim.org.attacker.example")
# Groups whose names need encoding: a comma inside a name, a percent sign, non-ASCII.
CAROL = Identity("https://op.example/id/carol", "carol", "", ("staff", "admins", "r&d, lab", "100%", "équipe"))
HOST = "app.example:8443"
NOW = 1_800_000_000


def readme_verify(key: str, headers: dict[str, str], method: str, host: str, uri: str, now: float,
                  max_age: int = 30) -> bool:
    """docs/apps.md's recipe, step by step, in plain hmac (no gateway code)."""
    parts = headers["X-Gateway-Proof"].split(".")
    if len(parts) != 3 or parts[0] != "v3":
        return False
    timestamp, signature = parts[1], parts[2]
    if not (timestamp.isascii() and timestamp.isdigit()) or timestamp.startswith("0"):
        return False
    if uri[-1:] == "?":
        uri = uri[:-1]
    fields = ["openid-gateway.identity-proof.v3", timestamp, method.upper(), host.lower(), uri,
              headers["X-Gateway-User"], headers.get("X-Gateway-Nickname", ""), headers.get("X-Gateway-Email", ""),
              headers.get("X-Gateway-Groups", ""), headers.get("X-Gateway-Auth-Time", ""),
              headers.get("X-Gateway-Acr", "")]
    message = b""
    for field in fields:
        data = field.encode("latin-1")
        message += str(len(data)).encode() + b":" + data + b","
    mac = hmac.new(key.encode("utf-8"), message, hashlib.sha256).digest()
    expected = base64.urlsafe_b64encode(mac).decode().replace("=", "")
    age = int(now) - int(timestamp)
    return hmac.compare_digest(expected, signature) and 0 <= age <= max_age


def headers_for(identity: Identity, method: str = "GET", uri: str = "/a?b=1", host: str = HOST,
                at: int = NOW) -> dict[str, str]:
    return dict(ProofSigner(KEY, clock=lambda: at).headers(identity, method, host, uri, HeaderNames()))


def verifier(now: float = NOW) -> ProofVerifier:
    """The verifier exactly as an app builds it (default max_age), at a chosen time."""
    return ProofVerifier(KEY, clock=lambda: now)


def old_format_proof(method: str, uri: str, user: str, nickname: str, email: str, key: str = KEY) -> str:
    """A proof as the first format made it: itsdangerous TimestampSigner over newline-joined values."""
    signer = TimestampSigner(key, salt="openid-gateway.identity-proof", key_derivation="hmac",
                             digest_method=hashlib.sha256)
    signed = signer.sign("\n".join((method, uri, user, nickname, email))).decode()
    return ".".join(signed.rsplit(".", 2)[1:])


def test_readme_recipe_verifies_the_gateway_proof() -> None:
    headers = headers_for(ALICE)
    assert headers["X-Gateway-Nickname"] == "Zo%C3%AB"  # non-ASCII is percent-encoded
    assert headers["X-Gateway-Proof"].startswith(f"v3.{NOW}.")
    assert readme_verify(KEY, headers, "GET", HOST, "/a?b=1", NOW)
    assert readme_verify(KEY, headers, "GET", HOST, "/a?b=1", NOW + 30)
    assert not readme_verify(KEY, headers, "GET", HOST, "/a?b=1", NOW + 31)
    assert not readme_verify(KEY, headers, "POST", HOST, "/a?b=1", NOW)
    assert not readme_verify(KEY, headers, "GET", "other.example", "/a?b=1", NOW)
    assert not readme_verify("other" * 10, headers, "GET", HOST, "/a?b=1", NOW)


def test_readme_recipe_verifies_a_proof_with_groups() -> None:
    headers = headers_for(CAROL)
    assert headers["X-Gateway-Groups"] == "100%25,admins,r&d%2C lab,staff,%C3%A9quipe"
    assert readme_verify(KEY, headers, "GET", HOST, "/a?b=1", NOW)
    assert not readme_verify(KEY, {**headers, "X-Gateway-Groups": ""}, "GET", HOST, "/a?b=1", NOW)


def test_readme_recipe_and_verifier_agree_on_case_and_trailing_question_mark() -> None:
    headers = headers_for(ALICE, method="get", host="App.Example:8443", uri="/p?")
    assert readme_verify(KEY, headers, "GET", "app.example:8443", "/p", NOW)
    assert verifier().verify(headers, "GET", "app.example:8443", "/p") == ALICE


def test_verifier_returns_the_decoded_identity() -> None:
    assert verifier().verify(headers_for(ALICE), "GET", HOST, "/a?b=1") == ALICE


def test_groups_come_back_sorted_and_decoded() -> None:
    identity = verifier().verify(headers_for(CAROL), "GET", HOST, "/a?b=1")
    assert identity is not None
    assert identity.groups == ("100%", "admins", "r&d, lab", "staff", "équipe")
    assert identity == Identity(CAROL.user_id, CAROL.nickname, CAROL.email, identity.groups)


@pytest.mark.parametrize("groups", [(), ("a",), ("a,b", "c"), ("a", "b,c"), ("", "x"), ("x", "x"), ("%2C",)])
def test_encode_groups_round_trips(groups: tuple[str, ...]) -> None:
    assert decode_groups(encode_groups(groups)) == tuple(sorted({name for name in groups if name}))


@pytest.mark.parametrize("forged", [
    "100%25,admins,r&d%2C lab,staff,%C3%A9quipe,root",  # a group added
    "100%25,admins,r&d%2C lab,staff",                     # a group removed
    "100%25,r&d%2C lab,staff,%C3%A9quipe",                # admins removed
    "100%25,admins,r&d,lab,staff,%C3%A9quipe",            # one name split in two
    "admins,100%25,r&d%2C lab,staff,%C3%A9quipe",         # reordered
    "100%25,admins,r&d%2C lab,staff,%C3%A9quipe ",        # trailing space
    "",                                                   # emptied
])
def test_changing_the_groups_breaks_the_proof(forged: str) -> None:
    headers = headers_for(CAROL)
    with pytest.raises(InvalidProof, match="does not match"):
        verifier().verify({**headers, "X-Gateway-Groups": forged}, "GET", HOST, "/a?b=1")
    assert not readme_verify(KEY, {**headers, "X-Gateway-Groups": forged}, "GET", HOST, "/a?b=1", NOW)


def test_removing_the_groups_header_breaks_the_proof() -> None:
    headers = headers_for(CAROL)
    del headers["X-Gateway-Groups"]
    with pytest.raises(InvalidProof, match="does not match"):
        verifier().verify(headers, "GET", HOST, "/a?b=1")


def test_adding_groups_to_a_proof_made_without_them_is_refused() -> None:
    headers = headers_for(ALICE)
    assert headers["X-Gateway-Groups"] == ""
    with pytest.raises(InvalidProof, match="does not match"):
        verifier().verify({**headers, "X-Gateway-Groups": "admins"}, "GET", HOST, "/a?b=1")
    absent = {name: value for name, value in headers.items() if name != "X-Gateway-Groups"}
    assert verifier().verify(absent, "GET", HOST, "/a?b=1") == ALICE  # absent and empty sign the same


# Signed in at 1_799_999_000 with a one-time code: what a step-up rule, and an app, may rely on.
DAVE = Identity("https://op.example/id/dave", "dave", "", assurance=Assurance(1_799_999_000.0, "urn:ex:mfa"))


def test_auth_time_and_acr_are_sent_verified_and_returned() -> None:
    headers = headers_for(DAVE)
    assert (headers["X-Gateway-Auth-Time"], headers["X-Gateway-Acr"]) == ("1799999000", "urn:ex:mfa")
    assert readme_verify(KEY, headers, "GET", HOST, "/a?b=1", NOW)
    identity = verifier().verify(headers, "GET", HOST, "/a?b=1")
    assert identity is not None and identity.assurance == Assurance(1_799_999_000.0, "urn:ex:mfa")


@pytest.mark.parametrize(("field", "forged"), [
    ("X-Gateway-Auth-Time", "1799999990"),  # an old sign-in passed off as a recent one
    ("X-Gateway-Auth-Time", ""),
    ("X-Gateway-Acr", "urn:ex:mfa2"),
    ("X-Gateway-Acr", ""),
])
def test_changing_the_auth_time_or_acr_breaks_the_proof(field: str, forged: str) -> None:
    headers = {**headers_for(DAVE), field: forged}
    with pytest.raises(InvalidProof, match="does not match"):
        verifier().verify(headers, "GET", HOST, "/a?b=1")
    assert not readme_verify(KEY, headers, "GET", HOST, "/a?b=1", NOW)


def test_adding_an_auth_time_to_a_proof_made_without_one_is_refused() -> None:
    headers = headers_for(ALICE)
    with pytest.raises(InvalidProof, match="does not match"):
        verifier().verify({**headers, "X-Gateway-Auth-Time": str(NOW)}, "GET", HOST, "/a?b=1")


def test_a_v2_proof_is_refused_with_a_hint_to_upgrade() -> None:
    """A v2 proof signs no auth time: accepted, it would let any auth time header through."""
    headers = headers_for(ALICE)
    _, timestamp, signature = headers["X-Gateway-Proof"].split(".")
    with pytest.raises(InvalidProof, match=r"v2 format.*upgrade"):
        verifier().verify({**headers, "X-Gateway-Proof": f"v2.{timestamp}.{signature}"}, "GET", HOST, "/a?b=1")


@pytest.mark.parametrize(("email", "groups"), [("alice@example.test", "admins"), ("alice@example.tes", "tadmins")])
def test_moving_bytes_between_email_and_groups_is_refused(email: str, groups: str) -> None:
    """E-mail ``alice@example.testadmins`` (no groups) must not become ``alice@example.test`` in ``admins``."""
    identity = Identity(ALICE.user_id, ALICE.nickname, "alice@example.testadmins")
    headers = {**headers_for(identity), "X-Gateway-Email": email, "X-Gateway-Groups": groups}
    with pytest.raises(InvalidProof, match="does not match"):
        verifier().verify(headers, "GET", HOST, "/a?b=1")


def test_moving_the_end_of_the_email_into_the_proof_is_refused() -> None:
    """The first format split ``message.proof`` on its last dot.

    So e-mail ``bob@victim.org`` with proof ``attacker.example.<proof>`` verified.
    """
    headers = headers_for(BOB)
    forged = {**headers, "X-Gateway-Email": "bob@victim.org",
              "X-Gateway-Proof": "attacker.example." + headers["X-Gateway-Proof"]}
    with pytest.raises(InvalidProof):
        verifier().verify(forged, "GET", HOST, "/a?b=1")
    assert not readme_verify(KEY, forged, "GET", HOST, "/a?b=1", NOW)


@pytest.mark.parametrize(("user", "nickname"), [("https://op.example/id/alic", "eZo%C3%AB"),
                                                ("https://op.example/id/alice" + "Zo", "%C3%AB")])
def test_moving_bytes_between_fields_is_refused(user: str, nickname: str) -> None:
    headers = {**headers_for(ALICE), "X-Gateway-User": user, "X-Gateway-Nickname": nickname}
    with pytest.raises(InvalidProof, match="does not match"):
        verifier().verify(headers, "GET", HOST, "/a?b=1")


def test_proof_for_one_host_is_refused_at_another() -> None:
    headers = headers_for(ALICE, host="wiki.example")
    assert verifier().verify(headers, "GET", "wiki.example", "/a?b=1") == ALICE
    for other in ("admin.example", "wiki.example:8080", "wiki.example.", ""):
        with pytest.raises(InvalidProof, match="does not match"):
            verifier().verify(headers, "GET", other, "/a?b=1")


def test_host_port_is_part_of_what_is_signed() -> None:
    with pytest.raises(InvalidProof):
        verifier().verify(headers_for(ALICE, host="app.example:8443"), "GET", "app.example", "/a?b=1")


def test_old_format_proof_is_refused() -> None:
    user, nickname, email = "https://op.example/id/alice", "alice", "alice@example.test"
    headers = {"X-Gateway-User": user, "X-Gateway-Nickname": nickname, "X-Gateway-Email": email,
               "X-Gateway-Proof": old_format_proof("GET", "/a", user, nickname, email)}
    with pytest.raises(InvalidProof, match="not in the v3 format"):
        ProofVerifier(KEY).verify(headers, "GET", HOST, "/a")


def _non_canonical(signature: str) -> str:
    """The same 32 bytes with the unused low bits of the last base64 character set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return signature[:-1] + alphabet[alphabet.index(signature[-1]) | 1]


def _proof_variants() -> list[str]:
    _, timestamp, signature = headers_for(ALICE)["X-Gateway-Proof"].split(".")
    return [
        f"v1.{timestamp}.{signature}",
        f"v2.{timestamp}.{signature}",
        f"V3.{timestamp}.{signature}",
        f"{timestamp}.{signature}",
        f"v3.{timestamp}.{signature}.",
        f"v3.{timestamp}.{signature}=",
        f"v3.0{timestamp}.{signature}",
        f"v3.+{timestamp}.{signature}",
        f"v3.{timestamp}.{signature} ",
        f"v3..{timestamp}.{signature}",
        f"v3.{timestamp}.{signature[:-1]}",
        f"v3.{timestamp}.{base64.b64encode(base64.urlsafe_b64decode(signature + '=')).decode()}",
        f"v3.{timestamp}.{_non_canonical(signature)}",
        f"v3.{'٣' * len(timestamp)}.{signature}",  # Unicode digits
    ]


@pytest.mark.parametrize("proof", _proof_variants())
def test_only_the_exact_proof_format_is_accepted(proof: str) -> None:
    good = headers_for(ALICE)
    assert proof != good["X-Gateway-Proof"]
    with pytest.raises(InvalidProof):
        verifier().verify({**good, "X-Gateway-Proof": proof}, "GET", HOST, "/a?b=1")


def test_default_max_age_is_thirty_seconds() -> None:
    headers = headers_for(ALICE, at=NOW)
    assert verifier(now=NOW + 30).verify(headers, "GET", HOST, "/a?b=1") == ALICE
    with pytest.raises(InvalidProof, match="expired"):
        verifier(now=NOW + 31).verify(headers, "GET", HOST, "/a?b=1")


def test_default_clock_is_the_real_time() -> None:
    issued = int(time.time()) - 31
    with pytest.raises(InvalidProof, match="expired"):
        ProofVerifier(KEY).verify(headers_for(ALICE, at=issued), "GET", HOST, "/a?b=1")
    assert ProofVerifier(KEY).verify(headers_for(ALICE, at=int(time.time())), "GET", HOST, "/a?b=1") == ALICE
    assert ProofVerifier(KEY).verify(dict(ProofSigner(KEY).headers(ALICE, "GET", HOST, "/", HeaderNames())),
                                     "GET", HOST, "/") == ALICE


def test_proof_from_the_future_is_refused() -> None:
    with pytest.raises(InvalidProof, match="future"):
        verifier(now=NOW).verify(headers_for(ALICE, at=NOW + 5), "GET", HOST, "/a?b=1")


@pytest.mark.parametrize(("field", "value"), [("X-Gateway-User", "https://evil/"), ("X-Gateway-Email", "x@y"),
                                              ("X-Gateway-Nickname", "Zo%C3%AB "), ("X-Gateway-Proof", "1.2")])
def test_any_change_breaks_the_proof(field: str, value: str) -> None:
    headers = {**headers_for(ALICE), field: value}
    with pytest.raises(InvalidProof):
        verifier().verify(headers, "GET", HOST, "/a?b=1")


@pytest.mark.parametrize(("method", "uri"), [("POST", "/a?b=1"), ("GET", "/a?b=2"), ("GET", "/a"), ("GET", "/A?b=1")])
def test_proof_for_another_request_is_refused(method: str, uri: str) -> None:
    with pytest.raises(InvalidProof):
        verifier().verify(headers_for(ALICE), method, HOST, uri)


def test_identity_without_proof_is_refused_and_no_identity_is_anonymous() -> None:
    with pytest.raises(InvalidProof):
        verifier().verify({"X-Gateway-User": "https://op/id/x"}, "GET", HOST, "/")
    assert verifier().verify({}, "GET", HOST, "/") is None


def test_trailing_question_mark_is_signed_as_the_app_sees_it() -> None:
    assert verifier().verify(headers_for(ALICE, uri="/path?"), "GET", HOST, "/path") == ALICE


def test_invalid_proof_is_a_gateway_error_exported_from_the_package() -> None:
    assert issubclass(InvalidProof, GatewayError)
    assert ExportedInvalidProof is InvalidProof


@pytest.mark.parametrize(
    ("scope", "uri"),
    [
        ({"raw_path": b"/user/b%C3%B6b", "path": "/user/böb", "query_string": b""}, "/user/b%C3%B6b"),
        ({"raw_path": b"/a%2Fb", "path": "/a/b", "query_string": b"x=%2F&y"}, "/a%2Fb?x=%2F&y"),
        ({"path": "/user/böb", "query_string": b"q=1"}, "/user/b%C3%B6b?q=1"),
        ({"raw_path": b"/p", "path": "/p", "query_string": b""}, "/p"),
    ],
)
def test_request_uri_is_the_target_as_sent(scope: dict[str, object], uri: str) -> None:
    assert request_uri(scope) == uri


def test_apps_can_import_the_verifier_without_the_gateways_dependencies() -> None:
    """``import gateway.proof`` loads the standard library only: Python apps need nothing else."""
    code = ("import sys, gateway.proof; "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & {'starlette', 'itsdangerous', 'openid', "
            "'httpx', 'uvicorn', 'jinja2'})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.stdout.strip() == ""
