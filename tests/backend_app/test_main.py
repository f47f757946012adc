from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from backend_app.__main__ import build_settings, parse_args

ROOT = Path(__file__).resolve().parents[2]


def test_flags_override_the_environment() -> None:
    args = parse_args(["--proof-key", "from-flag", "--state-dir", "/tmp/mb", "--proof-max-age", "7", "--port", "9"])
    settings = build_settings(args, {"MICROBLOG_PROOF_KEY": "from-env", "MICROBLOG_PROOF_MAX_AGE": "3"})
    assert str(settings.proof_key) == "from-flag"
    assert settings.state_dir == Path("/tmp/mb")
    assert settings.proof_max_age == 7
    assert args.port == 9


def test_environment_is_used_without_flags() -> None:
    settings = build_settings(parse_args([]), {"MICROBLOG_PROOF_KEY": "from-env"})
    assert str(settings.proof_key) == "from-env"


def test_start_without_proof_key_exits_2_with_one_line() -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("MICROBLOG_")}
    result = subprocess.run(
        [sys.executable, "-m", "backend_app", "--port", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == ("error: invalid configuration:"
                             " MICROBLOG_PROOF_KEY is not set: use the gateway's proof_key\n")
