"""The access decision (gateway.gate.access): rules, subjects, and paths that try to slip past a rule."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.gate.access import AccessPolicy, Person, RuleError, parse_groups, parse_rule, parse_subject, path_readings

ALICE = "https://openid.example/alice"
ADMIN = "https://openid.example/admin"


def policy(*rules: dict[str, Any], default: str = "signed_in", groups: dict[str, list[str]] | None = None
           ) -> AccessPolicy:
    return AccessPolicy(tuple(parse_rule(i, r) for i, r in enumerate(rules)), default,  # type: ignore[arg-type]
                        parse_groups(groups or {}))


DEMO = policy(
    {"name": "about", "paths": ["/about"], "policy": "public"},
    {"name": "static", "paths": ["/static/"], "policy": "public"},
    {"name": "admin", "paths": ["/admin"], "policy": "allow", "subjects": ["group:admins"]},
    {"name": "no-deletes", "paths": ["/api/"], "methods": ["DELETE"], "policy": "deny"},
    {"name": "staff-host", "hosts": ["*.staff.example"], "policy": "allow", "subjects": ["domain:.example.org"]},
    groups={"admins": [ADMIN, "Boss@Example.org"]},
)


def person(user_id: str = ALICE, email: str = "", provider: str = "") -> Person:
    return DEMO.person(user_id, email, provider)


@pytest.mark.parametrize(
    ("who", "method", "host", "path", "outcome", "rule"),
    [
        (None, "GET", "app.example", "/", "sign_in", "default_policy"),
        ("alice", "GET", "app.example", "/", "allow", "default_policy"),
        (None, "GET", "app.example", "/about", "allow", "about"),
        (None, "GET", "app.example", "/static/app.css", "allow", "static"),
        (None, "GET", "app.example", "/static", "allow", "static"),
        (None, "GET", "app.example", "/aboutus", "sign_in", "default_policy"),
        (None, "GET", "app.example", "/admin", "sign_in", "admin"),
        ("alice", "GET", "app.example", "/admin", "forbidden", "admin"),
        ("alice", "GET", "app.example", "/admin/users", "forbidden", "admin"),
        ("alice", "GET", "app.example", "/administrator", "allow", "default_policy"),
        ("admin", "GET", "app.example", "/admin/users", "allow", "admin"),
        ("boss", "GET", "app.example", "/admin", "allow", "admin"),
        ("alice", "GET", "app.example", "/api/posts/1", "allow", "default_policy"),
        ("alice", "DELETE", "app.example", "/api/posts/1", "forbidden", "no-deletes"),
        ("admin", "delete", "app.example", "/api/posts/1", "forbidden", "no-deletes"),
        (None, "DELETE", "app.example", "/api/posts/1", "forbidden", "no-deletes"),
        ("alice", "GET", "a.staff.example", "/", "forbidden", "staff-host"),
        ("boss", "GET", "a.staff.example:8443", "/", "allow", "staff-host"),
        ("boss", "GET", "staff.example", "/", "allow", "default_policy"),
    ],
)
def test_first_matching_rule_decides(who: str | None, method: str, host: str, path: str, outcome: str,
                                     rule: str) -> None:
    people = {"alice": person(), "admin": person(ADMIN), "boss": person("https://o.example/b", "boss@example.org")}
    decision = DEMO.decide(people[who] if who else None, method, host, path)
    assert (decision.outcome, decision.rule) == (outcome, rule)


def test_public_paths_withhold_the_identity_even_from_signed_in_people() -> None:
    assert DEMO.decide(person(), "GET", "app.example", "/about").public
    assert not DEMO.decide(person(), "GET", "app.example", "/").public


def test_without_rules_a_session_is_all_it_takes() -> None:
    empty = AccessPolicy()
    assert empty.trivial
    assert empty.decide(None, "GET", "h", "/admin").outcome == "sign_in"
    assert empty.decide(Person(ALICE), "GET", "h", "/admin").outcome == "allow"


def test_default_policy_decides_what_no_rule_matches() -> None:
    closed = policy({"paths": ["/"], "methods": ["GET"], "policy": "public"}, default="deny")
    assert closed.decide(None, "GET", "h", "/x").outcome == "allow"
    assert closed.decide(Person(ALICE), "POST", "h", "/x").outcome == "forbidden"


# --- Subjects -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "who", "matches"),
    [
        ("user:" + ALICE, Person(ALICE), True),
        ("user:" + ALICE, Person(ALICE + "x"), False),
        ("user:" + ALICE.upper(), Person(ALICE), False),
        ("email:alice@example.org", Person(ALICE, "Alice@Example.org"), True),
        ("email:alice@example.org", Person(ALICE, ""), False),
        ("email:alice@example.org", Person(ALICE, "alice@example.org.evil"), False),
        ("domain:example.org", Person(ALICE, "a@example.org"), True),
        ("domain:example.org", Person(ALICE, "a@sub.example.org"), False),
        ("domain:example.org", Person(ALICE, "a@evilexample.org"), False),
        ("domain:.example.org", Person(ALICE, "a@sub.example.org"), True),
        ("domain:.example.org", Person(ALICE, "a@example.org"), True),
        ("domain:.example.org", Person(ALICE, "a@evilexample.org"), False),
        ("domain:example.org", Person(ALICE, "example.org"), False),
        ("group:admins", Person(ALICE, groups=frozenset({"admins"})), True),
        ("group:admins", Person(ALICE, groups=frozenset({"admins2"})), False),
        ("provider:steam", Person(ALICE, provider="Steam"), True),
        ("provider:steam", Person(ALICE), False),
    ],
)
def test_subjects(subject: str, who: Person, matches: bool) -> None:
    assert parse_subject(subject).matches(who) is matches


def test_groups_come_from_the_table_by_identifier_or_vouched_email() -> None:
    groups = policy(groups={"admins": [ADMIN, "Boss@Example.org"], "ops": ["ops@example.org"]})
    assert groups.person(ADMIN).groups == {"admins"}
    assert groups.person("https://o.example/b", "boss@example.org").groups == {"admins"}
    assert groups.person("https://o.example/b").groups == frozenset()  # no vouched e-mail, no group
    assert groups.person("ops@example.org").groups == frozenset()  # an identifier is never an e-mail claim


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"policy": "maybe"}, "policy must be one of"),
        ({"policy": "allow"}, "needs subjects"),
        ({"policy": "public", "subjects": ["group:x"]}, "subjects only apply"),
        ({"policy": "allow", "subjects": ["admins"]}, "subject 'admins' must be one of"),
        ({"policy": "allow", "subjects": ["email:nobody"]}, "needs an @"),
        ({"policy": "deny", "paths": ["admin"]}, "plain path prefix"),
        ({"policy": "deny", "paths": ["/admin?x=1"]}, "plain path prefix"),
        ({"policy": "deny", "paths": ["/a/../b"]}, "plain path prefix"),
        ({"policy": "deny", "path_regex": "("}, "is not a regular expression"),
        ({"policy": "deny", "hosts": ["http://x"]}, "must be a name"),
        ({"policy": "deny", "methods": ["get it"]}, "is not an HTTP method"),
        ({"policy": "deny", "paths": "/admin"}, "paths must be a list of strings"),
        ({"policy": "deny", "path": ["/admin"]}, "unknown key(s) path"),
        ({"policy": "signed_in", "bearer": "yes"}, "bearer must be true or false"),
        ({"policy": "public", "bearer": True}, "means nothing"),
    ],
)
def test_bad_rules_are_refused_with_their_name(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError, match="rules\\[3\\]") as refused:
        parse_rule(3, rule)
    assert message in str(refused.value)


# --- Spellings of a stricter path -----------------------------------------------------------

# Each spelling is read by some app or framework as /admin... (or is one character
# away from it); none may be judged by a looser rule than /admin's.
ADMIN_SPELLINGS = [
    "/admin", "/admin/", "/admin/users", "/ADMIN", "/Admin/users", "/admin%2f", "/admin%2Fusers", "/admin;x",
    "/admin;jsessionid=1/users", "/admin.", "/admin./users", "/admin%20", "/admin%09", "/admin ", "/admin\t",
    "//admin", "///admin/users", "/./admin", "/static/../admin", "/static/%2e%2e/admin", "/static/%2E%2E/admin",
    "/static/..%2fadmin", "/static/..%2Fadmin", "/static/%2e%2e%2fadmin", "/static/..;/admin",
    "/static/%252e%252e/admin", "/static\\..\\admin", "/static/..\\admin", "/about/../admin", "/about/..;/admin",
    "/static//../admin", "/%61dmin", "/static/%2e%2e/%61dmin/users", "/about%2f..%2fadmin",
]


@pytest.mark.parametrize("path", ADMIN_SPELLINGS)
def test_no_spelling_of_admin_gets_past_the_admin_rule(path: str) -> None:
    assert DEMO.decide(None, "GET", "app.example", path).outcome == "sign_in"
    assert DEMO.decide(person(), "GET", "app.example", path).outcome == "forbidden"
    assert DEMO.decide(person(ADMIN), "GET", "app.example", path).outcome == "allow"


@pytest.mark.parametrize("path", ["/static/../secret", "/about/..%2fsecret", "/static/%2e%2e/x", "/about;/../x"])
def test_no_spelling_of_a_protected_path_is_public(path: str) -> None:
    decision = DEMO.decide(None, "GET", "app.example", path)
    assert decision.outcome == "sign_in"
    assert not decision.public


def test_the_query_string_never_matches() -> None:
    # The caller passes the path alone; a rule never sees "?", so "/x?/admin" is /x.
    assert all("?" not in reading for reading in path_readings("/x"))
    assert DEMO.decide(person(), "GET", "app.example", "/about").outcome == "allow"


@pytest.mark.parametrize("path", ["/", "/posts/1", "/user/alice", "/a-b_c~d/e.f", "/x:y@z"])
def test_plain_paths_read_one_way(path: str) -> None:
    assert path_readings(path) == (path,)


def test_a_path_with_capitals_also_reads_in_lower_case() -> None:
    assert path_readings("/User/Alice") == ("/User/Alice", "/user/alice")


def test_a_bearer_token_is_taken_only_where_every_reading_of_the_path_falls_under_a_bearer_rule() -> None:
    api = policy({"name": "api", "paths": ["/api"], "policy": "signed_in", "bearer": True},
                 {"name": "admin", "paths": ["/admin"], "policy": "signed_in"})
    assert api.accepts_bearer("GET", "h", "/api/items") and api.accepts_bearer("get", "h", "/api")
    assert not api.accepts_bearer("GET", "h", "/admin") and not api.accepts_bearer("GET", "h", "/other")
    assert not api.accepts_bearer("GET", "h", "/api/../admin")  # one reading is /admin: the cookie decides there
    assert api.accepts_bearer("GET", "h", "/v1/x", api_paths=("/v1/",))
    assert not api.accepts_bearer("GET", "h", "/v1/..%2fadmin", api_paths=("/v1/",))
