"""``openid-gateway check-access`` and ``check-config``'s access line, run as an operator runs them."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_main import KEYS, config, run

RULES = KEYS + '''public_paths = ["/static/"]
[[rules]]
name = "admin-area"
paths = ["/admin"]
policy = "allow"
subjects = ["group:admins", "domain:.example.org"]

[[rules]]
name = "payments"
paths = ["/pay"]
policy = "signed_in"
max_age = 300
acr_values = ["urn:example:mfa"]

[[rules]]
name = "no-deletes"
methods = ["DELETE"]
policy = "deny"

[groups]
admins = ["https://id.example/admin"]
'''


def check_access(tmp_path: Path, *args: str) -> list[str]:
    result = run("check-access", "--config", config(tmp_path, RULES), *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_check_access_names_the_rule_that_decided(tmp_path: Path) -> None:
    lines = check_access(tmp_path, "--user", "https://id.example/alice", "--path", "/admin/users")
    assert lines[:2] == ["decision: forbidden (403)", "rule:     admin-area"]
    lines = check_access(tmp_path, "--user", "https://id.example/admin", "--path", "/admin/users?tab=1")
    assert lines[:2] == ["decision: allow", "rule:     admin-area"]
    assert "groups: admins" in lines[2] and lines[3] == "request:  GET a.example /admin/users"


def test_check_access_explains_anonymous_public_and_method_rules(tmp_path: Path) -> None:
    assert check_access(tmp_path, "--path", "/posts")[:3] == [
        "decision: sign in first", "rule:     default_policy", "person:   anonymous"]
    assert check_access(tmp_path, "--path", "/static/app.css")[:2] == [
        "decision: public (no identity passed)", "rule:     public_paths[0]"]
    assert check_access(tmp_path, "--user", "https://id.example/admin", "--method", "delete",
                        "--path", "/posts/1")[:2] == ["decision: forbidden (403)", "rule:     no-deletes"]


def test_check_access_counts_an_email_only_as_given(tmp_path: Path) -> None:
    assert check_access(tmp_path, "--user", "https://id.example/bob", "--email", "bob@sub.example.org",
                        "--path", "/admin")[0] == "decision: allow"


def test_check_access_shows_every_reading_of_an_ambiguous_path(tmp_path: Path) -> None:
    lines = check_access(tmp_path, "--user", "https://id.example/alice", "--path", "/static/..%2fadmin")
    assert lines[:2] == ["decision: forbidden (403)", "rule:     admin-area"]
    assert lines[-1].strip().startswith("judged as each of:") and "/admin" in lines[-1]


def test_check_config_says_what_decides_the_paths_no_rule_matches(tmp_path: Path) -> None:
    result = run("check-config", "--config", config(tmp_path, RULES))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == (
        "openid-gateway: access: 3 rule(s) (+1 public_paths); default_policy = 'signed_in':"
        " anyone signed in may reach every other path")


def test_a_bad_rule_is_one_line_naming_it(tmp_path: Path) -> None:
    result = run("check-config", "--config", config(tmp_path, KEYS + '[[rules]]\nname = "x"\npolicy = "alow"\n'))
    assert result.returncode == 2
    assert result.stderr.strip() == ("openid-gateway: invalid configuration: rules[0] (x): policy must be one of"
                                     " public, signed_in, allow, deny, got 'alow'")


def test_check_access_explains_a_step_up_and_what_meets_it(tmp_path: Path) -> None:
    alice = ("--user", "https://id.example/alice", "--path", "/pay/now")
    lines = check_access(tmp_path, *alice, "--auth-age", "600", "--acr", "urn:example:mfa")
    assert lines[:3] == ["decision: step up: a more recent or stronger sign-in first (401)", "rule:     payments",
                         "step-up:  asks max_age 300s, acr_values urn:example:mfa; authenticated 600s ago, more than "
                         "max_age 300s"]
    assert "sign-in:  600s ago, acr urn:example:mfa" in lines
    lines = check_access(tmp_path, *alice, "--auth-age", "60")
    assert lines[2] == "step-up:  asks max_age 300s, acr_values urn:example:mfa; acr '(none)' is not one of " \
                       "urn:example:mfa"
    assert check_access(tmp_path, *alice, "--auth-age", "60", "--acr", "urn:example:mfa")[:2] == [
        "decision: allow", "rule:     payments"]
    assert check_access(tmp_path, "--path", "/pay")[0] == "decision: sign in first"


def test_a_bad_step_up_rule_is_one_line_naming_it(tmp_path: Path) -> None:
    rule = KEYS + '[[rules]]\nname = "pay"\npaths = ["/pay"]\npolicy = "signed_in"\nmax_age = "5m"\n'
    result = run("check-config", "--config", config(tmp_path, rule))
    assert result.returncode == 2
    assert result.stderr.strip() == ("openid-gateway: invalid configuration: rules[0] (pay): max_age must be a"
                                     " positive whole number of seconds, got '5m'")
