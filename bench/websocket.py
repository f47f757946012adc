"""WebSocket echo round trips per second: what relaying messages costs in each mode.

Each of ``connections`` clients (the ``websockets`` library, no compression)
sends a small text message to the echo app of tests/upstream_app.py and waits
for it to come back, again and again for ``duration`` seconds. Direct: nginx
relays to the app without asking anyone (the handshake is not checked);
mode 1: nginx relays after the handshake's auth check, so messages cost what
they cost direct; mode 2: the gateway terminates the client's WebSocket and
relays each message over its own to the app.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from websockets.asyncio.client import connect

PAYLOAD = "x" * 64


@dataclass(frozen=True, slots=True)
class EchoRate:
    round_trips: int
    seconds: float
    errors: int
    first_error: str
    client_cpu: float  # seconds of this process's CPU (the clients)

    @property
    def per_second(self) -> float:
        return self.round_trips / self.seconds if self.seconds else 0.0


async def echo_rate(url: str, cookie: str | None, *, connections: int, duration: float) -> EchoRate:
    """Round trips per second over ``connections`` sockets to ``url`` (``ws://``) with ``cookie`` sent."""
    headers = [("Cookie", cookie)] if cookie else []
    counts = [0] * connections
    errors: list[str] = []

    async def client(index: int, deadline: float) -> None:
        try:
            async with connect(url, additional_headers=headers, proxy=None, compression=None,
                               open_timeout=10) as ws:
                while time.monotonic() < deadline:
                    await ws.send(PAYLOAD)
                    if await ws.recv() != PAYLOAD:
                        raise RuntimeError("the echo differs from the message")
                    counts[index] += 1
        except Exception as exc:  # counted and reported, the run goes on
            errors.append(f"{type(exc).__name__}: {exc}")

    cpu = time.process_time()
    started = time.monotonic()
    await asyncio.gather(*(client(i, started + duration) for i in range(connections)))
    return EchoRate(sum(counts), time.monotonic() - started, len(errors), errors[0] if errors else "",
                    time.process_time() - cpu)


def run(url: str, cookie: str | None, *, connections: int, duration: float) -> EchoRate:
    return asyncio.run(echo_rate(url, cookie, connections=connections, duration=duration))


__all__ = ["EchoRate", "echo_rate", "run"]
