"""The production install as the systemd units describe it, run for real: drift between them shows here.

``deploy/systemd`` names the production paths: the gateway in a virtualenv at
``/opt/openid-gateway``, ``/etc/openid-gateway/gateway.toml``, the state and log
directories. Here those paths live in a fake root directory: ``systemd-sysusers
--root`` and ``systemd-tmpfiles --create --root`` apply the shipped
``openid-gateway.sysusers`` and ``.tmpfiles`` files to it (which checks their
syntax as systemd reads it), its ``/opt/openid-gateway`` is this virtualenv,
and its ``/etc/openid-gateway`` holds the example configuration, a key file and
the secrets, owned as docs/production.md says. Then each unit's ``ExecStart=``
runs as written, with its ``Environment=``, ``EnvironmentFile=``,
``LoadCredential=`` (the ``credentials.conf`` drop-in) and ``WorkingDirectory=``:
the gateway must answer ``/_gateway/health``, serve its JWKS from the key file and
write its audit log in ``LogsDirectory=``. What the unit's ``User=`` may read and
write is tried as that user, with coreutils, and ``systemd-analyze verify`` reads
the units and the drop-in as systemd would.
"""

from __future__ import annotations

import grp
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from devtools.processes import Process, find_executable, free_port
from devtools.stack import PROJECT_ROOT
from gateway.paths import DEFAULT as paths

UNITS = PROJECT_ROOT / "deploy" / "systemd"
EXAMPLE = PROJECT_ROOT / "deploy" / "gateway.example.toml"
# The production paths the units, the sysusers/tmpfiles files and the docs name.
PREFIX, ETC, STATE, LOGS, DOCS = ("/opt/openid-gateway", "/etc/openid-gateway", "/var/lib/openid-gateway",
                                  "/var/log/openid-gateway", "/usr/share/doc/openid-gateway")
RUN = "/run/openid-gateway"  # the Unix socket's directory (uds): RuntimeDirectory= and tmpfiles.d
SOCKET = f"{RUN}/gateway.sock"
SECRET_KEY, PROOF_KEY = "unit-secret-key-" + "s" * 32, "unit-proof-key-" + "p" * 32
# What systemd gives a service before its Environment= lines (systemd.exec(5), "Environment Variables").
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class MissingSystemdTool(RuntimeError):
    """systemd-sysusers or systemd-tmpfiles is missing: install the systemd package (make system-deps)."""


@dataclass
class Unit:
    """A unit file and its drop-ins: every directive of every section, in order."""

    path: Path
    directives: list[tuple[str, str, str]] = field(default_factory=list)  # (section, key, value)

    @classmethod
    def read(cls, path: Path, *dropins: Path) -> Unit:
        unit = cls(path)
        for source in (path, *dropins):
            section = ""
            for line in source.read_text().splitlines():
                line = line.strip()
                if not line or line.startswith(("#", ";")):
                    continue
                if line.startswith("["):
                    section = line.strip("[]")
                    continue
                key, sep, value = line.partition("=")
                assert sep and section, f"{source}: not a directive: {line!r}"
                unit.directives.append((section, key.strip(), value.strip()))
        return unit

    def values(self, key: str, section: str = "Service") -> list[str]:
        return [value for s, k, value in self.directives if (s, k) == (section, key)]

    def one(self, key: str, section: str = "Service") -> str:
        found = self.values(key, section)
        assert len(found) == 1, f"{self.path.name}: {key}= {found}"
        return found[0]


@dataclass
class FakeRoot:
    """A directory standing for / : the production paths re-rooted in it."""

    root: Path

    def path(self, production: str) -> Path:
        return self.root / production.lstrip("/")

    def reroot(self, text: str) -> str:
        for production in (PREFIX, ETC, STATE, LOGS, DOCS, RUN):
            text = text.replace(production, str(self.path(production)))
        return text

    def ids(self, user: str) -> tuple[int, int]:
        """``user``'s uid and gid in the fake root's passwd (systemd-sysusers wrote it)."""
        for line in self.path("/etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == user:
                return int(fields[2]), int(fields[3])
        raise AssertionError(f"systemd-sysusers made no user {user!r}")


def expand(value: str, instance: str, credentials: Path) -> str:
    """systemd's specifiers, those the units use: %i (the instance), %d (the credentials directory), %%."""
    found = set(re.findall(r"%(.)", value.replace("%%", ""))) - {"i", "d"}
    assert not found, f"a specifier this test does not know: {found}"
    return value.replace("%i", instance).replace("%d", str(credentials)).replace("%%", "%")


def environment_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as EnvironmentFile= reads them (comments and blank lines skipped)."""
    found = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith(("#", ";")):
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip().strip("\"'")
    return found


def systemd_tool(name: str) -> str:
    return find_executable(name, [f"/usr/bin/{name}", f"/bin/{name}"], MissingSystemdTool, "systemd")


@pytest.fixture
def fake_root() -> Iterator[FakeRoot]:
    """The sysusers.d and tmpfiles.d files applied to an empty root, with this virtualenv as /opt/openid-gateway.

    Under /tmp, not pytest's tmp_path: that is root's alone (0700), and the service's user must reach it.
    """
    root = FakeRoot(Path(tempfile.mkdtemp(prefix="openid-gateway-root-")))
    try:
        root.root.chmod(0o755)
        root.path("/etc").mkdir()
        for tool, args, suffix in (("systemd-sysusers", [], "sysusers"),
                                   ("systemd-tmpfiles", ["--create"], "tmpfiles")):
            done = subprocess.run([systemd_tool(tool), *args, f"--root={root.root}",
                                   str(UNITS / f"openid-gateway.{suffix}")], capture_output=True, text=True, timeout=60)
            # Only what it made: a line systemd could not parse would be a warning naming file:line.
            said = [line for line in done.stderr.splitlines() if not line.startswith("Creating ")]
            assert done.returncode == 0 and not said, f"{tool}: {done.stderr}"
        root.path(PREFIX).parent.mkdir(parents=True, exist_ok=True)
        root.path(PREFIX).symlink_to(Path(sys.prefix))
        yield root
    finally:
        shutil.rmtree(root.root, ignore_errors=True)


def test_the_sysusers_and_tmpfiles_files_make_the_user_and_the_directories(fake_root: FakeRoot) -> None:
    uid, gid = fake_root.ids("openid-gateway")
    assert 0 < uid < 1000 and 0 < gid < 1000  # a system user, and its own group
    entry = next(line for line in fake_root.path("/etc/passwd").read_text().splitlines()
                 if line.startswith("openid-gateway:"))
    assert entry.endswith(f":{STATE}:/usr/sbin/nologin")
    expected = {ETC: (0, gid, 0o750), STATE: (uid, gid, 0o700), LOGS: (uid, gid, 0o750), RUN: (uid, gid, 0o755)}
    for production, (owner, group, mode) in expected.items():
        found = fake_root.path(production).stat()
        assert (found.st_uid, found.st_gid, found.st_mode & 0o7777) == (owner, group, mode), production


def install(fake_root: FakeRoot, port: int) -> tuple[int, int]:
    """What docs/production.md has root do: the example configuration, a key file, the secrets as files."""
    uid, gid = fake_root.ids("openid-gateway")
    text = EXAMPLE.read_text()
    text = "\n".join(line for line in text.splitlines() if "REPLACE-ME" not in line) + "\n"
    text = text.replace("port = 9000", f"port = {port}")
    text = re.sub(r'^audit_log = "stderr"', f'audit_log = "{LOGS}/audit.log"', text, flags=re.M)
    text = text.replace('identity_assertion = "proof"', 'identity_assertion = "both"')
    text = text.replace(f'# assertion_keys_file = "{ETC}/assertion-keys.json"',
                        f'assertion_keys_file = "{ETC}/assertion-keys.json"')
    assert f'assertion_keys_file = "{ETC}/assertion-keys.json"' in text and "audit.log" in text
    config = fake_root.path(f"{ETC}/gateway.toml")
    config.write_text(fake_root.reroot(text))
    os.chown(config, 0 if os.geteuid() == 0 else -1, gid if os.geteuid() == 0 else -1)
    config.chmod(0o640)
    # As the example's comment says: openid-gateway keys generate --group openid-gateway FILE.
    keys = subprocess.run([str(fake_root.path(f"{PREFIX}/bin/openid-gateway")), "keys", "generate",
                           *(["--group", str(gid)] if os.geteuid() == 0 else []),
                           str(fake_root.path(f"{ETC}/assertion-keys.json"))],
                          env={"PATH": SYSTEMD_PATH, "PYTHONPATH": str(PROJECT_ROOT)}, capture_output=True, text=True,
                          timeout=60)
    assert keys.returncode == 0, keys.stderr
    for name, secret in (("secret_keys", SECRET_KEY), ("proof_key", PROOF_KEY)):
        path = fake_root.path(f"{ETC}/{name}")
        path.write_text(secret + "\n")
        path.chmod(0o600)
    return uid, gid


def load_credentials(unit: Unit, fake_root: FakeRoot, uid: int, instance: str) -> Path:
    """LoadCredential=ID:PATH as systemd does it: a copy only the service's user may read, in %d."""
    directory = fake_root.root / "run" / "credentials" / unit.path.name.replace("@", f"@{instance}")
    directory.mkdir(parents=True)
    for value in unit.values("LoadCredential"):
        name, _, source = value.partition(":")
        copy = directory / name
        shutil.copyfile(fake_root.reroot(source), copy)
        copy.chmod(0o400)
        if os.geteuid() == 0:
            os.chown(copy, uid, -1)
    directory.chmod(0o500)
    if os.geteuid() == 0:
        os.chown(directory, uid, -1)
    return directory


def start(unit: Unit, fake_root: FakeRoot, instance: str = "") -> Process:
    """The unit's ExecStart, as systemd would run it, in the fake root."""
    uid, _ = fake_root.ids(unit.one("User"))
    assert unit.one("Group") == unit.one("User")
    credentials = load_credentials(unit, fake_root, uid, instance)
    env = {"PATH": SYSTEMD_PATH, "PYTHONPATH": str(PROJECT_ROOT)}  # PYTHONPATH: this tree's code
    if unit.values("LoadCredential"):
        env["CREDENTIALS_DIRECTORY"] = str(credentials)
    for value in unit.values("Environment"):  # in order, with EnvironmentFile= after them (systemd.exec(5))
        for assignment in shlex.split(expand(value, instance, credentials)):
            key, _, setting = assignment.partition("=")
            env[key] = fake_root.reroot(setting)
    for value in unit.values("EnvironmentFile"):
        optional, path = value.startswith("-"), Path(fake_root.reroot(expand(value.lstrip("-"), instance, credentials)))
        assert optional or path.exists(), f"{unit.path.name}: EnvironmentFile={value} is required"
        if path.exists():
            env.update(environment_file(path))
    for directory in unit.values("RuntimeDirectory"):  # systemd makes it at each start, for the User=
        runtime = fake_root.path(f"/run/{directory}")
        runtime.mkdir(exist_ok=True)
        runtime.chmod(int(unit.one("RuntimeDirectoryMode"), 8))
    argv = shlex.split(fake_root.reroot(expand(unit.one("ExecStart"), instance, credentials)))
    assert argv[0].startswith(str(fake_root.path(PREFIX))), f"ExecStart is not in {PREFIX}: {argv[0]}"
    assert Path(argv[0]).is_file(), f"{unit.path.name}: {argv[0]} is not what the install makes"
    return Process(argv, base_env=env, cwd=fake_root.reroot(unit.one("WorkingDirectory")), name=unit.path.name)


def proc_text(pid: int) -> bytes:
    """What ``ps e`` shows of a process: its command line and its environment."""
    return Path(f"/proc/{pid}/cmdline").read_bytes() + Path(f"/proc/{pid}/environ").read_bytes()


def test_the_unit_with_the_credentials_drop_in_runs_as_written(fake_root: FakeRoot) -> None:
    """On the Unix socket of the example configuration, given to the group the unit adds (nginx's workers')."""
    install(fake_root, free_port())
    unit = Unit.read(UNITS / "openid-gateway.service", UNITS / "credentials.conf")
    assert unit.one("RuntimeDirectory") == RUN.removeprefix("/run/")
    assert f'uds = "{SOCKET}"' in EXAMPLE.read_text()
    group = unit.one("SupplementaryGroups")
    assert f'uds_group = "{group}"' in EXAMPLE.read_text()
    sock = fake_root.path(SOCKET)
    with start(unit, fake_root) as gateway, httpx.Client(transport=httpx.HTTPTransport(uds=str(sock))) as client:
        gateway.wait_for_port(sock, timeout=30)
        found = sock.stat()
        assert (stat.S_IMODE(found.st_mode), found.st_gid) == (0o660, grp.getgrnam(group).gr_gid)
        assert client.get(f"http://localhost{paths.health}", timeout=10).status_code == 200
        jwks = client.get(f"http://localhost{paths.jwks}", timeout=10)
        assert jwks.status_code == 200 and jwks.json()["keys"], jwks.text  # its group reads the key file
        assert gateway.proc is not None
        # The secrets came as files: neither the command line nor the environment shows them.
        seen = proc_text(gateway.proc.pid)
        assert b"GATEWAY_SECRET_KEYS_FILE=" in seen
        assert SECRET_KEY.encode() not in seen and PROOF_KEY.encode() not in seen
        assert fake_root.path(f"{LOGS}/audit.log").is_file()  # audit_log in LogsDirectory=
    assert "Traceback" not in gateway.output()


needs_root = pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true",
                                reason="acting as the service's user needs root (CI runs the suite as root)")


@needs_root
def test_the_service_s_user_reads_its_configuration_and_keys_and_writes_only_state_and_logs(
        fake_root: FakeRoot) -> None:
    """The ownership docs/production.md gives each file, tried as the unit's User= and Group= (no other groups).

    With coreutils rather than the gateway itself: the interpreter of a development
    virtualenv may sit where no other user can reach it (pyenv under /root).
    """
    uid, gid = install(fake_root, free_port())
    unit = Unit.read(UNITS / "openid-gateway.service", UNITS / "credentials.conf")
    assert fake_root.ids(unit.one("User")) == (uid, gid) == fake_root.ids(unit.one("Group"))
    credentials = load_credentials(unit, fake_root, uid, "")

    def as_service(*argv: str) -> bool:
        return subprocess.run(argv, user=uid, group=gid, extra_groups=[], capture_output=True,
                              timeout=30).returncode == 0

    for readable in (f"{ETC}/gateway.toml", f"{ETC}/assertion-keys.json"):
        assert as_service("cat", str(fake_root.path(readable))), readable
        assert not as_service("touch", str(fake_root.path(readable))), f"the service may change {readable}"
    for credential in ("secret_keys", "proof_key"):
        assert as_service("cat", str(credentials / credential))
        assert not as_service("cat", str(fake_root.path(f"{ETC}/{credential}")))  # root's alone: via systemd only
    for writable in (STATE, LOGS):
        assert as_service("touch", str(fake_root.path(f"{writable}/probe"))), writable
    assert not as_service("touch", str(fake_root.path(f"{ETC}/probe")))


def test_the_instance_template_runs_as_written_on_the_port_its_instance_names(fake_root: FakeRoot) -> None:
    install(fake_root, free_port())
    secrets_env = fake_root.path(f"{ETC}/secrets.env")
    secrets_env.write_text(f"GATEWAY_SECRET_KEYS={SECRET_KEY}\nGATEWAY_PROOF_KEY={PROOF_KEY}\n")
    secrets_env.chmod(0o600)
    port = free_port()
    unit = Unit.read(UNITS / "openid-gateway@.service")
    with start(unit, fake_root, instance=str(port)) as gateway:
        gateway.wait_for_port(port, timeout=30)
        assert httpx.get(f"http://127.0.0.1:{port}{paths.health}", timeout=10).status_code == 200


def test_the_units_point_at_the_install_path_and_at_documentation_the_install_puts_there() -> None:
    production = (PROJECT_ROOT / "docs" / "production.md").read_text()
    for name in ("openid-gateway.service", "openid-gateway@.service"):
        unit = Unit.read(UNITS / name)
        assert unit.one("ExecStart") == f"{PREFIX}/bin/openid-gateway serve --config {ETC}/gateway.toml"
        assert unit.one("LogsDirectory") == "openid-gateway" and unit.one("StateDirectory") == "openid-gateway"
        assert "OpenID 2.0 authentication gateway" not in unit.one("Description", "Unit")
        for document in unit.values("Documentation", "Unit"):
            assert document.startswith(f"file://{DOCS}/"), document
            shipped = document.removeprefix(f"file://{DOCS}/")
            assert (PROJECT_ROOT / "docs" / shipped).is_file() and f"docs/{shipped}" in production
            assert DOCS in production
    # The example configuration's key file and audit log are where the units let the gateway read and write.
    example = EXAMPLE.read_text()
    assert f'"{ETC}/assertion-keys.json"' in example and f'"{LOGS}/audit.log"' in example


def test_systemd_analyze_verify_finds_nothing_but_the_install_path_missing_on_this_machine(tmp_path: Path) -> None:
    """Unknown keys, bad values, a drop-in that does not apply: systemd's own reading of the units.

    ``/opt/openid-gateway`` does not exist here (the other tests run it re-rooted), so the one line
    allowed is that its command is missing; the template is verified as an instance.
    """
    (tmp_path / "openid-gateway.service.d").mkdir()
    shutil.copy(UNITS / "credentials.conf", tmp_path / "openid-gateway.service.d")
    shutil.copy(UNITS / "openid-gateway.service", tmp_path)
    shutil.copy(UNITS / "openid-gateway@.service", tmp_path / "openid-gateway@9000.service")
    units = [str(tmp_path / "openid-gateway.service"), str(tmp_path / "openid-gateway@9000.service")]
    done = subprocess.run([systemd_tool("systemd-analyze"), "verify", *units], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    said = [line for line in (done.stdout + done.stderr).splitlines()
            if not line.endswith(f"Command {PREFIX}/bin/openid-gateway is not executable: No such file or directory")]
    assert not said, "\n".join(said)
