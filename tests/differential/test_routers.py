"""The access rules against real routers: no spelling a router serves from a protected handler passes as public.

Four small apps (tests/differential/routers.py: Starlette, Flask/Werkzeug, Django's URL resolver,
Express in node) expose the same protected routes (``/admin``, ``/reports``, ``/Settings``,
``DELETE /posts/<id>``) and a public one, behind real nginx and the gateway in both modes. The
gateway's rules deny each protected route, in the ways an operator writes them (a path prefix, a
``path_regex``, a path with capitals, a method), and ``default_policy`` is ``public``. A corpus of
spellings (suffixes, slashes, case, encodings, ``;`` params, dot segments, the ambiguous-path
corpus of tests/spellings.py, combinations, method overrides) is sent to each app twice:
directly (which handler does the router pick?) and through nginx. A spelling that reaches a
protected handler through nginx was judged public by the gateway: there must be none.

The table (router x class: spellings tried, routed to a protected handler by the router itself,
reached through the gateway) is printed in the test output.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.stack import MODES, Stack
from tests.servers import Process, free_port
from tests.spellings import ADMIN_SPELLINGS
from tests.stack_fixtures import start_stack

pytestmark = pytest.mark.nginx

HERE = Path(__file__).parent
EXPRESS_DIR = HERE / "express"
ROUTERS = ("starlette", "flask", "django", "express")
RULES = [
    {"name": "public", "paths": ["/public"], "policy": "public"},
    {"name": "admin", "paths": ["/admin"], "policy": "deny"},
    {"name": "reports", "path_regex": "^/reports$", "policy": "deny"},
    {"name": "settings", "paths": ["/Settings"], "policy": "deny"},
    {"name": "posts-delete", "paths": ["/posts"], "methods": ["DELETE"], "policy": "deny"},
]
# (class, method, request target, headers)
Spelling = tuple[str, str, str, dict[str, str]]


def _encode_first(name: str, upper: bool = False) -> str:
    code = f"%{ord(name[0]):02x}"
    return (code.upper() if upper else code) + name[1:]


def corpus() -> list[Spelling]:
    """Every spelling of every protected route, by class; GET unless the class is about methods."""
    spellings: list[tuple[str, str]] = []
    for base in ("/admin", "/reports", "/Settings"):
        name = base[1:]
        variants = {
            "as written": [base],
            "suffix": [base + ".json", base + ".html", base + ".xml", base + ".tar.gz", base + ".json/"],
            "slash": [base + "/", base + "//", "/" + base, base + "/."],
            "case": [base.lower(), base.upper(), base[:2].upper() + base[2:].lower(), base.swapcase()],
            "encoding": ["/" + _encode_first(name), "/" + _encode_first(name, upper=True),
                         "/" + "".join(f"%{ord(c):02x}" for c in name), "/%25" + f"{ord(name[0]):02x}" + name[1:],
                         "/%2f" + name, base + "%2f", base + "%00"],
            "params": [base + ";x", base + ";jsessionid=1", base + ";", base + ";/"],
            "dots": ["/public/.." + base, "/./" + name, "/public/%2e%2e" + base, "/public/..%2f" + name,
                     "/public/..;" + base, "/public/..%5c" + name, base + ".", base + "%2e", "/public%2f..%2f" + name,
                     "/public/%252e%252e" + base],
            "combined": [base.upper() + ".json", base.lower() + "/", base.lower() + ".json",
                         "/public/..%2f" + name.upper(), base.upper() + ";x", "/%2fpublic/..%2f" + name.lower() + "/",
                         base + ";x.json", "/public/..%2f" + name + ".json"],
        }
        for kind, paths in variants.items():
            spellings += [(kind, path) for path in paths]
    spellings += [("corpus", path) for path in ADMIN_SPELLINGS if not any(c in path for c in " \t")]
    methods: list[Spelling] = [
        ("method", "DELETE", "/posts/1", {}),
        ("method", "POST", "/posts/1?_method=DELETE", {}),
        ("method", "POST", "/posts/1?_method=delete", {}),
        ("method", "POST", "/posts/1", {"X-HTTP-Method-Override": "DELETE"}),
    ]
    return [(kind, "GET", path, {}) for kind, path in spellings] + methods


CORPUS = corpus()


def send(client: httpx.Client, url: str, router: str, spelling: Spelling) -> httpx.Response:
    """One request with its target exactly as written (httpx would otherwise resolve dot segments)."""
    _, method, target, headers = spelling
    request = client.build_request(method, url + "/", headers={"Host": f"{router}.test", **headers})
    request.url = request.url.copy_with(raw_path=target.encode("ascii"))
    return client.send(request)


def protected(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.text.startswith("protected:")


@pytest.fixture(scope="module")
def express_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    node = shutil.which("node")
    assert node, "node is missing: apt-get install nodejs npm (make system-deps)"
    assert (EXPRESS_DIR / "node_modules" / "express").is_dir(), \
        "Express is not installed: make differential-deps (npm ci in tests/differential/express)"
    port = free_port()
    process = Process([node, str(EXPRESS_DIR / "app.js")], env={"PORT": str(port)}, cwd=EXPRESS_DIR,
                      log_path=tmp_path_factory.mktemp("express") / "express.log", name="express")
    process.start(wait_port=port)
    yield port
    process.stop()


@pytest.fixture(scope="module", params=MODES, name="stack")
def routers_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                  express_port: int) -> Iterator[Stack]:
    env = {"GATEWAY_RULES": json.dumps(RULES), "GATEWAY_DEFAULT_POLICY": "public"}
    yield from start_stack(tmp_path_factory, request.param, "tests.differential.routers:app", env,
                           public_paths=(), app_env={"DIFFERENTIAL_EXPRESS_PORT": str(express_port)})


def table(mode: str, counts: dict[tuple[str, str], list[int]]) -> str:
    kinds = list(dict.fromkeys(kind for kind, *_ in CORPUS))
    width = max(len(k) for k in kinds) + 2
    lines = [f"differential test, mode {mode}: tried / routed to a protected handler by the router itself / "
             "reached it through the gateway",
             "router".ljust(11) + "".join(kind.rjust(width + 2) for kind in kinds)]
    for router in ROUTERS:
        cells = ["/".join(str(n) for n in counts[router, kind]).rjust(width + 2) for kind in kinds]
        lines.append(router.ljust(11) + "".join(cells))
    return "\n".join(lines)


def test_no_spelling_reaches_a_protected_handler_under_a_public_decision(
        stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    reached: list[str] = []
    with httpx.Client(timeout=15) as client:
        for router in ROUTERS:
            for spelling in CORPUS:
                kind, method, target, headers = spelling
                direct = send(client, stack.app_url, router, spelling)
                assert direct.status_code != 421, direct.text
                through = send(client, stack.url, router, spelling)
                count = counts[router, kind]
                count[0] += 1
                count[1] += protected(direct)
                if protected(through):
                    count[2] += 1
                    reached.append(f"{router}: {method} {target} {headers or ''} -> {through.text}")
    with capsys.disabled():
        print("\n" + table(stack.mode, counts))
    for router in ROUTERS:  # the corpus means something: every router serves the routes as written
        assert counts[router, "as written"][1] == 3, (router, counts[router, "as written"])
    assert sum(counts["express", kind][1] for kind in ("case", "slash", "method")) > 0  # Express folds case
    assert reached == [], "\n".join(reached) + "\n" + stack.logs(10)
