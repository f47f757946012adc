"""Secrets from files, and the variables Kubernetes adds: what the configuration takes from where.

``secret_keys_file`` / ``GATEWAY_SECRET_KEYS_FILE`` (and ``proof_key``, ``store``)
name a file holding the secret, so that it sits neither in the environment nor in
the TOML file. Every problem with such a file is one line naming the setting and
the path, never the contents; a file (or the assertion key file, or a
``client_secret_file``) that other users may read stops start-up.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.settings import load_settings

KEY_1, KEY_2, PROOF = "k" * 40, "K" * 40, "p" * 40
BASE = {"GATEWAY_PUBLIC_URL": "https://a.example"}
# Everything Kubernetes puts in a pod's environment for a Service "gateway" with ports named http and
# metrics, and for a Service "gateway-redis" (a Helm release's Redis) in the same namespace.
SERVICE_LINKS = {
    "GATEWAY_SERVICE_HOST": "10.0.0.7", "GATEWAY_SERVICE_PORT": "9000", "GATEWAY_SERVICE_PORT_HTTP": "9000",
    "GATEWAY_SERVICE_PORT_METRICS": "9100", "GATEWAY_PORT": "tcp://10.0.0.7:9000",
    "GATEWAY_PORT_9000_TCP": "tcp://10.0.0.7:9000", "GATEWAY_PORT_9000_TCP_ADDR": "10.0.0.7",
    "GATEWAY_PORT_9000_TCP_PORT": "9000", "GATEWAY_PORT_9000_TCP_PROTO": "tcp",
    "GATEWAY_PORT_9100_TCP": "tcp://10.0.0.7:9100", "GATEWAY_PORT_9100_TCP_ADDR": "10.0.0.7",
    "GATEWAY_PORT_9100_TCP_PORT": "9100", "GATEWAY_PORT_9100_TCP_PROTO": "tcp",
    "GATEWAY_REDIS_SERVICE_HOST": "10.0.0.9", "GATEWAY_REDIS_SERVICE_PORT": "6379",
    "GATEWAY_REDIS_PORT": "tcp://10.0.0.9:6379", "GATEWAY_REDIS_PORT_6379_TCP_ADDR": "10.0.0.9",
}


def secret_file(tmp_path: Path, name: str, text: str, mode: int = 0o600) -> str:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def problems(env: dict[str, str], toml: str = "", tmp_path: Path | None = None) -> list[str]:
    config = None
    if tmp_path is not None:
        config = tmp_path / "gateway.toml"
        config.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(config, env)
    return info.value.problems


# -- secrets from files ----------------------------------------------------------------------------


def test_every_secret_setting_can_come_from_a_file_named_in_the_environment(tmp_path: Path) -> None:
    env = {**BASE, "GATEWAY_SECRET_KEYS_FILE": secret_file(tmp_path, "keys", f"{KEY_1}\n\n{KEY_2}\n"),
           "GATEWAY_PROOF_KEY_FILE": secret_file(tmp_path, "proof", PROOF + "\n"),
           "GATEWAY_STORE_FILE": secret_file(tmp_path, "store", "redis://:hunter2-hunter2@127.0.0.1:6379/0\n")}
    settings = load_settings(None, env)
    # One key per line, newest last (the newest signs); the trailing newline is not part of a secret.
    assert settings.secret_key_values() == [KEY_1, KEY_2]
    assert str(settings.proof_key) == PROOF
    assert settings.store == "redis://:hunter2-hunter2@127.0.0.1:6379/0"
    assert "hunter2" not in repr(settings) and KEY_1 not in repr(settings)


def test_every_secret_setting_can_come_from_a_file_named_in_the_toml_file(tmp_path: Path) -> None:
    toml = (f'public_url = "https://a.example"\n'
            f'secret_keys_file = "{secret_file(tmp_path, "keys", KEY_1)}"\n'
            f'proof_key_file = "{secret_file(tmp_path, "proof", PROOF)}"\n'
            f'store_file = "{secret_file(tmp_path, "store", str(tmp_path / "db.sqlite3"))}"\n')
    config = tmp_path / "gateway.toml"
    config.write_text(toml)
    settings = load_settings(config, {})
    assert settings.secret_key_values() == [KEY_1] and str(settings.proof_key) == PROOF
    assert settings.sqlite_path == tmp_path / "db.sqlite3"


def test_a_file_in_the_environment_overrides_the_value_in_the_toml_file(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f'public_url = "https://a.example"\nsecret_keys = ["{"x" * 40}"]\nproof_key = "{PROOF}"\n')
    settings = load_settings(config, {"GATEWAY_SECRET_KEYS_FILE": secret_file(tmp_path, "keys", KEY_1)})
    assert settings.secret_key_values() == [KEY_1]


@pytest.mark.parametrize("key", ["secret_keys", "proof_key", "store"])
def test_a_value_and_a_file_for_the_same_secret_is_one_error(tmp_path: Path, key: str) -> None:
    path = secret_file(tmp_path, key, KEY_1)
    env = {**BASE, "GATEWAY_SECRET_KEYS": KEY_2, "GATEWAY_PROOF_KEY": PROOF,
           f"GATEWAY_{key.upper()}_FILE": path}
    env.setdefault(f"GATEWAY_{key.upper()}", "")
    assert problems(env) == [f"give GATEWAY_{key.upper()} or GATEWAY_{key.upper()}_FILE, not both"]
    toml = f'{key} = "{KEY_2}"\n{key}_file = "{path}"\n'
    found = problems({**BASE, "GATEWAY_SECRET_KEYS": KEY_2, "GATEWAY_PROOF_KEY": PROOF}, toml, tmp_path)
    assert found == [f"give {key} or {key}_file, not both"]


def test_a_missing_unreadable_or_empty_secret_file_is_one_line_naming_the_setting_and_the_path(
        tmp_path: Path) -> None:
    env = {**BASE, "GATEWAY_SECRET_KEYS_FILE": str(tmp_path / "missing"),
           "GATEWAY_PROOF_KEY_FILE": str(tmp_path),  # a directory
           "GATEWAY_STORE_FILE": secret_file(tmp_path, "store", "\n \n")}
    assert problems(env) == [
        f"GATEWAY_SECRET_KEYS_FILE '{tmp_path / 'missing'}' cannot be read: No such file or directory",
        f"GATEWAY_PROOF_KEY_FILE '{tmp_path}' cannot be read: Is a directory",
        f"GATEWAY_STORE_FILE '{tmp_path / 'store'}' is empty",
    ]
    found = problems(BASE, 'secret_keys_file = 3\nproof_key_file = ""\n', tmp_path)
    assert found == ["secret_keys_file must be the path of a file (a string)",
                     "proof_key_file must be the path of a file (a string)"]


def test_a_secret_file_other_users_may_read_stops_start_up_with_the_command_that_fixes_it(tmp_path: Path) -> None:
    readable = secret_file(tmp_path, "keys", KEY_1, 0o644)
    writable = secret_file(tmp_path, "proof", PROOF, 0o602)
    found = problems({**BASE, "GATEWAY_SECRET_KEYS_FILE": readable, "GATEWAY_PROOF_KEY_FILE": writable})
    assert found == [
        f"GATEWAY_SECRET_KEYS_FILE '{readable}' is open to every user of this machine (mode 0644):"
        f" chmod o-rwx {readable}",
        f"GATEWAY_PROOF_KEY_FILE '{writable}' is open to every user of this machine (mode 0602):"
        f" chmod o-rwx {writable}",
    ]
    # The group may read it (root:openid-gateway 0640), and systemd's credentials are 0400.
    for mode in (0o640, 0o400):
        Path(readable).chmod(mode)
        Path(writable).chmod(mode)
        assert load_settings(None, {**BASE, "GATEWAY_SECRET_KEYS_FILE": readable,
                                    "GATEWAY_PROOF_KEY_FILE": writable}).secret_key_values() == [KEY_1]


def test_a_client_secret_file_other_users_may_read_stops_start_up(tmp_path: Path) -> None:
    path = secret_file(tmp_path, "sso-secret", "client-secret-value", 0o644)
    providers = ('[{"type": "oidc", "name": "SSO", "issuer": "https://sso.example", "client_id": "gw",'
                 f' "client_secret_file": "{path}"}}]')
    env = {**BASE, "GATEWAY_SECRET_KEYS": KEY_1, "GATEWAY_PROOF_KEY": PROOF, "GATEWAY_PROVIDERS": providers}
    found = problems(env)
    assert len(found) == 1 and found[0].endswith(
        f"oidc provider 'SSO': client_secret_file '{path}' is open to every user of this machine (mode 0644):"
        f" chmod o-rwx {path}"), found
    Path(path).chmod(0o600)
    assert str(load_settings(None, env).providers[0].client_secret) == "client-secret-value"


def test_an_assertion_key_file_other_users_may_read_stops_start_up(tmp_path: Path) -> None:
    from gateway.gate.signing_keys import generate_key, validated, write_key_file

    path = tmp_path / "assertion-keys.json"
    write_key_file(path, validated([generate_key()]), replace=False)
    env = {**BASE, "GATEWAY_SECRET_KEYS": KEY_1, "GATEWAY_PROOF_KEY": PROOF,
           "GATEWAY_IDENTITY_ASSERTION": "jwt", "GATEWAY_ASSERTION_KEYS_FILE": str(path)}
    assert load_settings(None, env).assertion_keys_file == str(path)
    path.chmod(0o644)
    assert problems(env) == [f"assertion_keys_file '{path}' is open to every user of this machine (mode 0644):"
                             f" chmod o-rwx {path}"]


def test_no_problem_message_shows_what_a_secret_file_holds(tmp_path: Path) -> None:
    weak, url = "weak-secret-in-a-file", "mysql://root:hunter2-hunter2@db.example/x"
    env = {**BASE, "GATEWAY_SECRET_KEYS_FILE": secret_file(tmp_path, "keys", weak),
           "GATEWAY_PROOF_KEY_FILE": secret_file(tmp_path, "proof", weak),
           "GATEWAY_STORE_FILE": secret_file(tmp_path, "store", url)}
    text = "; ".join(problems(env))
    assert "secret_keys[0] is weak" in text and "proof_key is weak" in text and "store '" in text
    assert weak not in text and "hunter2" not in text


def test_a_misspelt_file_setting_gets_a_suggestion(tmp_path: Path) -> None:
    found = problems({**BASE, "GATEWAY_SECRET_KEY_FILE": "/x", "GATEWAY_PROOF_KEY": PROOF})
    assert "unknown environment variable GATEWAY_SECRET_KEY_FILE (did you mean GATEWAY_SECRET_KEYS_FILE?)" in found


# -- Kubernetes service links --------------------------------------------------------------------


def test_the_variables_kubernetes_adds_for_a_service_named_gateway_are_ignored(tmp_path: Path) -> None:
    env = {**BASE, "GATEWAY_SECRET_KEYS": KEY_1, "GATEWAY_PROOF_KEY": PROOF, **SERVICE_LINKS}
    assert load_settings(None, env).port == 9000  # GATEWAY_PORT=tcp://... is the Service's address, not ours
    config = tmp_path / "gateway.toml"
    config.write_text("port = 9200\n")
    assert load_settings(config, env).port == 9200


def test_a_number_in_gateway_port_is_the_port_setting_even_among_service_links() -> None:
    env = {**BASE, "GATEWAY_SECRET_KEYS": KEY_1, "GATEWAY_PROOF_KEY": PROOF, **SERVICE_LINKS, "GATEWAY_PORT": "9100"}
    assert load_settings(None, env).port == 9100


def test_only_the_service_link_shapes_are_ignored_typos_stay_errors() -> None:
    env = {**BASE, "GATEWAY_SECRET_KEYS": KEY_1, "GATEWAY_PROOF_KEY": PROOF, **SERVICE_LINKS,
           "GATEWAY_SECRET_KEY": "x", "GATEWAY_SERVICE_HOSTNAME": "x", "GATEWAY_PORT_9000_TCP_ADDRESS": "x",
           "GATEWAY_PORT_HTTP": "tcp://10.0.0.7:9000", "GATEWAY_REDIS_PORT_6379": "x"}
    found = problems(env)
    assert found == [
        "unknown environment variable GATEWAY_SECRET_KEY (did you mean GATEWAY_SECRET_KEYS?)",
        "unknown environment variable GATEWAY_SERVICE_HOSTNAME",
        "unknown environment variable GATEWAY_PORT_9000_TCP_ADDRESS",
        "unknown environment variable GATEWAY_PORT_HTTP",
        "unknown environment variable GATEWAY_REDIS_PORT_6379",
    ]
    broken = problems({**BASE, "GATEWAY_SECRET_KEYS": KEY_1, "GATEWAY_PROOF_KEY": PROOF,
                       "GATEWAY_PORT": "tcp://10.0.0.7"})
    assert broken == ["GATEWAY_PORT must be a whole number, got 'tcp://10.0.0.7'"]


def test_the_redis_client_s_tls_key_in_the_store_url_must_not_be_open_to_other_users(tmp_path: Path) -> None:
    key = secret_file(tmp_path, "redis-client.key", "-----BEGIN PRIVATE KEY-----\n", 0o644)
    env = {**BASE, "GATEWAY_SECRET_KEYS": KEY_1, "GATEWAY_PROOF_KEY": PROOF,
           "GATEWAY_STORE": f"rediss://gw:pw@cache.internal:6380/0?ssl_certfile=/c.pem&ssl_keyfile={key}"}
    assert problems(env) == [f"store: ssl_keyfile '{key}' is open to every user of this machine (mode 0644):"
                             f" chmod o-rwx {key}"]
    Path(key).chmod(0o640)
    assert load_settings(None, env).store.endswith(f"ssl_keyfile={key}")
    missing = problems({**env, "GATEWAY_STORE": "rediss://cache.internal:6380/0?ssl_keyfile=/nonexistent/k.pem"})
    assert missing == ["store: ssl_keyfile '/nonexistent/k.pem' cannot be read: No such file or directory"]
