"""gateway.pages.threads: the pages' blocking calls on a pool thread, as Starlette's run_in_threadpool did."""

from __future__ import annotations

import asyncio
import threading
from contextvars import ContextVar

import pytest

from gateway.observe.events import request_id
from gateway.pages.threads import THREADS, run_in_threadpool
from tests.servers import run_async

WHO: ContextVar[str] = ContextVar("who", default="nobody")


def test_the_call_runs_on_a_pool_thread_with_its_arguments_and_returns_its_result() -> None:
    def work(a: int, b: int, *, c: int) -> tuple[int, str]:
        return a + b + c, threading.current_thread().name

    total, name = run_async(run_in_threadpool(work, 1, 2, c=3))
    assert total == 6 and name.startswith("pages")


def test_the_callers_context_goes_along_so_log_lines_keep_the_request_id() -> None:
    async def scenario() -> tuple[str, str]:
        request_id.set("a1b2c3")
        WHO.set("alice")
        return await run_in_threadpool(lambda: (request_id.get(), WHO.get()))

    assert run_async(scenario()) == ("a1b2c3", "alice")


def test_the_thread_cannot_change_the_callers_context() -> None:
    async def scenario() -> str:
        WHO.set("alice")
        await run_in_threadpool(WHO.set, "mallory")
        return WHO.get()

    assert run_async(scenario()) == "alice"


def test_an_exception_reaches_the_caller() -> None:
    def fail() -> None:
        raise KeyError("gone")

    with pytest.raises(KeyError, match="gone"):
        run_async(run_in_threadpool(fail))


def test_calls_run_concurrently_up_to_the_pool_size() -> None:
    barrier = threading.Barrier(THREADS, timeout=10)

    async def scenario() -> list[int]:
        return await asyncio.gather(*(run_in_threadpool(barrier.wait) for _ in range(THREADS)))

    assert sorted(run_async(scenario())) == list(range(THREADS))
