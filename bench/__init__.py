"""The benchmark: the gateway against its ceilings and a peer, on one machine, in one run (``python -m bench``).

Modules: :mod:`bench.cli` (the command), :mod:`bench.runner` (stacks, rounds,
memory run, sign-ins), :mod:`bench.stacks` (the project's stack plus the direct
route and the ceilings of both modes), :mod:`bench.llng` (LemonLDAP::NG, the
peer), :mod:`bench.wrk` (exact wrk results), :mod:`bench.signin_load`
(browser-like sign-ins over async httpx), :mod:`bench.websocket` (echo round
trips), :mod:`bench.procstat` (CPU and memory from ``/proc``),
:mod:`bench.report` (the markdown tables and the targets).
"""
