"""What the processes cost, read from ``/proc``: CPU time and memory of process trees.

A component (nginx, the gateway with ``workers > 1``) can be several processes:
every reading here covers a process and all its descendants, found by their
parent ids, so the numbers stay right whatever the process model.

:class:`CPUMeter` also reads the machine's total CPU time, so that a run can
say how much CPU *other* processes took meanwhile: on a shared machine that is
what makes one round slower than the next.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (which may hold spaces)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return text[text.rindex(")") + 2 :].split()


def tree(pid: int) -> list[int]:
    """``pid`` and every live descendant of it."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time these processes have used so far (exited ones count no more)."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU time every process on the machine has spent in user and system mode (all CPUs)."""
    fields = (PROC / "stat").read_text().split("\n", 1)[0].split()
    user, nice, system = (int(v) for v in fields[1:4])
    return (user + nice + system) / CLOCK_TICKS


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


@dataclass(frozen=True, slots=True)
class Memory:
    """Resident memory of a process tree, in MiB: now (summed) and the highest peak of one process."""

    rss: float
    peak: float
    processes: int


def memory(pid: int) -> Memory:
    """VmRSS summed over the tree, and the highest VmHWM of any one process in it."""
    pids = tree(pid)
    rss = sum(_status_kib(p, "VmRSS") for p in pids)
    peak = max((_status_kib(p, "VmHWM") for p in pids), default=0)
    return Memory(rss / 1024, peak / 1024, len(pids))


@dataclass(frozen=True, slots=True)
class CPUUsage:
    """CPU seconds per component over ``seconds`` of wall time, and what everything else took."""

    components: dict[str, float]
    seconds: float
    foreign: float  # CPU seconds of processes that are not ours (other users of the machine)

    @property
    def foreign_percent(self) -> float:
        """Other processes' load, in % of one CPU (200 = two CPUs fully used by someone else)."""
        return 100 * self.foreign / self.seconds if self.seconds else 0.0


class CPUMeter:
    """CPU used by named process trees (plus this process) between :meth:`start` and :meth:`stop`.

    A name may stand for several trees (two gateway instances): their CPU is added up.
    """

    def __init__(self, roots: Mapping[str, int | Sequence[int]]) -> None:
        self.roots = {name: [pid] if isinstance(pid, int) else list(pid) for name, pid in roots.items()}
        self._pids: dict[str, list[int]] = {}
        self._before: dict[str, float] = {}
        self._machine = self._self = self._wall = 0.0

    def start(self) -> None:
        self._pids = {name: [p for pid in pids for p in tree(pid)] for name, pids in self.roots.items()}
        self._before = {name: cpu_seconds(pids) for name, pids in self._pids.items()}
        self._machine = machine_busy_seconds()
        self._self = time.process_time()
        self._wall = time.monotonic()

    def stop(self, extra: float = 0.0) -> CPUUsage:
        """``extra``: CPU seconds of our own that no tree covers (wrk, reaped before this call)."""
        used = {name: cpu_seconds(pids) - self._before[name] for name, pids in self._pids.items()}
        ours = sum(used.values()) + (time.process_time() - self._self) + extra
        foreign = max(0.0, machine_busy_seconds() - self._machine - ours)
        return CPUUsage(used, time.monotonic() - self._wall, foreign)


__all__ = ["CPUMeter", "CPUUsage", "Memory", "cpu_seconds", "machine_busy_seconds", "memory", "tree"]
