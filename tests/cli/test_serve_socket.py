"""``openid-gateway serve`` on a Unix socket (setting ``uds``), run for real: who may connect, and start-up errors.

The gateway makes the socket mode 0660 with the group ``uds_group`` (nginx's workers' group), so a local
user outside that group is refused by the kernel even in a directory anyone may enter (the systemd unit's
RuntimeDirectoryMode=0755). Another user is tried in a forked child that drops to ``nobody`` (no new
interpreter: a development virtualenv may sit where ``nobody`` cannot reach it); that needs root, as CI has.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devtools.processes import Process, free_port
from devtools.stack import PROJECT_ROOT
from gateway.cli import health, listen
from gateway.settings import load_settings

GOOD = {"GATEWAY_SECRET_KEYS": "s" * 40, "GATEWAY_PROOF_KEY": "p" * 40, "GATEWAY_PUBLIC_URL": "https://a.example"}
# nginx's workers' group on Debian; ``nobody`` is not in it.
NGINX_GROUP = "www-data"

needs_root = pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true",
                                reason="acting as another user needs root (CI runs the suite as root)")


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A directory every user may enter, as systemd's RuntimeDirectory=openid-gateway with mode 0755.

    Under /tmp, not pytest's tmp_path (root's alone, 0700): the socket's own mode must be what refuses.
    """
    directory = Path(tempfile.mkdtemp(prefix="gw-uds-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def wait_healthy(gateway: Process, sock: Path) -> None:
    """Until the gateway answers on its socket (it accepts connections before its application has started)."""
    gateway.wait_for_port(sock, timeout=30)
    settings = load_settings(None, {**GOOD, "GATEWAY_UDS": str(sock)})
    deadline = time.monotonic() + 30
    while health.run(settings, timeout=2) != 0:
        assert time.monotonic() < deadline, gateway.output()
        time.sleep(0.1)


def serve(sock: Path, state: Path, **env: str) -> Process:
    environ = {**GOOD, "GATEWAY_UDS": str(sock), "GATEWAY_STATE_DIR": str(state), "GATEWAY_LOG_LEVEL": "warning",
               **env}
    return Process([sys.executable, "-m", "gateway", "serve"], env=environ, cwd=PROJECT_ROOT, name="gateway")


def as_other_user(action: Callable[[], None], groups: list[int]) -> int:
    """Run ``action`` in a child process as ``nobody`` with these supplementary groups; its errno, 0 if none."""
    nobody = pwd.getpwnam("nobody")
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, try, report through the exit status
        code = 0
        try:
            os.setgroups(groups)
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            action()
        except OSError as exc:
            code = exc.errno or 255
        except BaseException:
            code = 254
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def connect(path: Path) -> Callable[[], None]:
    def attempt() -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(path))
    return attempt


def test_the_socket_is_mode_0660_owned_by_the_gateway_s_user_and_uds_group(socket_dir: Path, tmp_path: Path) -> None:
    sock = socket_dir / "gateway.sock"
    group = grp.getgrnam(NGINX_GROUP)
    with serve(sock, tmp_path, GATEWAY_UDS_GROUP=NGINX_GROUP) as gateway:
        wait_healthy(gateway, sock)
        found = sock.stat()
        assert stat.S_ISSOCK(found.st_mode)
        assert stat.S_IMODE(found.st_mode) == 0o660
        assert (found.st_uid, found.st_gid) == (os.geteuid(), group.gr_gid)
    assert not sock.exists()  # removed at exit: the next start finds no stale file
    assert "Traceback" not in gateway.output()


def test_without_uds_group_the_socket_has_the_gateway_s_own_group(socket_dir: Path, tmp_path: Path) -> None:
    sock = socket_dir / "gateway.sock"
    with serve(sock, tmp_path) as gateway:
        wait_healthy(gateway, sock)
        found = sock.stat()
        assert (stat.S_IMODE(found.st_mode), found.st_gid) == (0o660, os.getegid())


@needs_root
def test_a_user_outside_the_group_cannot_connect_and_a_member_can(socket_dir: Path, tmp_path: Path) -> None:
    """The attack: a local user (here ``nobody``) talks to the gateway directly, as a trusted proxy would."""
    sock = socket_dir / "gateway.sock"
    with serve(sock, tmp_path, GATEWAY_UDS_GROUP=NGINX_GROUP) as gateway:
        wait_healthy(gateway, sock)
        assert as_other_user(connect(sock), groups=[]) == errno.EACCES
        assert as_other_user(connect(sock), groups=[grp.getgrnam(NGINX_GROUP).gr_gid]) == 0


def test_the_health_command_probes_the_socket(socket_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    sock = socket_dir / "gateway.sock"
    settings = load_settings(None, {**GOOD, "GATEWAY_UDS": str(sock)})
    assert health.run(settings, timeout=2) == health.EXIT_UNHEALTHY  # nothing listens yet
    assert capsys.readouterr().err.startswith(f"openid-gateway: unhealthy: unix:{sock} /_gateway/health")
    with serve(sock, tmp_path) as gateway:
        wait_healthy(gateway, sock)
        assert health.run(settings) == 0


def test_a_stale_socket_of_an_earlier_run_is_replaced(socket_dir: Path, tmp_path: Path) -> None:
    sock = socket_dir / "gateway.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock))
    stale.close()  # the file stays, nobody listens: what a killed gateway leaves
    with serve(sock, tmp_path) as gateway:
        wait_healthy(gateway, sock)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o660


def start_failure(sock: Path, state: Path, **env: str) -> tuple[int, list[str]]:
    environ = {**os.environ, **GOOD, "GATEWAY_UDS": str(sock), "GATEWAY_STATE_DIR": str(state), **env}
    done = subprocess.run([sys.executable, "-m", "gateway", "serve"], env=environ, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stderr.splitlines()


def test_a_second_gateway_on_the_same_socket_stops_with_one_line(socket_dir: Path, tmp_path: Path) -> None:
    sock = socket_dir / "gateway.sock"
    with serve(sock, tmp_path) as gateway:
        wait_healthy(gateway, sock)
        status, lines = start_failure(sock, tmp_path / "second")
    assert status == 2 and len(lines) == 1, lines
    assert "another process is listening on it" in lines[0]


def test_a_missing_directory_stops_start_up_with_one_line(tmp_path: Path) -> None:
    status, lines = start_failure(tmp_path / "missing" / "gateway.sock", tmp_path)
    assert status == 2 and len(lines) == 1, lines
    assert "does not exist (systemd: RuntimeDirectory=)" in lines[0]


def test_an_unknown_group_stops_start_up_with_one_line(socket_dir: Path, tmp_path: Path) -> None:
    status, lines = start_failure(socket_dir / "gateway.sock", tmp_path, GATEWAY_UDS_GROUP="no-such-group-here")
    assert status == 2 and len(lines) == 1, lines
    assert "uds_group 'no-such-group-here' is not a group on this machine" in lines[0]


@needs_root
def test_a_directory_the_gateway_may_not_write_stops_start_up_with_what_to_fix(socket_dir: Path) -> None:
    """As ``nobody`` in a directory root owns (0755): bind(2) is refused, and the message names the fix."""
    messages: list[str] = []
    read, write = os.pipe()

    def bind() -> None:
        try:
            listen.unix_socket(str(socket_dir / "gateway.sock"))
        except Exception as exc:  # the child reports the message through the pipe
            os.write(write, str(exc).encode())
            raise OSError(errno.EACCES, "refused") from None

    assert as_other_user(bind, groups=[]) == errno.EACCES
    os.close(write)
    messages.append(os.read(read, 4096).decode())
    os.close(read)
    assert f"directory {str(socket_dir)!r} must be writable by the gateway's user" in messages[0]
    assert "RuntimeDirectory=" in messages[0]


@needs_root
def test_a_group_the_gateway_is_not_in_stops_start_up_with_what_to_fix(socket_dir: Path) -> None:
    """As ``nobody`` (not in www-data) in a directory it may write: chown(2) is refused, nothing is left behind."""
    os.chown(socket_dir, pwd.getpwnam("nobody").pw_uid, -1)
    read, write = os.pipe()

    def bind() -> None:
        try:
            listen.unix_socket(str(socket_dir / "gateway.sock"), NGINX_GROUP)
        except Exception as exc:
            os.write(write, str(exc).encode())
            raise OSError(errno.EPERM, "refused") from None

    assert as_other_user(bind, groups=[]) == errno.EPERM
    os.close(write)
    message = os.read(read, 4096).decode()
    os.close(read)
    assert f"SupplementaryGroups={NGINX_GROUP}" in message
    assert not (socket_dir / "gateway.sock").exists()


def test_several_workers_and_the_metrics_supervisor_serve_the_one_socket(socket_dir: Path, tmp_path: Path) -> None:
    sock = socket_dir / "gateway.sock"
    with serve(sock, tmp_path, GATEWAY_WORKERS="2", GATEWAY_METRICS_ADDRESS=f"127.0.0.1:{free_port()}") as gateway:
        wait_healthy(gateway, sock)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o660
    assert not sock.exists()
    assert "Traceback" not in gateway.output()
