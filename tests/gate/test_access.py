"""The access decision (gateway.gate.access): rules, subjects, and paths that try to slip past a rule."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.gate.access import (
    AccessPolicy,
    Person,
    Readings,
    RuleError,
    parse_groups,
    parse_rule,
    parse_subject,
    path_readings,
)
from tests.spellings import ADMIN_SPELLINGS

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

# ADMIN_SPELLINGS (tests/spellings.py): each is read by some app or framework as /admin...


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
    assert all("?" not in reading for reading in path_readings("/x").every)
    assert DEMO.decide(person(), "GET", "app.example", "/about").outcome == "allow"


@pytest.mark.parametrize("path", ["/", "/posts/1", "/User/Alice", "/x:y@z", "/.well-known/x"])
def test_plain_paths_read_one_way(path: str) -> None:
    assert path_readings(path) == Readings((path,))


@pytest.mark.parametrize(("path", "derived"), [
    ("/admin.json", ("/admin",)),
    ("/a-b_c~d/e.f", ("/a-b_c~d/e",)),
    ("/files/report.tar.gz", ("/files/report", "/files/report.tar")),
    ("/admin/", ("/admin",)),
    ("/static/..%2fadmin.json", ("/static/..%2fadmin", "/static/../admin", "/admin")),
])
def test_routers_also_read_a_path_without_its_format_suffix_or_trailing_slash(path: str,
                                                                                derived: tuple[str, ...]) -> None:
    readings = path_readings(path)
    assert set(derived) <= set(readings.derived), readings
    assert not set(readings.paths) & set(readings.derived)


# --- What routers serve for one route (issue 26) ----------------------------------------------

ROUTES = policy(
    {"name": "about", "paths": ["/about"], "policy": "public"},
    {"name": "robots", "paths": ["/robots.txt"], "policy": "public"},
    {"name": "admin", "paths": ["/admin"], "policy": "deny"},
    {"name": "reports", "path_regex": "^/reports$", "policy": "deny"},
    {"name": "settings", "paths": ["/Settings"], "policy": "deny"},
    {"name": "no-deletes", "methods": ["DELETE", "PUT"], "policy": "deny"},
    default="public",
)


@pytest.mark.parametrize("path", [
    # Rails' (.:format), Spring's suffix patterns
    "/admin.json", "/admin.html", "/admin.tar.gz", "/ADMIN.JSON", "/about/..%2fadmin.json",
    # the trailing slash Express and Rails ignore, against a path_regex
    "/reports/", "/reports.csv", "/REPORTS/",
    # a rule written with capitals, against case-insensitive apps
    "/settings", "/SETTINGS", "/settings/profile", "/sEttings.json",
    # ambiguous spellings in upper case: the lower-case reading counts
    "/ADMIN;x", "/static/..%2fADMIN", "/about/..%2FADMIN",
])
def test_every_route_spelling_is_judged_by_the_routes_rule(path: str) -> None:
    assert ROUTES.decide(None, "GET", "app.example", path).outcome == "forbidden", path_readings(path)


@pytest.mark.parametrize(("path", "rule"), [
    ("/robots.txt", "robots"), ("/about.html", "default_policy"), ("/about", "about"), ("/reportsx", "default_policy"),
    ("/style.css", "default_policy"), ("/report/", "default_policy"),
])
def test_a_derived_reading_counts_only_where_a_rule_names_it(path: str, rule: str) -> None:
    decision = ROUTES.decide(None, "GET", "app.example", path)
    assert (decision.outcome, decision.rule, decision.public) == ("allow", rule, True)


def test_a_regex_rule_ignores_case_for_the_folded_reading_only() -> None:
    rules = policy({"name": "open", "path_regex": "^/Docs$", "policy": "public"}, default="deny")
    assert rules.decide(None, "GET", "h", "/Docs").outcome == "allow"
    assert rules.decide(None, "GET", "h", "/docs").outcome == "forbidden"  # as written, /docs is no rule's: deny
    strict = policy({"name": "closed", "path_regex": "^/Docs$", "policy": "deny"}, default="public")
    assert strict.decide(None, "GET", "h", "/docs").outcome == "forbidden"
    assert strict.decide(None, "GET", "h", "/DOCS").outcome == "forbidden"
    assert strict.decide(None, "GET", "h", "/docsx").outcome == "allow"


@pytest.mark.parametrize("method", ["POST", "post"])
def test_a_post_is_also_judged_as_every_method_an_override_could_make_it(method: str) -> None:
    decision = ROUTES.decide(Person(ALICE), method, "app.example", "/posts/1")
    assert (decision.outcome, decision.rule) == ("forbidden", "no-deletes")
    assert ROUTES.decide(Person(ALICE), "GET", "app.example", "/posts/1").outcome == "allow"


def test_a_post_is_judged_as_a_method_no_rule_names_too() -> None:
    webhook = policy({"name": "hook", "methods": ["POST"], "policy": "public"}, default="deny")
    assert webhook.methods_judged("POST") == ("POST", "_OTHER")
    assert webhook.decide(None, "POST", "h", "/hook").outcome == "forbidden"


def test_without_method_override_a_post_is_a_post() -> None:
    rules = (parse_rule(0, {"name": "no-deletes", "methods": ["DELETE"], "policy": "deny"}),)
    assert AccessPolicy(rules, "public", method_override=False).decide(None, "POST", "h", "/x").outcome == "allow"
    assert AccessPolicy(rules, "public").decide(None, "POST", "h", "/x").outcome == "forbidden"
    assert AccessPolicy((), "public").methods_judged("POST") == ("POST",)  # no rule names a method


@pytest.mark.parametrize("host", ["admin.example.com", "Admin.Example.com", "admin.example.com.",
                                  "admin.example.com.:443", "ADMIN.EXAMPLE.COM.:8080"])
def test_a_host_rule_holds_for_every_spelling_of_the_host(host: str) -> None:
    rules = policy({"name": "admin-site", "hosts": ["admin.example.com"], "policy": "deny"}, default="public")
    assert rules.decide(None, "GET", host, "/").outcome == "forbidden"


def test_a_bearer_token_is_taken_only_where_every_reading_of_the_path_falls_under_a_bearer_rule() -> None:
    api = policy({"name": "api", "paths": ["/api"], "policy": "signed_in", "bearer": True},
                 {"name": "admin", "paths": ["/admin"], "policy": "signed_in"})
    assert api.accepts_bearer("GET", "h", "/api/items") and api.accepts_bearer("get", "h", "/api")
    assert not api.accepts_bearer("GET", "h", "/admin") and not api.accepts_bearer("GET", "h", "/other")
    assert not api.accepts_bearer("GET", "h", "/api/../admin")  # one reading is /admin: the cookie decides there
    assert api.accepts_bearer("GET", "h", "/v1/x", api_paths=("/v1/",))
    assert not api.accepts_bearer("GET", "h", "/v1/..%2fadmin", api_paths=("/v1/",))
