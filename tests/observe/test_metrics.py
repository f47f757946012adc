"""Prometheus metrics from a real multi-worker gateway: ``openid-gateway serve`` with two workers.

A scripted session (sign-ins, a refused sign-in, anonymous refusals, a
remember-me restore, sign-outs, rate-limit refusals) runs against the
gateway; the scrape of ``metrics_address`` must show those numbers, summed
over both worker processes (the multiprocess directory holds the files of
two pids), and must survive a worker's death.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from gateway import __version__
from gateway.observe import metrics
from gateway.observe.events import RateLimitedEvent, SignedIn, SignInFailed, SignInStarted, TheftSuspected
from tests.cli.test_main import run
from tests.conftest import PROOF_KEY
from tests.htmlforms import submit
from tests.servers import UvicornThread, free_port
from tests.signin_steps import consent, sign_in, start_login

ROOT = Path(__file__).parents[2]
SCRIPT = Path(sys.executable).parent / "openid-gateway"
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
LOGIN_LIMIT = 6


class ServedGateway:
    def __init__(self, process: subprocess.Popen[str], url: str, metrics_url: str, directory: Path) -> None:
        self.process = process
        self.url = url
        self.metrics_url = metrics_url
        self.directory = directory

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = httpx.get(self.metrics_url, timeout=10).text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def pids(self) -> set[int]:
        """Processes with counter files: the workers and the serving process (it imports the metrics too)."""
        return {int(m.group(1)) for f in self.directory.glob("counter_*.db")
                if (m := re.search(r"_(\d+)\.db$", f.name))}

    def workers(self) -> set[int]:
        pid = self.process.pid
        return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}

    def requests_answered_by(self, pid: int) -> float:
        """The requests one process counted, from its own file."""
        families = MultiProcessCollector.merge([str(self.directory / f"counter_{pid}.db")])
        return sum(s.value for family in families for s in family.samples if s.name == "gateway_requests_total")


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(value for (sample, sample_labels), value in samples.items()
               if sample == name and set(labels.items()) <= set(sample_labels))


def wait_until(condition: object, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@contextlib.contextmanager
def serve(tmp_path: Path, provider: UvicornThread, upstream: UvicornThread, workers: int,
          directory: Path | None) -> Iterator[ServedGateway]:
    """``openid-gateway serve`` with metrics; ``directory``: set PROMETHEUS_MULTIPROC_DIR (else the gateway's own,
    made under this test's TMPDIR)."""
    port, metrics_port = free_port(), free_port()
    config = tmp_path / "gateway.toml"
    config.write_text(f"""
public_url = "http://127.0.0.1:{port}"
secret_keys = ["{'s' * 40}"]
proof_key = "{PROOF_KEY}"
state_dir = "{tmp_path / 'state'}"
port = {port}
workers = {workers}
mode = "proxy"
upstream_url = "{upstream.url}"
allow_private_addresses = true
revocation_refresh = 0.2
login_rate_limit = {LOGIN_LIMIT}
metrics_address = "127.0.0.1:{metrics_port}"
providers = [{{ name = "Local", identifier = "{provider.url}/" }}]
""")
    (tmp_path / "tmp").mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path / "tmp")}
    if directory is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    process = subprocess.Popen([str(SCRIPT), "serve", "--config", str(config)], env=env, text=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    gateway = ServedGateway(process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics",
                            directory or tmp_path / "tmp")

    def ready() -> bool:
        try:
            return httpx.get(gateway.url + "/_gateway/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready)
        yield gateway
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@pytest.fixture
def served(tmp_path: Path, provider: UvicornThread, upstream: UvicornThread) -> Iterator[ServedGateway]:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"left over from an earlier run")
    with serve(tmp_path, provider, upstream, 2, directory) as gateway:
        yield gateway


def test_one_worker_is_counted_too_and_the_gateways_own_directory_goes_at_exit(
        tmp_path: Path, provider: UvicornThread, upstream: UvicornThread) -> None:
    # The serving process has imported prometheus-client before it set the directory (imports pull it in):
    # a lone worker must still run in a process of its own, or its values stay out of the files.
    with serve(tmp_path, provider, upstream, 1, None) as gateway:
        assert httpx.get(gateway.url + "/echo").status_code == 302
        samples = gateway.scrape()
        assert total(samples, "gateway_requests_total", route="proxy", status="302") == 1
        assert total(samples, "gateway_auth_decisions_total", outcome="sign_in") == 1
        assert len(list((tmp_path / "tmp").glob("openid-gateway-metrics-*"))) == 1
    assert list((tmp_path / "tmp").glob("openid-gateway-metrics-*")) == []


def test_a_scripted_session_is_counted_over_both_workers(served: ServedGateway, provider: UvicornThread) -> None:
    # A fresh connection per request: the kernel hands them to both workers. Health pings until both answered.
    def both_workers_counted() -> bool:
        httpx.get(served.url + "/_gateway/health")
        return sum(served.requests_answered_by(pid) > 0 for pid in served.workers() & served.pids()) >= 2

    wait_until(both_workers_counted)
    assert not (served.directory / "counter_1.db").exists()  # an earlier run's file: wiped at start
    before = served.scrape()
    health = total(before, "gateway_requests_total", route="pages", status="200")

    identifier = f"{provider.url}/id/"
    browsers = [httpx.Client(timeout=15, follow_redirects=True, limits=httpx.Limits(max_keepalive_connections=0))
                for _ in range(4)]
    try:
        alice, bob, carol, mallory = browsers
        for browser, name in ((alice, "alice"), (bob, "bob")):
            assert browser.get(served.url + "/echo").url.path == "/login"  # anonymous: asked to sign in
            assert sign_in(browser, served.url, identifier + name, name, next_target="/echo").status_code == 200
        assert sign_in(carol, served.url, identifier + "carol", "carol", remember=True,
                       next_target="/echo").status_code == 200
        refused = consent(mallory, start_login(mallory, served.url, identifier + "mallory"), "mallory", "deny")
        assert refused.url.path == "/login"  # the person said no at the provider: no session
        for _ in range(3):
            assert alice.get(served.url + "/echo").status_code == 200
        # carol's session cookie is gone (browser restarted); remember-me signs her back in
        carol.cookies.delete("gw_session")
        assert carol.get(served.url + "/login?next=/echo").url.path == "/echo"
        for browser in (alice, bob):
            browser.get(served.url + "/logout", headers=SAME_ORIGIN)
        # too many sign-in attempts: each worker limits on its own, so count the 429s the client saw
        limited = 0
        for _ in range(4 * LOGIN_LIMIT):
            answer = submit(mallory, mallory.get(served.url + "/login"), {"identifier": identifier + "mallory"})
            limited += answer.status_code == 429
        assert limited > 0
    finally:
        for browser in browsers:
            browser.close()

    samples = served.scrape()
    assert total(samples, "gateway_signins_started_total", provider="Local") == 4 + (4 * LOGIN_LIMIT - limited)
    assert total(samples, "gateway_signins_completed_total", provider="Local") == 3
    assert total(samples, "gateway_signins_failed_total", provider="Local") == 1
    assert total(samples, "gateway_signouts_total", kind="logout") == 2
    assert total(samples, "gateway_remember_restores_total") == 1
    assert total(samples, "gateway_rate_limited_total", limiter="login") == limited
    assert total(samples, "gateway_requests_total", route="pages", status="429") == limited
    # the anonymous visits of /echo before signing in
    assert total(samples, "gateway_auth_decisions_total", outcome="sign_in") == 2
    assert total(samples, "gateway_requests_total", route="proxy", status="302") == 2
    # alice three times, carol once after the restore, plus the post-sign-in landings on /echo
    allowed = total(samples, "gateway_auth_decisions_total", outcome="allow", rule="default_policy")
    assert allowed == total(samples, "gateway_requests_total", route="proxy", status="200") >= 4
    assert total(samples, "gateway_requests_total", route="pages", status="200") > health
    assert total(samples, "gateway_provider_fetch_seconds_count") >= 4  # discovery, associations, checks
    assert total(samples, "gateway_store_operation_seconds_count") > 0
    assert total(samples, "gateway_store_errors_total") == 0
    assert total(samples, "gateway_upstream_response_seconds_count") == allowed
    assert total(samples, "gateway_revocation_age_seconds") < 5
    assert total(samples, "gateway_build_info", version=__version__) == 1
    assert not any(name in dict(labels).values() for (_, labels) in samples for name in ("alice", "bob", "carol"))

    # A worker dies: its counts stay in the sums, its live gauge goes (uvicorn starts another worker).
    victim = min(served.workers() & served.pids())
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: bool(served.scrape()) and not (served.directory / f"gauge_livemax_{victim}.db").exists())
    after = served.scrape()
    assert total(after, "gateway_signins_completed_total") == 3
    assert total(after, "gateway_rate_limited_total") == limited


def test_the_metrics_listener_is_never_the_public_port(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f'secret_keys = ["{"s" * 40}"]\nproof_key = "{"p" * 40}"\npublic_url = "https://a.example"\n'
                      'port = 9000\nmetrics_address = "0.0.0.0:9000"\n')
    result = run("serve", "--config", str(config))
    assert result.returncode == 2
    assert "metrics_address '0.0.0.0:9000' is the public listener" in result.stderr


def test_events_are_counted_with_bounded_labels() -> None:
    counter = metrics.EventCounter(metrics.Labels(["Local"], ["https://op.example/openid"]))

    def value(name: str, **labels: str) -> float:
        return metrics.REGISTRY.get_sample_value(name, labels) or 0.0

    start = value("gateway_signins_started_total", provider="other")
    known = value("gateway_signins_started_total", provider="op.example")
    thefts = value("gateway_remember_thefts_suspected_total")
    odd = value("gateway_signins_failed_total", provider="Local", reason="other")
    counter(SignInStarted("https://attacker.example/" + "x" * 50, "192.0.2.1"))  # any URL a visitor typed
    counter(SignInStarted("op.example", "192.0.2.1"))
    counter(SignedIn("Local", "alice", "192.0.2.1", False))
    counter(SignInFailed("Local", "Not A Code\n", "192.0.2.1"))
    counter(TheftSuspected("alice", "abcd"))
    counter(RateLimitedEvent("login", "192.0.2.1"))
    assert value("gateway_signins_started_total", provider="other") == start + 1
    assert value("gateway_signins_started_total", provider="op.example") == known + 1
    assert value("gateway_signins_failed_total", provider="Local", reason="other") == odd + 1
    assert value("gateway_remember_thefts_suspected_total") == thefts + 1
