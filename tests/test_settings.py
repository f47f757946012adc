"""Configuration: every problem reported at once, one clear line, exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.settings import load_settings

GOOD = {"GATEWAY_SECRET_KEYS": "s" * 40, "GATEWAY_PROOF_KEY": "p" * 40}


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "g.toml"
    config.write_text('public_url = "https://a.example"\nworkers = 2\n[[providers]]\nname = "X"\nidentifier = "https://x.example/"\n')
    settings = load_settings(config, {**GOOD, "GATEWAY_WORKERS": "3"})
    assert settings.public_url == "https://a.example" and settings.workers == 3 and settings.https
    assert [p.name for p in settings.providers] == ["X"]
    assert "s" * 40 not in repr(settings)  # secrets are masked


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, {"GATEWAY_PUBLIC_URL": "ftp://x", "GATEWAY_SECRET_KEYS": "short", "GATEWAY_MODE": "proxy"})
    text = str(info.value)
    assert text.startswith("invalid configuration: ")
    for fragment in ("public_url", "secret_keys[0] is weak", "proof_key is missing", "upstream_url"):
        assert fragment in text


def test_unknown_keys_and_bad_types_are_errors(tmp_path: Path) -> None:
    config = tmp_path / "g.toml"
    config.write_text('publik_url = "x"\nworkers = "many"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(config, {**GOOD, "GATEWAY_TYPO": "1"})
    assert "publik_url" in str(info.value) and "GATEWAY_TYPO" in str(info.value) and "workers" in str(info.value)


def test_dev_mode_generates_missing_keys() -> None:
    settings = load_settings(None, {"GATEWAY_DEV_MODE": "1"})
    assert settings.secret_keys and settings.proof_key is not None


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_bad_config_stops_start_up_with_one_line(tmp_path: Path) -> None:
    result = run_cli("serve", env={"PATH": "/usr/bin:/bin", "GATEWAY_PUBLIC_URL": "not a url"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("openid-gateway: invalid configuration:"), result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_validates_without_starting(tmp_path: Path) -> None:
    config = tmp_path / "g.toml"
    config.write_text(f'secret_keys = ["{"s" * 40}"]\nproof_key = "{"p" * 40}"\n')
    result = run_cli("check-config", "--config", str(config), env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0 and "configuration OK" in result.stdout
    missing = run_cli("check-config", "--config", str(tmp_path / "missing.toml"), env={"PATH": "/usr/bin:/bin"})
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_the_example_config_validates_once_its_keys_are_replaced() -> None:
    example = Path(__file__).parents[1] / "deploy" / "gateway.example.toml"
    with pytest.raises(ConfigError, match="REPLACE-ME"):
        load_settings(example, {})
    settings = load_settings(example, GOOD)
    assert settings.mode == "auth_request"


def test_every_setting_is_documented_in_the_readme_and_the_example() -> None:
    import dataclasses

    from gateway.settings import Settings

    root = Path(__file__).parents[1]
    readme = (root / "README.md").read_text()
    example = (root / "deploy" / "gateway.example.toml").read_text()
    for field in dataclasses.fields(Settings):
        assert f"`{field.name}`" in readme, f"README's configuration reference lacks {field.name}"
        assert f"{field.name} =" in example or f"[[{field.name}]]" in example, f"example lacks {field.name}"


def test_cookie_names_must_be_tokens() -> None:
    with pytest.raises(ConfigError, match="session_cookie"):
        load_settings(None, {**GOOD, "GATEWAY_SESSION_COOKIE": "my session"})
