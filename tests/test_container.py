"""The container image (Containerfile), built with podman from this tree and run behind the project's nginx.

The build is ``scripts/build-image``'s (devtools/image.py): a base image made from Debian's packages
(kept between runs), the locked wheels downloaded on the host, no network during ``podman build``.
The stack's gateway runs in the image (devtools.image.ContainerLauncher: host network, settings as
``GATEWAY_*`` variables passed by name, a host directory as its state volume) with the local OpenID
Connect provider, the echo app and nginx around it on the host.

A missing podman (or mmdebstrap, runc) is an error, never a skip: ``make system-deps`` installs them.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.image import (
    GATEWAY_UID,
    LIMITS,
    LOCAL_BASE,
    PODMAN,
    PORT,
    ContainerLauncher,
    build_image,
    image_size,
    make_base_image,
    make_context,
    podman,
)
from devtools.stack import Stack
from tests.conftest import KEYS_IN_USE
from tests.htmlforms import submit
from tests.servers import free_port, wait_for_port
from tests.stack_fixtures import ECHO_APP, start_stack
from tests.test_oidc_stack import identity, oidc_sign_in

pytestmark = [pytest.mark.nginx, pytest.mark.timeout(900)]  # the first build takes minutes, later ones seconds

TAG = "localhost/openid-gateway:test"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The image, built from this tree (the base image is made once and kept)."""
    make_base_image()
    context = make_context(tmp_path_factory.mktemp("image-context"), LOCAL_BASE)
    build_image(context, TAG)
    print(f"{TAG}: {image_size(TAG) / 2**20:.1f} MiB")
    return TAG


@pytest.fixture(scope="module")
def container_stack(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, ContainerLauncher]]:
    """nginx (mode 1), the echo app and the local providers on the host; the gateway in the image."""
    # Container names of this run's own: --replace must never take another run's container.
    launcher = ContainerLauncher(image, tmp_path_factory.mktemp("gateway-volume"),
                                 prefix=f"openid-gateway-test-{secrets.token_hex(4)}")
    try:
        for stack in start_stack(tmp_path_factory, "auth_request", ECHO_APP, gateway_launcher=launcher):
            yield stack, launcher
    finally:
        launcher.remove("gateway")


def test_remember_me_outlives_the_container_its_state_volume_survives(
        container_stack: tuple[Stack, ContainerLauncher]) -> None:
    stack, launcher = container_stack
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        oidc_sign_in(browser, stack, "/echo/", remember=True)
        user = identity(browser, stack)[0]
        assert user.startswith(stack.oidc_url + "#")
        remember = next(c for c in browser.cookies.jar if c.name == "gw_remember")
        assert (launcher.state / "gateway.sqlite3").is_file(), sorted(launcher.state.iterdir())

        before = podman("inspect", "--format", "{{.Id}}", launcher.container("gateway")).stdout
        stack.restart_gateway()  # a new container of the image, the same volume
        assert podman("inspect", "--format", "{{.Id}}", launcher.container("gateway")).stdout != before

        assert identity(browser, stack)[0] == user, stack.logs()  # the session cookie, from the volume's store
    with httpx.Client(follow_redirects=True, timeout=15) as restarted:  # a browser restart: remember-me only
        restarted.cookies.set(remember.name, remember.value or "")
        assert identity(restarted, stack)[0] == user, stack.logs()


def test_the_gateway_runs_as_the_images_own_user_with_no_pip_on_a_read_only_root_and_passes_its_healthcheck(
        container_stack: tuple[Stack, ContainerLauncher]) -> None:
    stack, launcher = container_stack
    name = launcher.container("gateway")
    status = podman("exec", name, "cat", "/proc/1/status").stdout
    ids = {line.split(":")[0]: line.split()[1:] for line in status.splitlines() if line.startswith(("Uid", "Gid"))}
    assert ids == {"Uid": [str(GATEWAY_UID)] * 4, "Gid": [str(GATEWAY_UID)] * 4}, status
    assert "openid-gateway" in podman("exec", name, "cat", "/proc/1/cmdline").stdout
    tools = podman("exec", name, "python3", "-c",
                   "import importlib.util, shutil; print(importlib.util.find_spec('pip'), shutil.which('gcc'),"
                   " shutil.which('cc'), shutil.which('curl'))").stdout
    assert tools.split() == ["None"] * 4, tools
    health = podman("healthcheck", "run", name, check=False)
    assert health.returncode == 0, (health.stdout, health.stderr, stack.logs())
    # It served a sign-in (the module's other test) writing nowhere but its volume: the rest is read-only.
    assert podman("exec", name, "touch", "/tmp/x", check=False).returncode != 0
    assert podman("exec", name, "touch", "/var/lib/openid-gateway/x", check=False).returncode == 0


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PODMAN, *args], capture_output=True, text=True, env=env, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_the_images_defaults_listen_for_a_proxy_on_the_published_port_and_read_a_mounted_toml(
        image: str, tmp_path: Path) -> None:
    """Listening on every interface of the container is refused until ``GATEWAY_BEHIND_PROXY`` says a proxy is
    the only client; then the published port answers, configured by a TOML mounted at ``GATEWAY_CONFIG``.

    Through a published port, connections come from the container network's gateway address: with it in
    ``trusted_proxies`` (as docs/container.md says), the login rate limit counts each visitor the proxy
    names, not that one address every visitor would share.
    """
    keys = {"secret_keys": secrets.token_urlsafe(32), "proof_key": secrets.token_urlsafe(32)}
    KEYS_IN_USE.update(keys.values())
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "GATEWAY_PUBLIC_URL": "https://gateway.example",
           "GATEWAY_SECRET_KEYS": keys["secret_keys"], "GATEWAY_PROOF_KEY": keys["proof_key"]}
    refused = _run("run", "--rm", *LIMITS, "--network=none", *(f"--env={name}" for name in env if name != "PATH"),
                   image, env=env)
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    assert "host = '0.0.0.0' is not a loopback address" in refused.stderr and "behind_proxy" in refused.stderr

    network_gateway = podman("network", "inspect", "podman", "--format",
                             "{{range .Subnets}}{{.Gateway}}{{end}}").stdout.strip()
    port, name = free_port(), f"openid-gateway-test-toml-{secrets.token_hex(4)}"
    config = tmp_path / "gateway.toml"
    config.write_text(f'public_url = "http://127.0.0.1:{port}"\nsecret_keys = ["{keys["secret_keys"]}"]\n'
                      f'proof_key = "{keys["proof_key"]}"\nbehind_proxy = true\n'
                      f'trusted_proxies = ["{network_gateway}"]\nlogin_rate_limit = 1\n')
    config.chmod(0o644)
    started = _run("run", "--detach", "--rm", "--name", name, *LIMITS, "--publish", f"127.0.0.1:{port}:{PORT}",
                   "--volume", f"{config}:/etc/openid-gateway/gateway.toml:ro",
                   "--env", "GATEWAY_CONFIG=/etc/openid-gateway/gateway.toml", image, env={"PATH": env["PATH"]})
    assert started.returncode == 0, started.stderr
    try:
        try:
            wait_for_port(port, timeout=30)
        except RuntimeError:
            raise AssertionError(podman("logs", name, check=False).stderr) from None
        deadline = time.monotonic() + 15
        while True:  # the published port may accept before the gateway behind it does
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/_gateway/health", timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert answer.status_code == 200 and answer.text == "ok\n"
        health = podman("healthcheck", "run", name, check=False)
        assert health.returncode == 0, (health.stdout, health.stderr)
        assert _sign_in_status(port, "192.0.2.1") != 429
        assert _sign_in_status(port, "192.0.2.1") == 429  # the limit counts the visitor the proxy names...
        assert _sign_in_status(port, "192.0.2.2") != 429, podman("logs", name).stderr  # ...one by one
    finally:
        podman("rm", "--force", "--ignore", "--time", "5", name, check=False)


def _sign_in_status(port: int, visitor: str) -> int:
    """Submit the login form as a proxy would forward ``visitor``'s request; the answer's status."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-Forwarded-For": visitor},
                      timeout=10) as client:
        page = client.get("/login")
        assert page.status_code == 200, page.text
        return submit(client, page, {"identifier": ""}).status_code
