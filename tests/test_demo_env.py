"""``make demo`` takes the ``GATEWAY_*`` variables of its environment over its own settings, and
``INSTANCES``/``STORE`` to run several gateway instances on Redis; the README's demo commands work against it.

The demo's stack is built by the same function ``make demo`` uses
(:func:`devtools.demo.demo_stack`), with free ports instead of the fixed ones.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from devtools.demo import banner, demo_stack, parse_args, user_gateway_env
from devtools.stack import DEMO_PORTS, INSTANCE_HEADER, LOCAL_OIDC_NAME, PROJECT_ROOT, Ports

SITE_NAME = "Demo With My Own Name"


def test_the_demo_gateway_uses_the_gateway_settings_of_the_environment(tmp_path: Path) -> None:
    providers = [{"type": "oauth2", "preset": "github", "name": "My GitHub", "client_id": "id",
                  "client_secret": "a-secret-value"}]
    environ = {"GATEWAY_SITE_NAME": SITE_NAME, "GATEWAY_PROVIDERS": json.dumps(providers), "HOME": "/nowhere",
               "MICROBLOG_TITLE": "not a gateway setting"}
    with demo_stack("auth_request", Ports.free(), tmp_path / "demo", environ) as stack:
        page = httpx.get(stack.url + "/login", timeout=10)
        text = banner(stack)
    assert page.status_code == 200
    assert SITE_NAME in page.text
    assert "My GitHub" in page.text and LOCAL_OIDC_NAME not in page.text  # the person's providers, not the demo's
    assert "GATEWAY_PROVIDERS, GATEWAY_SITE_NAME" in text
    assert "a-secret-value" not in text  # the banner names the variables, never their values


def test_only_gateway_variables_are_taken() -> None:
    assert user_gateway_env({"GATEWAY_MODE": "proxy", "PATH": "/bin", "MICROBLOG_X": "1"}) == {"GATEWAY_MODE": "proxy"}


def test_the_banner_says_nothing_was_taken_when_nothing_was(tmp_path: Path) -> None:
    stack = demo_stack("proxy", Ports.free(), tmp_path / "demo", {"PATH": "/bin"})
    assert stack.gateway_env == {} and "Taken from your environment" not in banner(stack)


def test_the_demo_follows_a_route_prefix_in_the_environment(tmp_path: Path) -> None:
    """GATEWAY_ROUTE_PREFIX=/sso make demo: nginx's snippets and the microblog's links follow the gateway."""
    stack = demo_stack("auth_request", Ports.free(), tmp_path / "demo", {"GATEWAY_ROUTE_PREFIX": "/sso"})
    assert stack.route_prefix == "/sso" and stack.gateway_environ()["GATEWAY_ROUTE_PREFIX"] == "/sso"
    assert "(/sso/)" in banner(stack)


def make_demo_commands(*variables: str) -> str:
    """What ``make demo`` would run with these variables (``make -n``: printed, not run)."""
    make = shutil.which("make")
    assert make, "make is needed to run the demo"
    done = subprocess.run([make, "-n", "-C", str(PROJECT_ROOT), "demo", *variables], capture_output=True, text=True,
                          timeout=30, check=True)
    return done.stdout


def test_make_demo_passes_instances_store_and_mode_and_installs_redis_only_when_asked() -> None:
    scaled = make_demo_commands("INSTANCES=3", "STORE=redis", "MODE=proxy")
    assert "scripts/install-system-deps nginx redis-server" in scaled
    assert "-m devtools.demo --mode proxy --instances 3 --store redis" in scaled
    plain = make_demo_commands()
    assert "redis-server" not in plain
    assert "-m devtools.demo --mode auth_request --instances 1 --store sqlite" in plain


def test_demo_arguments() -> None:
    args = parse_args(["--instances", "3", "--store", "redis", "--mode", "proxy"])
    assert (args.instances, args.store, args.mode) == (3, "redis", "proxy")
    plain = parse_args([])
    assert (plain.instances, plain.store, plain.mode) == (1, "sqlite", "auth_request")


@pytest.mark.parametrize("argv", [["--instances", "0"], ["--instances", "two"], ["--instances", "-1"],
                                  ["--store", "memcached"]])
def test_demo_refuses_bad_arguments_with_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2 and "usage:" in capsys.readouterr().err


def test_the_plain_banner_says_nothing_of_instances(tmp_path: Path) -> None:
    text = banner(demo_stack("auth_request", Ports.free(), tmp_path / "demo", {}))
    assert "(mode auth_request)" in text and "instances" not in text and "redis" not in text


def test_the_scaled_out_demo_runs_its_instances_on_its_redis_and_says_so(tmp_path: Path) -> None:
    environ = {"GATEWAY_SITE_NAME": SITE_NAME}
    with demo_stack("proxy", Ports.free(), tmp_path / "demo", environ, instances=2, store="redis") as stack:
        assert stack.redis is not None
        with httpx.Client(timeout=10) as browser:  # one connection, so one nginx worker and its round robin
            answered = {stack.instance_of(browser.get(stack.url + "/login").headers[INSTANCE_HEADER])
                        for _ in range(2)}
            page = browser.get(stack.url + "/login")
        text = banner(stack)
    assert answered == {1, 2}  # round robin
    assert SITE_NAME in page.text  # the environment's settings reach every instance
    assert "(mode proxy, 2 gateway instances on Redis)" in text
    assert stack.instance_url(1) in text and stack.instance_url(2) in text and stack.redis.url in text
    assert (tmp_path / "demo" / "redis").is_dir()  # its append-only file beside the demo's other state


@pytest.mark.parametrize("mode", ["auth_request", "proxy"])
def test_the_readmes_bearer_token_commands_work_against_the_demo(tmp_path: Path, mode: str) -> None:
    """The README's "scripts with a token" block, run by bash as written (the demo's ports swapped for free ones)."""
    block = re.search(r"<!-- test: demo -->\n```sh\n(.*?)\n```", (PROJECT_ROOT / "README.md").read_text(), re.DOTALL)
    assert block, "README.md has no demo block"
    assert shutil.which("curl"), "curl is needed (make system-deps installs it)"
    ports = Ports.free()
    script = block.group(1)
    for demo_port, port in ((DEMO_PORTS.nginx, ports.nginx), (DEMO_PORTS.oidc, ports.oidc)):
        script = re.sub(rf"\b{demo_port}\b", str(port), script)
    with demo_stack(mode, ports, tmp_path / "demo", {}) as stack:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=30,
                              env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}, check=False)
        assert done.returncode == 0, done.stderr
        whoami = json.loads(done.stdout)
    assert whoami["nickname"] == "alice" and whoami["user"].startswith(stack.oidc_url + "#")
