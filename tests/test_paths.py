"""gateway.paths: every URL the gateway owns, once."""

from __future__ import annotations

import re
from pathlib import Path

from gateway import paths

GATEWAY = Path(__file__).parents[1] / "gateway"


def test_the_gateway_pages_are_its_own_and_nothing_else_is() -> None:
    for own in (paths.LOGIN, paths.LOGOUT, paths.CALLBACK, paths.ACCOUNT, paths.STATIC + "/gateway.css",
                paths.AUTH, "/_gateway/anything"):
        assert paths.is_own(own), own
    for app_path in ("/", "/login/", "/logins", "/_gatewayx", "/app/login", "/Login"):
        assert not paths.is_own(app_path), app_path


def test_the_login_url_encodes_next_and_leaves_out_the_root() -> None:
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


def test_no_template_spells_a_gateway_path_of_its_own() -> None:
    literal = re.compile(r"""(action|href|src)="/(login|logout|_gateway)""")
    templates = GATEWAY / "pages" / "templates"
    offenders = [f"{t.name}: {m.group(0)}" for t in templates.glob("*.html") for m in literal.finditer(t.read_text())]
    assert offenders == []
