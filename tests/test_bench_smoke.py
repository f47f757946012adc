"""SMOKE TEST of the benchmark: ``python -m bench --smoke`` runs end to end and prints every row.

It proves the benchmark works (stacks start, sign-ins succeed, wrk sees only
200s), never how fast anything is: there is no timing assertion here. It
needs nginx and wrk; a missing tool fails the test (exit status 2), it never
skips — CI installs both.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.nginx

EXPECTED_ROWS = [
    ("trivial", "1", "nginx → app (direct, no auth)"),
    ("trivial", "2", "nginx auth_request → gateway → app (mode 1)"),
    ("trivial", "3", "nginx → gateway proxy → app (mode 2)"),
    ("trivial", "4", "gateway /_gateway/auth alone"),
    ("trivial", "5", "complete sign-ins"),
    ("microblog", "1", "nginx → app (direct, no auth)"),
    ("microblog", "2", "nginx auth_request → gateway → app (mode 1)"),
    ("microblog", "3", "nginx → gateway proxy → app (mode 2)"),
]


@pytest.mark.timeout(600)
def test_smoke_benchmark_run_exits_0_and_prints_every_row() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "MICROBLOG_"))}
    run = subprocess.run([sys.executable, "-m", "bench", "--smoke"], cwd=PROJECT_ROOT, env=env,
                         capture_output=True, text=True, timeout=540, check=False)
    output = f"--- stdout ---\n{run.stdout}\n--- stderr ---\n{run.stderr[-4000:]}"
    assert run.returncode == 0, output
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in run.stdout.splitlines()
            if line.startswith("| trivial |") or line.startswith("| microblog |")]
    for app, number, label in EXPECTED_ROWS:
        assert any(row[0] == app and row[1] == number and row[2].startswith(label) and row[3] != "—"
                   for row in rows), f"no table row {app} #{number} {label!r}\n{output}"
    assert "peak RSS (VmHWM)" in run.stdout and "Memory over" in run.stdout, output
    assert "ERRORS" not in run.stdout, output
