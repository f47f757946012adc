"""The ``store`` setting: checked at load with one line, shown masked, and a bad Redis stops ``serve``."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.redis_server import RedisServer
from gateway.errors import ConfigError
from gateway.settings import load_settings
from gateway.store import describe
from gateway.store.location import masked, parse_redis
from tests.cli.test_main import KEYS, config, run

ENV = {"GATEWAY_PUBLIC_URL": "https://a.example", "GATEWAY_SECRET_KEYS": "s" * 40, "GATEWAY_PROOF_KEY": "p" * 40}


def problems_of(store: str) -> str:
    with pytest.raises(ConfigError) as raised:
        load_settings(None, {**ENV, "GATEWAY_STORE": store})
    return str(raised.value)


@pytest.mark.parametrize(("store", "expected"), [
    ("http://cache:6379", "store 'http://cache:6379': the scheme must be redis://, rediss:// or unix://"),
    ("redis://:hunter2-secret@cache:6379/zero",
     "store 'redis://:***@cache:6379/zero': the path must be a database"),
    ("redis://:hunter2-secret@cache:99999/0", "store 'redis://:***@cache:99999/0' is not a valid URL"),
    ("redis://:hunter2-secret@[::1/0", "store 'redis://***' is not a valid URL"),
    ("redis://cache/0?timeout=0", "timeout must be a number of seconds in (0, 60]"),
    ("redis://cache/0?timeout=abc", "timeout must be a number of seconds in (0, 60]"),
    ("redis://cache/0?socket_timeout=1", "unknown parameter 'socket_timeout'"),
    ("unix://relative.sock", "a unix:// URL names a socket path"),
    ("redis:///0", "no host"),
])
def test_a_bad_store_url_is_one_problem_that_never_shows_the_password(store: str, expected: str) -> None:
    message = problems_of(store)
    assert expected in message
    assert "hunter2-secret" not in message


def test_a_good_store_setting_is_kept_and_hidden_from_repr(tmp_path: Path) -> None:
    url = "rediss://gw:hunter2-secret@cache.internal:6380/3?timeout=0.5&prefix=site-a:&ssl_ca_certs=/etc/ca.pem"
    settings = load_settings(None, {**ENV, "GATEWAY_STORE": url})
    assert settings.store == url and "hunter2-secret" not in repr(settings)
    location = parse_redis(url)
    assert (location.timeout, location.prefix) == (0.5, "site-a:")
    assert location.url == "rediss://gw:hunter2-secret@cache.internal:6380/3?ssl_ca_certs=%2Fetc%2Fca.pem"
    assert describe(url, tmp_path) == ("Redis rediss://gw:***@cache.internal:6380/3"
                                       "?timeout=0.5&prefix=site-a:&ssl_ca_certs=/etc/ca.pem")
    assert masked("unix://:pw@/run/redis.sock?db=2") == "unix://:***@/run/redis.sock?db=2"
    assert describe("", tmp_path) == f"SQLite {tmp_path / 'gateway.sqlite3'}"
    assert load_settings(None, {**ENV, "GATEWAY_STORE": str(tmp_path / "x.db")}).sqlite_path == tmp_path / "x.db"


def test_check_config_shows_the_store_with_its_password_masked(tmp_path: Path) -> None:
    path = config(tmp_path, KEYS + 'store = "redis://:hunter2-secret@cache.internal:6379/0"\n')
    result = run("check-config", "--config", path)
    assert result.returncode == 0, result.stderr
    assert "openid-gateway: store: Redis redis://:***@cache.internal:6379/0" in result.stdout
    assert "hunter2-secret" not in result.stdout + result.stderr


def test_serve_refuses_a_redis_that_may_evict_keys_with_one_line(redis_server: RedisServer, redis_url: str,
                                                                  tmp_path: Path) -> None:
    path = config(tmp_path, KEYS + f'store = "{redis_url}"\nstate_dir = "{tmp_path}"\n')
    with redis_server.client() as admin:
        admin.config_set("maxmemory-policy", "volatile-lru")
        try:
            result = run("serve", "--config", path)
        finally:
            admin.config_set("maxmemory-policy", "noeviction")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "maxmemory-policy is 'volatile-lru'; set it to noeviction" in lines[0], lines


def test_serve_without_its_redis_stops_with_one_line_and_no_password(tmp_path: Path) -> None:
    from devtools.processes import free_port

    url = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"
    result = run("serve", "--config", config(tmp_path, KEYS + f'store = "{url}"\n'))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("openid-gateway: the store is unavailable: Redis store "
                                                   "redis://:***@127.0.0.1:"), lines
    assert "hunter2-secret" not in result.stderr


def test_sessions_commands_on_an_unreachable_redis_say_so_in_one_line(tmp_path: Path) -> None:
    from devtools.processes import free_port

    url = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"
    result = run("sessions", "list", "--config", config(tmp_path, KEYS + f'store = "{url}"\n'))
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "the store is unavailable" in lines[0] and "hunter2-secret" not in lines[0], lines


def test_sessions_commands_work_on_redis(redis_url: str, tmp_path: Path) -> None:
    from gateway.store import SessionRecord
    from gateway.store.redis import RedisStore

    store = RedisStore(redis_url)
    store.create_session(SessionRecord("s-1", "https://op/id/erin", 1.0, 4e9, None, "UA", "127.0.0.1"))
    store.close()
    path = config(tmp_path, KEYS + f'store = "{redis_url}"\n')
    listed = run("sessions", "list", "--config", path)
    assert listed.returncode == 0 and "https://op/id/erin" in listed.stdout, listed.stderr
    revoked = run("sessions", "revoke", "--user", "https://op/id/erin", "--config", path)
    assert revoked.returncode == 0 and "revoked 1 session" in revoked.stdout, revoked.stderr
