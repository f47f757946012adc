"""Proxy mode with an https upstream: certificates verified, a CA bundle setting, clear failures.

A throwaway CA and a server certificate for ``localhost`` are made with the
openssl command at test time; ``tests/upstream_app.py`` serves TLS with them.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.errors import ConfigError
from gateway.settings import load_settings
from tests import upstream_app
from tests.front.proxy.test_proxy import ProxyProcess
from tests.servers import UvicornThread


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_pki(d: Path) -> Path:
    """In ``d``: ca.pem signs server.pem (``localhost`` only); other-ca.pem signs nothing here."""
    assert shutil.which("openssl"), "the TLS tests need the openssl command (make test installs it)"
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=Test {ca}",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
                "-keyout", str(d / f"{ca}.key"), "-out", str(d / f"{ca}.pem"))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"))
    (d / "server.ext").write_text(
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    openssl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
            "-CAcreateserial", "-days", "2", "-extfile", str(d / "server.ext"), "-out", str(d / "server.pem"))
    return d


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_upstream(pki: Path) -> Iterator[UvicornThread]:
    with UvicornThread(upstream_app.app, ssl_keyfile=str(pki / "server.key"),
                       ssl_certfile=str(pki / "server.pem")) as server:
        yield server


def get_through(upstream_url: str, ca_bundle: Path | None, path: str = "/hello") -> tuple[httpx.Response, str]:
    settings = {"upstream_ca_bundle": str(ca_bundle)} if ca_bundle else {}
    proxy = ProxyProcess(upstream_url, **settings)
    with proxy, httpx.Client(base_url=proxy.url, timeout=30) as client:
        response = client.get(path)
        log = proxy.stop()
    return response, log


def test_an_https_upstream_signed_by_the_ca_bundle_is_verified_and_used(tls_upstream: UvicornThread,
                                                                          pki: Path) -> None:
    response, log = get_through(f"https://localhost:{tls_upstream.port}", pki / "ca.pem", "/echo")
    assert response.status_code == 200
    assert response.json()["path"] == "/echo"
    assert log == ""


@pytest.mark.parametrize(
    ("host", "bundle", "problem"),
    [
        ("localhost", None, "unable to get local issuer certificate"),  # the system's CAs do not know ours
        ("localhost", "other-ca.pem", "unable to get local issuer certificate"),
        ("127.0.0.1", "ca.pem", "IP address mismatch"),  # the certificate names localhost only
    ],
)
def test_a_refused_certificate_gives_a_502_page_and_a_log_line_naming_the_problem(
    tls_upstream: UvicornThread, pki: Path, host: str, bundle: str | None, problem: str
) -> None:
    response, log = get_through(f"https://{host}:{tls_upstream.port}", pki / bundle if bundle else None, "/x")
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "certificate was refused" in response.text
    assert problem not in response.text  # details go to the log, not to visitors
    [line] = log.splitlines()
    assert line.startswith(f"proxy GET /x: upstream TLS certificate refused ({problem}")
    assert "upstream_ca_bundle" in line


def test_a_missing_ca_bundle_is_a_configuration_error(tmp_path: Path) -> None:
    env = {"GATEWAY_MODE": "proxy", "GATEWAY_UPSTREAM_URL": "https://app.internal", "GATEWAY_DEV_MODE": "true",
           "GATEWAY_STATE_DIR": str(tmp_path), "GATEWAY_UPSTREAM_CA_BUNDLE": str(tmp_path / "missing.pem")}
    with pytest.raises(ConfigError, match=r"upstream_ca_bundle: .*missing\.pem.* is not a readable PEM file"):
        load_settings(None, env)
