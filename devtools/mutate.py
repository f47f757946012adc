"""``make mutate``: hand-written security mutants, each applied alone, the tests that guard it run.

Development only. Each mutant in ``devtools/mutants.toml`` is one small,
plausible weakening of a security check (a suffix match where an exact match
belongs, a ``<`` for a ``<=``, a forgotten revocation...). For every mutant the
runner copies the working tree once, applies that one edit to the copy, runs
the mutant's test files there and calls it *killed* when they fail. A mutant
that survives is a security regression the suite would let through: pin it
down with a test, or mark it ``equivalent = "why"`` when no behaviour can
tell it apart.

The mutants are text edits, not AST rewrites, so they read like the bugs a
person would make; a mutant whose ``find`` text is no longer in its module is
reported as *stale* (the code moved on: update the mutant), never skipped.

    python -m devtools.mutate [--only MODULE] [--list]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = Path(__file__).with_name("mutants.toml")
# A mutant's tests get this long; a hang counts as killed (the suite noticed something).
TEST_TIMEOUT = 600


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One weakening of one module."""

    id: str
    module: str
    find: str
    replace: str
    why: str
    tests: tuple[str, ...]
    equivalent: str = ""


@dataclasses.dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    status: str  # "killed", "survived", "equivalent", "stale"
    seconds: float


def load_mutants(path: Path = MUTANTS) -> list[Mutant]:
    """Read the mutant list; each module names its default tests in ``[tests]``."""
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    default_tests: dict[str, list[str]] = data.get("tests", {})
    mutants = []
    seen: set[str] = set()
    for item in data.get("mutant", []):
        module = item["module"]
        tests = item.get("tests") or default_tests.get(module)
        if not tests:
            raise SystemExit(f"mutate: mutant {item['id']!r}: no tests for {module} (add them to [tests])")
        if item["id"] in seen:
            raise SystemExit(f"mutate: duplicate mutant id {item['id']!r}")
        seen.add(item["id"])
        mutants.append(Mutant(item["id"], module, item["find"], item["replace"], item["why"], tuple(tests),
                              item.get("equivalent", "")))
    return mutants


def copy_tree(destination: Path) -> None:
    """Copy the files git knows of (tracked and untracked, not ignored): the tree as it is now."""
    listing = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                             capture_output=True).stdout.decode()
    for name in filter(None, listing.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def run_tests(tree: Path, tests: tuple[str, ...]) -> bool:
    """True when the tests pass in ``tree`` (the mutant survived)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", *tests]
    try:
        result = subprocess.run(command, cwd=tree, env=env, capture_output=True, timeout=TEST_TIMEOUT)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def try_mutant(tree: Path, mutant: Mutant) -> Outcome:
    started = time.monotonic()
    target = tree / mutant.module
    original = target.read_text()
    if original.count(mutant.find) != 1:
        return Outcome(mutant, "stale", 0.0)
    if mutant.equivalent:
        return Outcome(mutant, "equivalent", 0.0)
    target.write_text(original.replace(mutant.find, mutant.replace))
    try:
        survived = run_tests(tree, mutant.tests)
    finally:
        target.write_text(original)
    return Outcome(mutant, "survived" if survived else "killed", time.monotonic() - started)


def report(outcomes: list[Outcome]) -> int:
    by_module: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_module[outcome.mutant.module].append(outcome)
    print()
    print(f"{'module':<34} {'killed':>6} {'of':>3} {'rate':>6}  equivalent  survived/stale")
    total_killed = total_counted = 0
    for module in sorted(by_module):
        items = by_module[module]
        killed = sum(o.status == "killed" for o in items)
        counted = sum(o.status in ("killed", "survived") for o in items)
        equivalent = sum(o.status == "equivalent" for o in items)
        bad = [o.mutant.id for o in items if o.status in ("survived", "stale")]
        rate = f"{100 * killed / counted:.0f}%" if counted else "-"
        print(f"{module:<34} {killed:>6} {counted:>3} {rate:>6}  {equivalent:>10}  {', '.join(bad)}")
        total_killed += killed
        total_counted += counted
    rate = f"{100 * total_killed / total_counted:.0f}%" if total_counted else "-"
    print(f"{'all':<34} {total_killed:>6} {total_counted:>3} {rate:>6}")
    survivors = [o for o in outcomes if o.status in ("survived", "stale")]
    for outcome in survivors:
        print(f"{outcome.status.upper()}: {outcome.mutant.id} ({outcome.mutant.module}): {outcome.mutant.why}")
    for outcome in outcomes:
        if outcome.status == "equivalent":
            print(f"equivalent: {outcome.mutant.id}: {outcome.mutant.equivalent}")
    return 1 if survivors else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.mutate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="run only the mutants of modules whose path contains this")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)
    mutants = [m for m in load_mutants() if not args.only or args.only in m.module]
    if args.list:
        for m in mutants:
            print(f"{m.id:<32} {m.module:<34} {m.why}")
        return 0
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="gateway-mutants-") as tmp:
        tree = Path(tmp)
        copy_tree(tree)
        baseline = sorted({t for m in mutants for t in m.tests})
        print(f"baseline: {len(baseline)} test files must pass unmutated ...", flush=True)
        if not run_tests(tree, tuple(baseline)):
            print("mutate: the tests fail without any mutant: fix them first (a kill would mean nothing)")
            return 2
        for index, mutant in enumerate(mutants, 1):
            outcome = try_mutant(tree, mutant)
            print(f"[{index:>3}/{len(mutants)}] {outcome.status:<10} {mutant.id:<32} {outcome.seconds:6.1f}s",
                  flush=True)
            outcomes.append(outcome)
    return report(outcomes)


if __name__ == "__main__":
    raise SystemExit(main())
