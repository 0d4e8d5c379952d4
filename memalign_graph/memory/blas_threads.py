"""Qdrant local mode's searches run numpy on one BLAS thread while a model runs in this process.

Local mode scores a query with a numpy product over every stored vector. On a small machine
OpenBLAS's worker threads keep spinning after the product returns, on the very cores that the next
judgment's query embedding needs when the embedding model runs in this process (torch's or ONNX
Runtime's own threads), and the embedding then takes far longer. One BLAS thread costs the search a
little and gives the embedding its cores back; with a hosted embedding nothing competes, and numpy
keeps its threads. `python -m benchmarks --scenario judge_overhead` measures both.

The limit is process-wide while it lasts (OpenBLAS has one pool), so concurrent searches share it: the
first to enter sets it and the last to leave restores what was there, from whichever threads they run
on. threadpoolctl lets only one "controlling" thread change OpenBLAS and silently ignores the others
(its `OpenBLASController` docstring), so control is taken for each change and handed back after, as
its own `threadpool_limits` does when its block ends.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Runtimes whose worker threads compete with BLAS's for the cores (an embedding model in this process).
MODEL_RUNTIMES = ("torch", "onnxruntime")

_lock = threading.Lock()
_inside = 0
_limiter: Any = None
_controller: Any = None


def model_in_process() -> bool:
    """Whether a model runtime is loaded here (a loaded module stays loaded, so the answer only turns on)."""
    return any(name in sys.modules for name in MODEL_RUNTIMES)


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with numpy's BLAS on one thread (nested and concurrent uses share one limit)."""
    _enter()
    try:
        yield
    finally:
        _leave()


def _enter() -> None:
    global _inside, _limiter, _controller
    with _lock:
        if _inside == 0:
            if _controller is None:
                from threadpoolctl import ThreadpoolController

                _controller = ThreadpoolController().select(user_api="blas")
            with _in_control():
                _limiter = _controller.limit(limits=1)
        _inside += 1


def _leave() -> None:
    global _inside, _limiter
    with _lock:
        _inside -= 1
        if _inside == 0 and _limiter is not None:
            with _in_control():
                _limiter.restore_original_limits()
            _limiter = None


@contextmanager
def _in_control() -> Iterator[None]:
    from threadpoolctl import OpenBLASController

    OpenBLASController.clear_controlling_thread(force=True)
    try:
        yield
    finally:
        OpenBLASController.clear_controlling_thread(force=True)
