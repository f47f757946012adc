"""What operators copy to run several instances: the nginx upstream, the systemd template, the Redis config.

Each file is used for real where this machine allows it: nginx checks the
upstream example (``nginx -t``), ``redis-server`` runs the Redis configuration
and the gateway's store opens on it; the systemd template, which needs an
installed gateway to verify, is compared with the single unit it must stay as
hardened as.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from devtools.processes import Process, free_port
from devtools.redis_server import find_redis_server
from devtools.stack import (
    MODES,
    NGINX_CONF,
    PROJECT_ROOT,
    UPSTREAM_BLOCK,
    Mode,
    Ports,
    find_nginx,
    render_nginx_conf,
    write_nginx_prefix,
)
from gateway.store import open_store

DEPLOY = PROJECT_ROOT / "deploy"
REDIS_CONF = DEPLOY / "redis" / "openid-gateway.conf"
SINGLE_UNIT = DEPLOY / "systemd" / "openid-gateway.service"
INSTANCE_UNIT = DEPLOY / "systemd" / "openid-gateway@.service"
PORTS = Ports(nginx=18080, gateway=19000, app=18000, provider=18001)


def nginx_t(prefix: Path, text: str) -> subprocess.CompletedProcess[str]:
    conf = write_nginx_prefix(prefix, text)
    return subprocess.run([find_nginx(), "-t", "-p", f"{prefix}/", "-c", str(conf), "-e", "stderr"],
                          capture_output=True, text=True, timeout=30)


def test_nginx_conf_with_the_upstream_example_included_passes_nginx_t(tmp_path: Path) -> None:
    """As the example's comment says: include it in place of nginx.conf's one-server upstream."""
    text = NGINX_CONF.read_text()
    start = text.index(UPSTREAM_BLOCK)
    text = text[:start] + "include deploy/nginx/gateway-upstream.conf;" + text[text.index("}", start) + 1:]
    result = nginx_t(tmp_path, text)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("mode", MODES)
def test_the_stacks_rendering_for_three_instances_passes_nginx_t(tmp_path: Path, mode: Mode) -> None:
    text = render_nginx_conf(mode, PORTS, gateway_ports=(19000, 19001, 19002))
    block = text[text.index(UPSTREAM_BLOCK):]
    block = block[:block.index("}")]
    assert [line.split()[1] for line in block.splitlines() if line.strip().startswith("server ")] == [
        "127.0.0.1:19000", "127.0.0.1:19001", "127.0.0.1:19002"]
    assert "max_fails=1 fail_timeout=5s" in block and "keepalive" in block
    assert "hash" not in block and "sticky" not in block  # round robin: any instance answers any request
    result = nginx_t(tmp_path, text)
    assert result.returncode == 0, result.stderr


def service_lines(unit: Path) -> list[str]:
    """The [Service] section's directives, in order."""
    lines, inside = [], False
    for line in unit.read_text().splitlines():
        if line.startswith("["):
            inside = line == "[Service]"
        elif inside and line and not line.startswith("#"):
            lines.append(line)
    return lines


def test_the_instance_template_is_hardened_like_the_single_unit_and_takes_its_port_from_the_instance() -> None:
    single, template = service_lines(SINGLE_UNIT), service_lines(INSTANCE_UNIT)
    hardening = single[single.index("NoNewPrivileges=yes"):]
    assert hardening and [line for line in template if line in hardening] == hardening
    shared = ("ExecStart", "User", "Group", "StateDirectory", "UMask", "RestartPreventExitStatus")
    assert [line for line in single if line.split("=", 1)[0] in shared] == [
        line for line in template if line.split("=", 1)[0] in shared]
    assert "Environment=GATEWAY_PORT=%i" in template
    assert "Environment=GATEWAY_UDS=" in template  # TCP on that port, whatever uds gateway.toml names
    # The instance's own file comes after the shared secrets: it wins.
    files = [line for line in template if line.startswith("EnvironmentFile=")]
    assert files == ["EnvironmentFile=-/etc/openid-gateway/secrets.env",
                     "EnvironmentFile=-/etc/openid-gateway/instance-%i.env"]


@pytest.fixture
def redis_with_the_shipped_conf(tmp_path: Path) -> Iterator[str]:
    """redis-server running deploy/redis/openid-gateway.conf (only port, dir and log taken over here)."""
    port = free_port()
    argv = [find_redis_server(), str(REDIS_CONF), "--port", str(port), "--dir", str(tmp_path),
            "--daemonize", "no", "--logfile", ""]
    with Process(argv, cwd=tmp_path, log_path=tmp_path / "redis.log", name="redis-server") as server:
        server.wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"


def test_the_shipped_redis_conf_persists_never_evicts_and_the_gateway_runs_on_it(
        redis_with_the_shipped_conf: str, tmp_path: Path) -> None:
    with redis.Redis.from_url(redis_with_the_shipped_conf, decode_responses=True, socket_timeout=5) as client:
        config = {name: client.config_get(name)[name]
                  for name in ("appendonly", "appendfsync", "maxmemory-policy", "maxmemory", "protected-mode")}
    assert config == {"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction",
                      "maxmemory": str(512 * 1024 * 1024), "protected-mode": "yes"}
    store = open_store(redis_with_the_shipped_conf, tmp_path / "state")  # checks the eviction policy
    try:
        store.ping()
    finally:
        store.close()
