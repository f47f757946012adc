"""The README's "In front of your app in 15 minutes", run as written: its shell blocks, through real nginx.

Each block marked ``<!-- test: deploy -->`` runs to completion and must succeed; each marked
``<!-- test: deploy background -->`` is a server left running (the provider, the app, the gateway,
nginx). Only what cannot be the same on a shared test machine changes: the ports (free ones instead of
8080, 9000, 8000, 8002), the directory (a temporary one instead of /tmp/gw-oidc), ``.venv/bin/`` (this
interpreter's), ``nginx`` (found in sbin), and the gateway's port, which the page leaves at its default
(9000) and the test gives in ``GATEWAY_PORT``. Then a browser-like client signs in at the local OpenID
Connect provider and reaches the app with the identity the page describes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devtools.processes import Process, free_port
from devtools.stack import PROJECT_ROOT, find_nginx
from tests.devtools.oidc_relying_party import decide
from tests.htmlforms import forms, submit

pytestmark = pytest.mark.nginx

README = PROJECT_ROOT / "README.md"
BLOCK = re.compile(r"<!-- test: deploy( background)? -->\n```sh\n(.*?)\n```", re.DOTALL)
DOCS_PORTS = {"nginx": 8080, "gateway": 9000, "app": 8000, "oidc": 8002}
DOCS_DIR = "/tmp/gw-oidc"


@dataclass
class Block:
    background: bool
    text: str

    @property
    def server(self) -> str:
        """Which of the servers a background block starts (the port it must come to listen on)."""
        for marker, name in (("oidc_provider", "oidc"), ("uvicorn", "app"), (" serve ", "gateway"), ("nginx", "nginx")):
            if marker in self.text:
                return name
        raise AssertionError(f"a background block that starts no known server: {self.text}")


def readme_blocks() -> list[Block]:
    return [Block(bool(m.group(1)), m.group(2)) for m in BLOCK.finditer(README.read_text())]


def localised(text: str, ports: dict[str, int], directory: Path) -> str:
    """The block with this run's ports, directory, virtualenv and nginx."""
    for name, port in DOCS_PORTS.items():
        text = re.sub(rf"\b{port}\b", str(ports[name]), text)
    text = text.replace(DOCS_DIR, str(directory)).replace(".venv/bin/", str(Path(sys.executable).parent) + "/")
    return re.sub(r"(?m)^nginx ", find_nginx() + " ", text)


@dataclass
class Walked:
    ports: dict[str, int]
    outputs: list[str]
    servers: dict[str, Process]


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walked]:
    directory = tmp_path_factory.mktemp("gw-oidc")
    ports = {name: free_port() for name in DOCS_PORTS}
    outputs: list[str] = []
    servers: dict[str, Process] = {}
    try:
        for block in readme_blocks():
            script = localised(block.text, ports, directory)
            if block.background:
                name = block.server
                servers[name] = Process(["bash", "-c", script], cwd=PROJECT_ROOT, name=name,
                                        env={"GATEWAY_PORT": str(ports["gateway"])},
                                        log_path=directory / f"{name}.log").start()
            else:
                done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=PROJECT_ROOT, text=True,
                                      capture_output=True, timeout=60)
                assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"
                outputs.append(done.stdout + done.stderr)
        for name, process in servers.items():
            process.wait_for_port(ports[name], timeout=30)
        yield Walked(ports, outputs, servers)
    finally:
        for process in servers.values():
            process.stop()


def test_the_readme_marks_the_deployment_steps_it_runs() -> None:
    blocks = readme_blocks()
    assert sum(b.background for b in blocks) == 4 and sum(not b.background for b in blocks) == 2
    assert {b.server for b in blocks if b.background} == set(DOCS_PORTS)


def test_check_config_prints_the_addresses_the_readme_says_to_register(walked: Walked) -> None:
    origin = f"http://127.0.0.1:{walked.ports['nginx']}"
    printed = walked.outputs[0]
    for address in (f"{origin}/_gateway/callback", f"{origin}/_gateway/backchannel-logout"):
        assert address in printed, printed
    assert "/login?m=signed-out" not in printed  # printed only with logout_at_provider, as the README says
    readme = README.read_text()
    for path in ("/_gateway/callback", "/_gateway/backchannel-logout", "/login?m=signed-out"):
        assert f"`<public_url>{path}`" in readme


def test_a_person_signs_in_at_the_provider_and_the_app_gets_the_identity(walked: Walked) -> None:
    site, issuer = f"http://127.0.0.1:{walked.ports['nginx']}", f"http://127.0.0.1:{walked.ports['oidc']}"
    with httpx.Client(timeout=15) as anonymous:
        refused = anonymous.get(site + "/echo")
        assert refused.status_code == 302 and refused.headers["location"].startswith("/login?next=")
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        page = browser.get(site + "/echo")
        assert page.url.path == "/login" and "Local OpenID Connect" in page.text, page.text
        buttons = [button for form in forms(page.text) for button in form.buttons]
        assert ("provider", issuer) in buttons, buttons  # the one provider of the README's configuration
        consent = submit(browser, page, button=("provider", issuer))
        assert consent.url.port == walked.ports["oidc"], consent.url
        final = decide(browser, consent)
        assert final.url.path == "/echo", (final.url, final.text[:500])
        headers = dict((k.lower(), v) for k, v in final.json()["headers"])
        assert headers["x-gateway-user"].startswith(issuer + "#")
        assert headers["x-gateway-nickname"] == "alice" and headers["x-gateway-proof"].startswith("v3.")


def test_the_readmes_ssh_tunnel_forwards_every_port_the_demos_browser_visits() -> None:
    """The demo's nginx and its two providers: a browser signing in on a remote demo visits all three."""
    from devtools.stack import DEMO_PORTS

    tunnel = next(line for line in README.read_text().splitlines() if line.startswith("ssh -N "))
    for port in (DEMO_PORTS.nginx, DEMO_PORTS.provider, DEMO_PORTS.oidc):
        assert f"-L {port}:127.0.0.1:{port}" in tunnel, tunnel
    assert "make demo" in README.read_text().split("## Install", 1)[0]  # the demo comes first


def test_the_development_page_names_every_debian_package_make_test_installs() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text().replace("\\\n", " ")  # continuation lines joined
    packages = re.search(r"^system-deps:\n\t@scripts/install-system-deps (.*)$", makefile, re.MULTILINE)
    assert packages is not None
    line = next(line for line in (PROJECT_ROOT / "docs" / "development.md").read_text().splitlines()
                if line.startswith("make test "))
    listed = set(re.search(r"apt: ([^;]*);", line).group(1).split(", "))  # type: ignore[union-attr]
    assert listed == set(packages.group(1).split()), line


def test_the_readme_links_every_docs_page() -> None:
    readme = README.read_text()
    for page in sorted((PROJECT_ROOT / "docs").glob("*.md")):
        assert f"](docs/{page.name})" in readme, f"README.md does not link docs/{page.name}"
