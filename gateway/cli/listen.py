"""The Unix socket ``serve`` listens on (setting ``uds``): only its owner and one group may connect.

uvicorn's own ``--uds`` makes the socket mode 0666 (or keeps the mode of a stale file left at the path),
leaving the directory to decide who may connect. Here the gateway binds the socket itself and hands it to
uvicorn: created with umask 0177 (so 0600 from its first moment), given ``uds_group`` (nginx's workers'
group, e.g. ``www-data``; by default the gateway's own group), then opened to that group, mode 0660. Any
other local user is refused by the kernel (``connect(2)``: ``EACCES``), whatever the directory's mode.

Connecting to a Unix socket needs write permission on it (unix(7)); its peers carry no address, so the
gateway counts them as trusted proxies (:mod:`gateway.gate.clientaddr`): who may connect is who may tell
the gateway a client's address. That is why the mode is fixed here rather than left to a umask.

Start-up problems (a directory the gateway may not write, a group it is not a member of, another gateway
already listening at the path) stop ``serve`` with one line saying what to fix.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from gateway.errors import ConfigError

SOCKET_MODE = 0o660
_CREATE_UMASK = 0o177  # bind() creates the file 0600: nobody else may connect before the chmod


def _problem(text: str) -> ConfigError:
    return ConfigError([text])


def _group_id(group: str) -> int:
    """``group``'s id (a name or a number), or -1: keep the gateway's own group."""
    if not group:
        return -1
    try:
        return grp.getgrgid(int(group)).gr_gid if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise _problem(f"uds_group {group!r} is not a group on this machine") from None


def _remove_stale(path: str) -> None:
    """Remove a socket left behind by a gateway that did not stop cleanly; refuse one that still answers."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise _problem(f"uds {path!r} exists and is not a socket: remove it or choose another path")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        os.unlink(path)  # nobody listens: a stale socket of an earlier run
        return
    except PermissionError:
        raise _problem(f"uds {path!r}: a socket the gateway's user may not use is in the way; "
                          "remove it") from None
    finally:
        probe.close()
    raise _problem(f"uds {path!r}: another process is listening on it (is the gateway already running?)")


def _bind_error(path: str, exc: OSError) -> ConfigError:
    """What to fix when ``bind(2)`` fails."""
    directory = os.path.dirname(path) or "."
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return _problem(f"uds {path!r}: cannot create the socket ({exc.strerror}): the directory "
                           f"{directory!r} must be writable by the gateway's user (systemd: RuntimeDirectory=)")
    if exc.errno == errno.ENOENT:
        return _problem(f"uds {path!r}: directory {directory!r} does not exist (systemd: RuntimeDirectory=)")
    return _problem(f"uds {path!r}: cannot create the socket: {exc.strerror or exc}")


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@dataclass(frozen=True, slots=True)
class UnixListener:
    """The bound socket, and the file it made (to remove at exit only if it is still this one)."""

    sock: socket.socket
    path: str
    inode: tuple[int, int]

    def remove(self) -> None:
        """Remove the socket file, unless another process has put its own at the path meanwhile."""
        with contextlib.suppress(OSError):
            found = os.lstat(self.path)
            if (found.st_dev, found.st_ino) == self.inode:
                os.unlink(self.path)


def unix_socket(path: str, group: str = "") -> UnixListener:
    """A listening socket bound to ``path``, mode 0660, group ``group`` (see the module); raises ConfigError."""
    gid = _group_id(group)
    _remove_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            with _umask(_CREATE_UMASK):  # process-wide, but serve has started no thread yet
                sock.bind(path)
        except OSError as exc:
            raise _bind_error(path, exc) from None
        made = os.lstat(path)
        listener = UnixListener(sock, path, (made.st_dev, made.st_ino))
        try:
            os.chown(path, -1, gid)
        except PermissionError:
            listener.remove()
            raise _problem(f"uds_group {group!r}: the gateway's user is not a member of this group, so it cannot "
                              f"give it the socket (systemd: SupplementaryGroups={group})") from None
        os.chmod(path, SOCKET_MODE)
        sock.listen(socket.SOMAXCONN)
    except BaseException:
        sock.close()
        raise
    return listener


__all__ = ["SOCKET_MODE", "UnixListener", "unix_socket"]
