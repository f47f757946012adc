"""The nginx door counts each answer once in gateway_requests_total (route "auth"), in place on the hot path."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from gateway.app import GatewayApp
from gateway.observe import metrics
from gateway.settings import load_settings
from gateway.types import Identity, Message
from tests.servers import run_async


def _count(status: str) -> float:
    return metrics.REGISTRY.get_sample_value("gateway_requests_total", {"route": "auth", "status": status}) or 0.0


def test_each_auth_answer_is_counted_once_under_its_status(tmp_path: Path) -> None:
    app = GatewayApp(load_settings(None, {"GATEWAY_PUBLIC_URL": "http://127.0.0.1:8080",
                                          "GATEWAY_SECRET_KEYS": "k" * 40, "GATEWAY_PROOF_KEY": "p" * 40,
                                          "GATEWAY_STATE_DIR": str(tmp_path)}))
    runtime = app.runtime
    cookie = runtime.sessions.encode("sid", Identity("https://op.example/id/alice", "alice", ""), time.time(), None)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    def scope(with_cookie: bool) -> dict[str, Any]:
        headers = [(b"host", b"app.example"), (b"x-original-uri", b"/p"), (b"x-original-method", b"GET")]
        if with_cookie:
            headers.append((b"cookie", f"{app.settings.session_cookie}={cookie}".encode()))
        return {"type": "http", "method": "GET", "path": "/_gateway/auth", "raw_path": b"/_gateway/auth",
                "query_string": b"", "headers": headers, "client": ("127.0.0.1", 5000)}

    async def main() -> None:
        await runtime.revocation.start()
        try:
            await app(scope(True), receive, send)
            await app(scope(True), receive, send)
            await app(scope(False), receive, send)
        finally:
            await runtime.revocation.stop()

    allowed, refused = _count("200"), _count("401")
    run_async(main())
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [200, 200, 401]
    assert (_count("200") - allowed, _count("401") - refused) == (2, 1)
