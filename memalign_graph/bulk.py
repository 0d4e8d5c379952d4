"""Judging and aligning many records at once, with progress, for the command line and the evaluation.

Judging runs each example in its own worker (at most `max_concurrency` at a time), so a slow or failed
judgment holds up nothing else and each one's calls, tokens and wall time can be credited to it.
Alignment goes in chunks (each a version in the memory's history); a chunk memory already holds
unchanged writes nothing, so re-running on the same file changes nothing.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any

from memalign_graph.accounting import UsageTracker
from memalign_graph.errors import MemAlignError
from memalign_graph.feedback import Feedback
from memalign_graph.judge import MemAlignJudge
from memalign_graph.records import AlignmentReport, Verdict, empty_report, merge_reports

Progress = Callable[[int], None]


def judge_examples(
    judge: MemAlignJudge,
    examples: Sequence[dict[str, Any]],
    *,
    labels: Sequence[str] | None = None,
    max_concurrency: int = 4,
    tracker: UsageTracker | None = None,
    on_done: Progress | None = None,
) -> list[Verdict | Exception]:
    """One verdict per example, in order; an example that got none yields its exception in its place.

    With a tracker, each judgment's calls, tokens and wall time are credited to its label (default: index).
    """
    names = list(labels) if labels is not None else [str(index) for index in range(len(examples))]
    progress_lock = threading.Lock()

    def one(name: str, example: dict[str, Any]) -> Verdict | Exception:
        try:
            with tracker.item(name) if tracker else nullcontext():
                return judge.judge(**example)
        except Exception as error:  # noqa: BLE001 - a judgment without a verdict is reported, never guessed
            return error
        finally:
            if on_done:
                with progress_lock:
                    on_done(1)

    with ThreadPoolExecutor(max_workers=max(1, max_concurrency), thread_name_prefix="memalign-judge") as pool:
        # Each task runs in a copy of this context, so usage tracking set up by the caller reaches it.
        futures = [
            pool.submit(contextvars.copy_context().run, one, name, example)
            for name, example in zip(names, examples, strict=True)
        ]
        return [future.result() for future in futures]


def align_in_chunks(
    judge: MemAlignJudge,
    feedback: Sequence[Feedback],
    *,
    chunk_size: int = 16,
    on_done: Progress | None = None,
) -> AlignmentReport:
    """Align on feedback chunk by chunk and merge the reports; a chunk memory already holds unchanged writes
    no version. Feedback whose distillation failed earlier (pending) is retried even when nothing new arrives.
    """
    if chunk_size < 1:
        raise MemAlignError(f"chunk_size: {chunk_size} must be at least 1.")
    chunks = [list(feedback[start : start + chunk_size]) for start in range(0, len(feedback), chunk_size)] or [[]]
    report = empty_report()
    for chunk in chunks:
        merge_reports(report, judge.align(chunk))
        if on_done and chunk:
            on_done(len(chunk))
    return report
