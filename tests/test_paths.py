"""gateway.paths: every URL the gateway owns, once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.paths import DEFAULT, JWKS, Paths, prefix_problem

GATEWAY = Path(__file__).parents[1] / "gateway"


def test_the_gateway_pages_are_its_own_and_nothing_else_is() -> None:
    paths = DEFAULT
    for own in (paths.login, paths.logout, paths.callback, paths.account, paths.static + "/gateway.css",
                paths.auth, "/_gateway/anything"):
        assert paths.is_own(own), own
    for app_path in ("/", "/login/", "/logins", "/_gatewayx", "/app/login", "/Login"):
        assert not paths.is_own(app_path), app_path


def test_without_a_prefix_the_paths_are_the_seeds() -> None:
    assert (DEFAULT.login, DEFAULT.logout, DEFAULT.callback, DEFAULT.auth, DEFAULT.static) == (
        "/login", "/logout", "/_gateway/callback", "/_gateway/auth", "/_gateway/static")
    assert DEFAULT.post_logout == "/login?m=signed-out"


def test_a_route_prefix_moves_every_page_under_it_and_leaves_the_apps_login_alone() -> None:
    paths = Paths("/sso")
    assert (paths.login, paths.logout, paths.callback, paths.auth, paths.forbidden, paths.static) == (
        "/sso/login", "/sso/logout", "/sso/callback", "/sso/auth", "/sso/forbidden", "/sso/static")
    assert paths.post_logout == "/sso/login?m=signed-out"
    assert paths.login_url("/x", "signed-out") == "/sso/login?next=%2Fx&m=signed-out"
    for own in ("/sso/login", "/sso/logout", "/sso/anything"):
        assert paths.is_own(own), own
    for app_path in ("/login", "/logout", "/_gateway/callback", "/sso", "/ssox/login", "/SSO/login"):
        assert not paths.is_own(app_path), app_path


def test_the_jwks_stays_at_the_well_known_uri_whatever_the_prefix() -> None:
    assert Paths("/sso").jwks == DEFAULT.jwks == JWKS == "/.well-known/openid-gateway/jwks.json"


@pytest.mark.parametrize("prefix", ["sso", "/sso/", "/", "//sso", "/s so", "/.well-known", "/a/../b", "/sso?x",
                                    "/sso#", "/%2e"])
def test_a_route_prefix_that_is_not_a_plain_path_is_refused(prefix: str) -> None:
    assert prefix_problem(prefix) is not None
    with pytest.raises(ValueError, match="route_prefix"):
        Paths(prefix)


@pytest.mark.parametrize("prefix", ["", "/sso", "/_gateway", "/auth/sso", "/a-b_c~1.2"])
def test_a_plain_route_prefix_is_taken(prefix: str) -> None:
    assert prefix_problem(prefix) is None


def test_the_login_url_encodes_next_and_leaves_out_the_root() -> None:
    paths = DEFAULT
    assert paths.login_url("/") == "/login"
    assert paths.login_url("") == "/login"
    assert paths.login_url("/a b?c=d&e") == "/login?next=%2Fa+b%3Fc%3Dd%26e"
    assert paths.login_url("/", "signed-out") == "/login?m=signed-out"


def test_no_module_spells_a_gateway_path_of_its_own() -> None:
    """A path literal outside gateway/paths.py is a second place to change (docstrings may name them)."""
    literal = re.compile(r"""["'](/login|/logout|/_gateway/[\w/.-]*|/\.well-known/openid-gateway[\w/.-]*)["']""")
    offenders = []
    for module in GATEWAY.rglob("*.py"):
        if module.name == "paths.py":
            continue
        for number, line in enumerate(module.read_text().splitlines(), 1):
            if literal.search(line) and not line.lstrip().startswith(("#", '"""', "``", ":")):
                offenders.append(f"{module.relative_to(GATEWAY.parent)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_gateway_asks_the_configured_paths_never_the_default() -> None:
    """``DEFAULT`` is for tests and examples: a module of the gateway reading it would ignore route_prefix."""
    default = re.compile(r"gateway\.paths import .*\bDEFAULT\b|paths\.DEFAULT\b")
    offenders = [str(m.relative_to(GATEWAY.parent)) for m in GATEWAY.rglob("*.py")
                 if m.name != "paths.py" and default.search(m.read_text())]
    assert offenders == []


def test_no_template_spells_a_gateway_path_of_its_own() -> None:
    literal = re.compile(r"""(action|href|src)="/(login|logout|_gateway)""")
    templates = GATEWAY / "pages" / "templates"
    offenders = [f"{t.name}: {m.group(0)}" for t in templates.glob("*.html") for m in literal.finditer(t.read_text())]
    assert offenders == []
