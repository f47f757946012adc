"""Mode 2 behind nginx terminating TLS: the app is told https, the port the client used, and no gateway cookie.

The project's own ``nginx.conf`` rendered for mode 2 (``deploy/nginx/proxy-mode.conf``),
its listener switched to TLS with a throwaway certificate; the gateway (uvicorn,
in a thread) in front of ``tests/upstream_app.py``, which echoes what it receives.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.processes import Process, free_port
from devtools.stack import Ports, find_nginx, render_nginx_conf, write_nginx_prefix
from gateway.app import GatewayApp
from tests.conftest import make_settings
from tests.front.proxy.test_tls import make_pki
from tests.servers import UvicornThread

pytestmark = pytest.mark.nginx


@dataclasses.dataclass
class TLSSite:
    url: str
    port: int
    ca: Path


@pytest.fixture(scope="module")
def tls_site(tmp_path_factory: pytest.TempPathFactory, upstream: UvicornThread) -> Iterator[TLSSite]:
    base = tmp_path_factory.mktemp("nginx-tls")
    base.chmod(0o755)  # nginx's workers (unprivileged when run as root) read under it
    (base / "pki").mkdir()
    pki = make_pki(base / "pki")
    ports = Ports(nginx=free_port(), gateway=free_port(), app=upstream.port, provider=free_port())
    listen = f"listen 127.0.0.1:{ports.nginx};"
    conf = render_nginx_conf("proxy", ports)
    assert conf.count(listen) == 1
    conf = conf.replace(listen, f"listen 127.0.0.1:{ports.nginx} ssl;\n        ssl_certificate {pki / 'server.pem'};"
                                f"\n        ssl_certificate_key {pki / 'server.key'};")
    prefix = base / "prefix"
    prefix.mkdir()
    nginx_conf = write_nginx_prefix(prefix, conf)
    url = f"https://localhost:{ports.nginx}"
    settings = make_settings(base / "state", ports.nginx, mode="proxy", upstream_url=upstream.url,
                             public_paths=("/echo/public",))
    settings = dataclasses.replace(settings, public_url=url)
    nginx = Process([find_nginx(), "-p", f"{prefix}/", "-c", str(nginx_conf), "-e", "stderr", "-g", "daemon off;"])
    with UvicornThread(GatewayApp(settings), port=ports.gateway):
        nginx.start(wait_port=ports.nginx)
        try:
            yield TLSSite(url, ports.nginx, pki / "ca.pem")
        finally:
            nginx.close()


def test_behind_nginx_terminating_tls_the_app_is_told_https_and_the_port(tls_site: TLSSite) -> None:
    client_tls = ssl.create_default_context(cafile=str(tls_site.ca))
    response = httpx.get(tls_site.url + "/echo/public", verify=client_tls, timeout=15, headers={
        "X-Forwarded-Proto": "http", "X-Forwarded-Port": "1",
        "Cookie": "theme=dark; __Host-gw_session=stolen; gw_csrf=c; gw_state_x=s",
    })
    assert response.status_code == 200, response.text
    got: dict[str, list[str]] = {}
    for name, value in response.json()["headers"]:
        got.setdefault(name, []).append(value)
    assert got["x-forwarded-proto"] == ["https"]
    assert got["x-forwarded-port"] == [str(tls_site.port)]
    assert got["host"] == got["x-forwarded-host"] == [f"localhost:{tls_site.port}"]
    assert got["cookie"] == ["theme=dark"]
