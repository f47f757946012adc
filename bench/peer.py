"""A peer's server run as a child of the benchmark (LemonLDAP::NG's handler, Apache with mod_auth_openidc).

What they share: a private temporary directory that the peer's workers can reach (run as root, both
drop to ``www-data``, as their Debian services do), the child process, and its pid for the CPU columns.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

from devtools.processes import Process

RUN_AS = "www-data"  # as the Debian services of both peers


class PeerServer:
    """A started peer: ``start()`` in the subclass sets :attr:`process`; :meth:`stop` ends it and its directory."""

    def __init__(self, log_path: Path, prefix: str) -> None:
        self.log_path = log_path
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.process: Process | None = None

    def give_directory_to_workers(self) -> bool:
        """Let the peer's workers use :attr:`dir`; True when we are root (they then run as :data:`RUN_AS`)."""
        self.dir.chmod(0o755)
        as_root = os.geteuid() == 0
        if as_root:
            account = pwd.getpwnam(RUN_AS)
            os.chown(self.dir, account.pw_uid, account.pw_gid)
        return as_root

    @property
    def pid(self) -> int:
        assert self.process is not None and self.process.proc is not None, "start() first"
        return self.process.proc.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def stop(self) -> None:
        if self.process is not None:
            self.process.close()
            self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)
