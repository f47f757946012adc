"""The ``openid-gateway`` console script, run as an operator runs it: one line, exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import gateway

ROOT = Path(__file__).parents[2]
# The console script installed next to this interpreter (.venv/bin/openid-gateway, .venv-3.13/bin/...).
SCRIPT = Path(sys.executable).parent / "openid-gateway"
KEYS = f'secret_keys = ["{"s" * 40}"]\nproof_key = "{"p" * 40}"\npublic_url = "https://a.example"\n'


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH: the code of this tree, whichever tree the virtualenv was installed from.
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env={**base, **(env or {})},
                          timeout=60)


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return str(path)


def test_the_console_script_is_installed() -> None:
    assert SCRIPT.is_file(), f"{SCRIPT} is missing: pip install -e '.[test]'"


def test_version_prints_the_one_version_the_package_and_its_metadata_share() -> None:
    result = run("--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"openid-gateway {gateway.__version__}\n", "")
    assert version("openid-gateway") == gateway.__version__


def test_a_bad_config_stops_start_up_with_one_line_naming_every_problem(tmp_path: Path) -> None:
    path = config(tmp_path, 'secret_key = ["x"]\nport = "19000x"\nsecret_keys = "a string"\n')
    result = run("serve", "--config", path, env={"GATEWAY_PUBLIK_URL": "x"})
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0] == (
        "openid-gateway: invalid configuration: unknown setting secret_key (did you mean secret_keys?);"
        " port must be a whole number, got '19000x';"
        ' secret_keys must be a list of strings, e.g. ["key1", "key2"], got a string;'
        " unknown environment variable GATEWAY_PUBLIK_URL (did you mean GATEWAY_PUBLIC_URL?);"
        " public_url is missing: set it to the address browsers use, e.g. https://example.com;"
        " proof_key is missing: set GATEWAY_PROOF_KEY (shared with the protected app)"
    )


def test_check_config_validates_without_starting(tmp_path: Path) -> None:
    result = run("check-config", "--config", config(tmp_path, KEYS))
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith(
        "openid-gateway: configuration OK (mode auth_request, public URL https://a.example)\n")
    missing = run("check-config", "--config", str(tmp_path / "missing.toml"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_check_config_warns_about_a_provider_the_ssrf_guard_will_refuse(tmp_path: Path) -> None:
    path = config(tmp_path, KEYS + '[[providers]]\nname = "Local"\nidentifier = "http://127.0.0.1:8001/openid"\n')
    result = run("check-config", "--config", path)
    assert result.returncode == 0 and "configuration OK" in result.stdout
    assert result.stderr == (
        "openid-gateway: warning: provider 'Local' (http://127.0.0.1:8001/openid) is on a loopback or private"
        " address and allow_private_addresses = false: its button will fail; set allow_private_addresses = true"
        " (development only) or remove the provider\n"
    )
    allowed = run("check-config", "--config", path, env={"GATEWAY_ALLOW_PRIVATE_ADDRESSES": "true"})
    assert allowed.returncode == 0 and allowed.stderr == ""


def test_serve_refuses_to_face_clients_without_a_proxy_in_front(tmp_path: Path) -> None:
    result = run("serve", "--config", config(tmp_path, KEYS + 'host = "0.0.0.0"\n'))
    assert result.returncode == 2
    assert "host = '0.0.0.0' is not a loopback address" in result.stderr and "behind_proxy = true" in result.stderr


def test_check_config_takes_secrets_from_files_and_never_prints_them(tmp_path: Path) -> None:
    files = {"secret_keys": "k" * 40, "proof_key": "p" * 40, "store": "redis://:hunter2-hunter2@127.0.0.1:6379/0"}
    env = {"GATEWAY_PUBLIC_URL": "https://a.example"}
    for name, secret in files.items():
        path = tmp_path / name
        path.write_text(secret + "\n")
        path.chmod(0o600)
        env[f"GATEWAY_{name.upper()}_FILE"] = str(path)
    result = run("check-config", env=env)
    assert result.returncode == 0, result.stderr
    assert "store: Redis redis://:***@127.0.0.1:6379/0" in result.stdout
    for secret in ("k" * 40, "p" * 40, "hunter2"):
        assert secret not in result.stdout + result.stderr
    (tmp_path / "proof_key").chmod(0o644)
    refused = run("check-config", env=env)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert f"chmod o-rwx {tmp_path / 'proof_key'}" in refused.stderr and "p" * 40 not in refused.stderr


def test_check_config_names_the_uris_to_register_under_the_route_prefix(tmp_path: Path) -> None:
    oidc = ('[[providers]]\ntype = "oidc"\nname = "Example"\nissuer = "https://id.example"\nclient_id = "c"\n'
            'client_secret = "s"\nlogout_at_provider = true\n')
    result = run("check-config", "--config", config(tmp_path, KEYS + 'route_prefix = "/sso"\n' + oidc))
    assert result.returncode == 0, result.stderr
    assert "redirect URI to register with OpenID Connect providers: https://a.example/sso/callback\n" in result.stdout
    assert "back-channel logout URI for OpenID Connect providers: https://a.example/sso/backchannel-logout\n" in (
        result.stdout)
    assert "post-logout redirect URI (logout_at_provider): https://a.example/sso/login?m=signed-out\n" in (
        result.stdout)
