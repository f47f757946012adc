"""``openid-gateway keys ...`` run as root on a key file the service reads: it stays the service's to read.

Each step writes a new file beside the old one and renames it over it (a new
inode), so without care a key file rotated by root would become root's, mode
0600, and the service could no longer read it at its next restart. These tests
run the real console script as root (as an operator does) on a file that
belongs to another user.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from gateway.gate.signing_keys import generate_key, load_signing_keys, validated, write_key_file
from tests.cli.test_main import run

SERVICE_UID = SERVICE_GID = 1000  # the service's user and group (any ids but root's)
needs_root = pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true",
                                reason="chown to another user needs root (CI runs the suite as root)")


def access(path: Path) -> tuple[int, int, int]:
    found = path.stat()
    return found.st_uid, found.st_gid, stat.S_IMODE(found.st_mode)


def keys(*args: str) -> subprocess.CompletedProcess[str]:
    return run("keys", *args)


@needs_root
@pytest.mark.parametrize("mode", [0o640, 0o600, 0o400], ids=["0640", "0600", "0400"])
def test_rotation_as_root_keeps_the_owner_group_and_mode_of_the_service_s_key_file(tmp_path: Path,
                                                                                   mode: int) -> None:
    path = tmp_path / "assertion-keys.json"
    write_key_file(path, validated([generate_key()]), replace=False)
    os.chown(path, SERVICE_UID, SERVICE_GID)
    path.chmod(mode)
    first = load_signing_keys(path).current.kid
    for step in ("add-next", "promote", "retire"):
        done = keys(step, str(path))
        assert done.returncode == 0, done.stderr
        assert access(path) == (SERVICE_UID, SERVICE_GID, mode), step
        assert f", mode {mode:04o}; next: " in done.stdout  # the output says who may read it
    assert load_signing_keys(path).current.kid != first
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


@needs_root
def test_a_new_key_file_is_the_maker_s_alone_or_readable_by_the_group_named(tmp_path: Path) -> None:
    os.umask(0o022)  # what a root shell has: a plain file would be 0644
    alone = tmp_path / "alone.json"
    assert keys("generate", str(alone)).returncode == 0
    assert access(alone) == (0, 0, 0o600)
    grouped = tmp_path / "grouped.json"
    done = keys("generate", "--group", str(SERVICE_GID), str(grouped))
    assert done.returncode == 0, done.stderr
    assert access(grouped) == (0, SERVICE_GID, 0o640)
    owned = tmp_path / "owned.json"
    done = keys("generate", "--owner", f"{SERVICE_UID}:{SERVICE_GID}", str(owned))
    assert done.returncode == 0, done.stderr
    assert access(owned) == (SERVICE_UID, SERVICE_GID, 0o600)
    # --owner changes who owns a file being rotated, too.
    assert keys("add-next", "--owner", "0:0", str(owned)).returncode == 0
    assert access(owned) == (0, 0, 0o600)


@needs_root
def test_rotation_never_leaves_a_key_file_open_to_other_users(tmp_path: Path) -> None:
    path = tmp_path / "assertion-keys.json"
    write_key_file(path, validated([generate_key()]), replace=False)
    os.chown(path, SERVICE_UID, SERVICE_GID)
    path.chmod(0o644)
    assert keys("add-next", str(path)).returncode == 0
    assert access(path) == (SERVICE_UID, SERVICE_GID, 0o640)


def test_an_unknown_owner_or_group_is_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    done = keys("generate", "--owner", "no-such-user-here", str(path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "no user 'no-such-user-here' on this machine" in done.stderr
    done = keys("generate", "--group", "no-such-group-here", str(path))
    assert done.returncode == 2 and "no group 'no-such-group-here'" in done.stderr
    done = keys("generate", "--owner", "0:0", "--group", "0", str(path))
    assert done.returncode == 2 and "give the group once" in done.stderr
    assert not path.exists()
