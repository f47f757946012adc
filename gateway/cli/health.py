"""``openid-gateway health``: ask the running gateway's ``/_gateway/health``; exit status 0 when it says 200.

The container image's ``HEALTHCHECK`` runs it (``Containerfile``). It finds the gateway where ``serve``
listens, from the same settings (the mounted TOML and the ``GATEWAY_*`` variables), so a ``port`` set in
the TOML is probed where the gateway really is; a wildcard ``host`` (``0.0.0.0``, ``::``) is probed on
loopback, and with ``uds`` the Unix socket is. The image has no curl or wget: the standard library's HTTP
client, which (unlike urllib) never goes through an ``http_proxy`` from the environment.
"""

from __future__ import annotations

import http.client
import socket
import sys

from gateway.paths import Paths
from gateway.settings import Settings

EXIT_UNHEALTHY = 1
# The probe's connect and read time: docs/container.md's HEALTHCHECK --timeout is longer.
TIMEOUT = 3.0
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104 (what serve may bind to)


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over the Unix socket ``serve`` listens on (setting ``uds``)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def probe_address(settings: Settings) -> tuple[str, int]:
    """Where ``serve`` answers over TCP: its ``host`` and ``port``, a wildcard host as loopback."""
    return _WILDCARDS.get(settings.host, settings.host), settings.port


def run(settings: Settings, timeout: float = TIMEOUT) -> int:
    """Probe ``/_gateway/health``: 0 on ``200``, else one line on stderr and :data:`EXIT_UNHEALTHY`."""
    health_path = Paths(settings.route_prefix).health
    connection: http.client.HTTPConnection
    if settings.uds:
        shown = f"unix:{settings.uds} {health_path}"
        connection = UnixHTTPConnection(settings.uds, timeout)
    else:
        host, port = probe_address(settings)
        shown = f"http://{f'[{host}]' if ':' in host else host}:{port}{health_path}"
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", health_path)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        print(f"openid-gateway: unhealthy: {shown}: {exc}", file=sys.stderr)
        return EXIT_UNHEALTHY
    finally:
        connection.close()
    if status != 200:
        print(f"openid-gateway: unhealthy: {shown} answered {status}", file=sys.stderr)
        return EXIT_UNHEALTHY
    return 0
