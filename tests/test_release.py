"""The release as an operator installs it: the built wheel and its lock in a fresh venv, outside the clone.

``scripts/dist`` (what ``make dist`` runs) builds the sdist, the wheel from it, and puts the runtime lock
beside them. The test then follows ``docs/install.md``: a venv in a temporary directory, the lock with
``--require-hashes --no-deps`` (nothing unlocked is installed), the wheel with ``--no-deps``, ``pip
check``; and runs the installed ``openid-gateway`` from a directory outside the clone, without
``PYTHONPATH``: ``--version``, ``keys``, ``check-config``, then ``serve`` behind a real nginx configured
with the snippets unpacked from the sdist, and a sign-in at the development OpenID Connect provider.
That provider runs from the clone; the wheel holds no devtools, so the gateway shows it needs nothing of
the clone at run time.

pip needs PyPI (or its cache) for the lock's packages, as an operator's pip does.
"""

from __future__ import annotations

import contextlib
import email.parser
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

import gateway
from devtools.processes import Process, free_port
from devtools.stack import LOCAL_OIDC_CLIENT, LOCAL_OIDC_NAME, Ports, nginx_in_prefix, render_nginx_conf
from gateway.paths import JWKS
from gateway.proof import ProofVerifier
from tests.devtools.oidc_relying_party import decide
from tests.htmlforms import submit

pytestmark = [pytest.mark.nginx, pytest.mark.release, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[1]
RELEASE = f"openid_gateway-{gateway.__version__}"
# Nothing of the clone but the gateway may be in the wheel.
CLONE_ONLY = ("devtools", "tests", "bench", "backend_app", "requirements", "deploy", "scripts")


@dataclass(frozen=True)
class Release:
    """What ``scripts/dist`` left in its output directory."""

    wheel: Path
    sdist: Path
    lock: Path
    sums: Path


@dataclass(frozen=True)
class Installed:
    """The release installed in ``venv``; commands run in ``home``, outside the clone."""

    venv: Path
    home: Path
    env: dict[str, str]

    @property
    def command(self) -> Path:
        return self.venv / "bin" / "openid-gateway"

    def run(self, *args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(arg) for arg in args], cwd=self.home, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def gateway(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return self.run(self.command, *args)


def operator_environ() -> dict[str, str]:
    """This environment without anything that would let the clone's code in, nor GATEWAY_* settings."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    return {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith(("GATEWAY_", "MICROBLOG_"))}


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run([str(ROOT / "scripts" / "dist"), str(out)], env={**os.environ, "PYTHON": sys.executable},
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([
        f"{RELEASE}-py3-none-any.whl", f"{RELEASE}.tar.gz", f"{RELEASE}-requirements.txt", f"{RELEASE}-SHA256SUMS"])
    for path in out.iterdir():  # scripts/dist names each file with its size
        assert re.search(rf"{re.escape(path.name)} +[0-9.]+[KM]?i?B\n", built.stdout), built.stdout
    return Release(out / f"{RELEASE}-py3-none-any.whl", out / f"{RELEASE}.tar.gz", out / f"{RELEASE}-requirements.txt",
                   out / f"{RELEASE}-SHA256SUMS")


# docs/install.md's installation, command by command: the installed fixture runs them (python3 is this
# interpreter) and a test finds each, for /opt/openid-gateway and the release's files, in the page.
INSTALL_STEPS = (
    "python3 -m venv {venv}",
    "{venv}/bin/pip install --require-hashes --no-deps -r {lock}",
    "{venv}/bin/pip install --no-deps {wheel}",
    "{venv}/bin/pip check",
)


def install_steps(venv: str | Path, lock: str | Path, wheel: str | Path) -> list[list[str]]:
    values = {"venv": shlex.quote(str(venv)), "lock": shlex.quote(str(lock)), "wheel": shlex.quote(str(wheel))}
    return [shlex.split(step.format(**values)) for step in INSTALL_STEPS]


@pytest.fixture(scope="module")
def installed(release: Release, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """docs/install.md's steps, in a new venv under a temporary directory."""
    home = tmp_path_factory.mktemp("operator")
    assert not home.resolve().is_relative_to(ROOT)
    env = operator_environ()
    venv = home / "openid-gateway"
    for step in install_steps(venv, release.lock, release.wheel):
        argv = [sys.executable if step[0] == "python3" else step[0], *step[1:]]
        done = subprocess.run(argv, cwd=home, env={**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{shlex.join(argv)}:\n{done.stdout}{done.stderr}"
    return Installed(venv, home, env)


def test_docs_install_md_gives_the_commands_this_test_runs() -> None:
    page = (ROOT / "docs" / "install.md").read_text()
    for argv in install_steps("/opt/openid-gateway", f"{RELEASE}-requirements.txt", f"{RELEASE}-py3-none-any.whl"):
        assert shlex.join(argv) in page, shlex.join(argv)


def test_the_wheel_holds_the_gateway_its_pages_and_nothing_of_the_clone(release: Release) -> None:
    names = zipfile.ZipFile(release.wheel).namelist()
    assert {name.split("/", 1)[0] for name in names} == {"gateway", f"{RELEASE}.dist-info"}
    assert not [name for name in names if name.startswith(tuple(f"{top}/" for top in CLONE_ONLY))]
    pages = ROOT / "gateway" / "pages"
    shipped = {str(path.relative_to(ROOT)) for folder in ("templates", "static") for path in (pages / folder).iterdir()}
    assert shipped and shipped <= set(names), shipped - set(names)
    assert "gateway/py.typed" in names
    modules = {str(path.relative_to(ROOT)) for path in (ROOT / "gateway").rglob("*.py")}
    assert modules <= set(names), modules - set(names)


def test_the_wheel_says_what_it_is(release: Release) -> None:
    with zipfile.ZipFile(release.wheel) as wheel:
        metadata = email.parser.Parser().parsestr(wheel.read(f"{RELEASE}.dist-info/METADATA").decode())
        entry_points = wheel.read(f"{RELEASE}.dist-info/entry_points.txt").decode()
    assert metadata["Name"] == "openid-gateway" and metadata["Version"] == gateway.__version__
    assert all(protocol in metadata["Summary"] for protocol in ("OpenID Connect", "GitHub", "OpenID 2.0"))
    assert metadata["License-Expression"] == "MIT" and metadata["Requires-Python"] == ">=3.11"
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL", []))
    assert set(urls) == {"Homepage", "Documentation", "Changelog", "Issues"}
    assert all(url.startswith("https://github.com/openid-gateway/openid-gateway") for url in urls.values())
    classifiers = metadata.get_all("Classifier", [])
    assert {f"Programming Language :: Python :: 3.{minor}" for minor in (11, 12, 13)} <= set(classifiers)
    assert "openid-gateway = gateway.cli:main" in entry_points


def test_the_lock_beside_the_wheel_is_the_tested_runtime_lock_and_pins_every_dependency(release: Release) -> None:
    assert release.lock.read_bytes() == (ROOT / "requirements" / "runtime.txt").read_bytes()
    checked = subprocess.run(["sha256sum", "--check", "--strict", release.sums.name], cwd=release.sums.parent,
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0 and checked.stdout.count(": OK") == 3, checked.stdout + checked.stderr
    pinned = set(re.findall(r"^([a-z0-9][a-z0-9._-]*)==", release.lock.read_text(), re.MULTILINE))
    with zipfile.ZipFile(release.wheel) as wheel:
        metadata = email.parser.Parser().parsestr(wheel.read(f"{RELEASE}.dist-info/METADATA").decode())
    required = {re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")
                for requirement in metadata.get_all("Requires-Dist", []) if "extra ==" not in requirement}
    assert required and required <= pinned, required - pinned


def test_the_sdist_carries_what_an_operator_copies(release: Release) -> None:
    with tarfile.open(release.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert not [name for name in names if name.startswith(tuple(f"{top}/" for top in CLONE_ONLY if top != "deploy"))]
    for needed in ("nginx.conf", "deploy/gateway.example.toml", "deploy/nginx/protect.conf", "docs/install.md",
                   "CHANGELOG.md", "LICENSE", "gateway/pages/templates/login.html"):
        assert needed in names, needed


def test_the_installed_command_is_the_wheels_own(installed: Installed) -> None:
    version = installed.gateway("--version")
    assert (version.returncode, version.stdout) == (0, f"openid-gateway {gateway.__version__}\n"), version.stderr
    where = installed.run(installed.venv / "bin" / "python", "-c",
                          "import gateway, importlib.util as u; print(gateway.__file__, u.find_spec('devtools'))")
    module, devtools = where.stdout.split()
    assert Path(module).is_relative_to(installed.venv) and devtools == "None", where.stdout + where.stderr


def make_keys(installed: Installed, name: str) -> tuple[str, str, Path]:
    """``keys secret`` and ``keys generate``, as the operator starts: a secret key, a proof key, key file ``name``."""
    secret = installed.gateway("keys", "secret")
    assert secret.returncode == 0, secret.stderr
    found = dict(re.findall(r"^(secret key|proof key): +(\S+)$", secret.stdout, re.MULTILINE))
    keys_file = installed.home / name
    generated = installed.gateway("keys", "generate", keys_file)
    assert generated.returncode == 0 and "signing key" in generated.stdout, generated.stderr
    return found["secret key"], found["proof key"], keys_file


def write_config(installed: Installed, ports: Ports, name: str = "gateway.toml") -> Path:
    """A TOML configuration as docs/install.md has the operator write it, for nginx on ``ports.nginx``."""
    secret_key, proof_key, keys_file = make_keys(installed, f"{Path(name).stem}-assertion-keys.json")
    client_id, client_secret = LOCAL_OIDC_CLIENT
    secret_file = installed.home / "oidc-client-secret"
    secret_file.write_text(client_secret + "\n")
    secret_file.chmod(0o600)  # the gateway refuses secret files other users may read
    config = installed.home / name
    config.write_text(f"""\
public_url = "http://127.0.0.1:{ports.nginx}"
secret_keys = ["{secret_key}"]
proof_key = "{proof_key}"
state_dir = "{installed.home / 'state'}"
host = "127.0.0.1"
port = {ports.gateway}
identity_assertion = "both"
assertion_keys_file = "{keys_file}"
# The development provider listens on loopback.
allow_private_addresses = true

[[providers]]
type = "oidc"
name = "{LOCAL_OIDC_NAME}"
issuer = "http://127.0.0.1:{ports.oidc}"
client_id = "{client_id}"
client_secret_file = "{secret_file}"
""")
    return config


def test_keys_generate_refuses_to_overwrite_a_key_file(installed: Installed) -> None:
    keys_file = make_keys(installed, "once-assertion-keys.json")[2]
    again = installed.gateway("keys", "generate", keys_file)
    assert again.returncode == 2 and len(again.stderr.splitlines()) == 1, again.stderr
    assert json.loads(keys_file.read_text())["keys"], "the first key file is kept"


def test_check_config_passes_a_good_file_and_names_every_problem_of_a_bad_one(installed: Installed) -> None:
    ports = Ports(nginx=18080, gateway=19000, app=18000, provider=0, oidc=18002)
    good = installed.gateway("check-config", "--config", write_config(installed, ports))
    assert good.returncode == 0 and good.stderr == "", good.stderr
    assert good.stdout.startswith(f"openid-gateway: configuration OK (mode auth_request, public URL "
                                  f"http://127.0.0.1:{ports.nginx})\n"), good.stdout
    bad = installed.home / "broken.toml"
    bad.write_text('secret_key = ["x"]\npublic_url = "https://a.example"\n')
    broken = installed.gateway("check-config", "--config", bad)
    assert broken.returncode == 2 and broken.stdout == "", broken.stdout
    assert broken.stderr.count("\n") == 1 and broken.stderr.startswith("openid-gateway: invalid configuration: "
                                                                       "unknown setting secret_key (did you mean"
                                                                       " secret_keys?)"), broken.stderr


@dataclass
class Served:
    """The installed gateway serving behind nginx, the app and the provider running from the clone."""

    ports: Ports
    config: Path
    processes: dict[str, Process]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.nginx}"

    @property
    def oidc_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.oidc}"

    def logs(self) -> str:
        return "\n".join(f"--- {name} ---\n{process.output(tail=30)}" for name, process in self.processes.items())


@pytest.fixture(scope="module")
def served(installed: Installed, release: Release, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``openid-gateway serve --config`` from the venv, behind nginx with the sdist's nginx.conf and snippets."""
    unpacked = tmp_path_factory.mktemp("sdist")
    with tarfile.open(release.sdist) as sdist:
        sdist.extractall(unpacked, filter="data")
    source = unpacked / RELEASE
    ports = Ports(nginx=free_port(), gateway=free_port(), app=free_port(), provider=0, oidc=free_port())
    served = Served(ports, write_config(installed, ports, "serve.toml"), {})
    logs = tmp_path_factory.mktemp("release-logs")
    host = ["--host", "127.0.0.1"]
    # The provider and the app run from the clone (cwd), the gateway and nginx from the operator's directory.
    commands = {
        "oidc": ([sys.executable, "-m", "devtools.oidc_provider", *host, "--port", str(ports.oidc), "--base-url",
                  served.oidc_url, "--gateway-url", served.url], ROOT, ports.oidc),
        "app": ([sys.executable, "-m", "uvicorn", "tests.upstream_app:app", *host, "--port", str(ports.app),
                 "--no-proxy-headers"], ROOT, ports.app),
        "gateway": ([str(installed.command), "serve", "--config", str(served.config)], installed.home, ports.gateway),
    }
    prefix, nginx_argv = nginx_in_prefix(
        render_nginx_conf("auth_request", ports, (source / "nginx.conf").read_text()), logs,
        snippets=source / "deploy" / "nginx")
    commands["nginx"] = (nginx_argv, installed.home, ports.nginx)
    try:
        with contextlib.ExitStack() as stack:
            for name, (argv, cwd, port) in commands.items():
                process = Process(argv, cwd=cwd, base_env=installed.env, env={"PYTHONUNBUFFERED": "1"},
                                  log_path=logs / f"{name}.log", name=name)
                served.processes[name] = process
                stack.callback(process.close)
                process.start(port, timeout=30)
            yield served
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def test_the_installed_gateway_signs_someone_in_through_nginx_with_a_provider_not_in_the_wheel(served: Served) -> None:
    proof_key = re.search(r'^proof_key = "(.+)"$', served.config.read_text(), re.MULTILINE)
    assert proof_key is not None
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        page = browser.get(served.url + "/echo/after?x=1")
        assert page.url.path == "/login" and LOCAL_OIDC_NAME in page.text, (page.url, served.logs())
        consent = submit(browser, page, button=("provider", served.oidc_url))
        assert consent.url.port == served.ports.oidc, (consent.url, served.logs())
        final = decide(browser, consent, "allow")
        assert final.status_code == 200 and final.url.path == "/echo/after", (final.url, served.logs())
        echo = final.json()
        jwks = browser.get(served.url + JWKS)
        assert jwks.status_code == 200, served.logs()
    headers = httpx.Headers([tuple(pair) for pair in echo["headers"]])
    host = f"127.0.0.1:{served.ports.nginx}"
    verified = ProofVerifier(proof_key.group(1)).verify(headers, "GET", headers.get("host", ""), "/echo/after?x=1")
    assert verified is not None and verified.user_id.startswith(served.oidc_url + "#"), headers
    token = jwt.decode(headers["x-gateway-assertion"], KeySet.import_key_set(jwks.json()), algorithms=["ES256"])
    assert token.claims["sub"] == verified.user_id and token.claims["aud"] == host, token.claims
    assert token.claims["iss"] == served.url
    assert all(process.running for process in served.processes.values()), served.logs()
