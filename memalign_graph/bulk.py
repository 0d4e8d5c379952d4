"""Judging and aligning many records at once, with progress, for the command line and the evaluation.

Judging runs each example in its own worker (at most `max_concurrency` at a time), so a slow or failed
judgment holds up nothing else and each one's calls, tokens and wall time can be credited to it.
Alignment goes in chunks (each a version in the memory's history) and sends only feedback that memory
does not already hold unchanged, so re-running on the same file changes nothing.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

from memalign_graph.accounting import UsageTracker
from memalign_graph.errors import MemAlignError
from memalign_graph.feedback import Feedback
from memalign_graph.judge import MemAlignJudge
from memalign_graph.records import AlignmentReport, FeedbackRecord, Verdict, content_hash

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


def empty_report() -> AlignmentReport:
    return AlignmentReport(
        added=[],
        updated=[],
        unchanged=[],
        forgotten=[],
        distilled=[],
        pending=[],
        failed_batches=[],
        guidelines_added=[],
        guidelines_merged=[],
        guidelines_removed=[],
    )


def align_in_chunks(
    judge: MemAlignJudge,
    feedback: Sequence[Feedback],
    *,
    chunk_size: int = 16,
    on_done: Progress | None = None,
) -> AlignmentReport:
    """Align on feedback chunk by chunk and merge the reports; feedback memory holds unchanged is skipped.

    Feedback whose distillation failed earlier (pending) is retried even when nothing new arrives.
    """
    if chunk_size < 1:
        raise MemAlignError(f"chunk_size: {chunk_size} must be at least 1.")
    ledger = memory_ledger(judge)
    known = {item.feedback_id for item in feedback if _is_unchanged(judge, item, ledger)}
    report = empty_report()
    report["unchanged"] = sorted(known)
    if on_done and known:
        on_done(len(known))
    todo = [item for item in feedback if item.feedback_id not in known]
    if not todo and any(not record["distilled"] for record in ledger.values()):
        todo_chunks: list[list[Feedback]] = [[]]
    else:
        todo_chunks = [list(todo[start : start + chunk_size]) for start in range(0, len(todo), chunk_size)]
    for chunk in todo_chunks:
        merge_reports(report, judge.align(chunk))
        if on_done and chunk:
            on_done(len(chunk))
    return report


def merge_reports(into: AlignmentReport, new: AlignmentReport) -> None:
    """Fold a later alignment's report into an earlier one; pending is what is pending after the last."""
    merged = ("added", "updated", "unchanged", "forgotten", "distilled")
    for key in (*merged, "guidelines_added", "guidelines_merged", "guidelines_removed"):
        into[key] = sorted(set(into[key]) | set(new[key]))  # type: ignore[literal-required]
    into["failed_batches"] = [*into["failed_batches"], *new["failed_batches"]]
    into["pending"] = list(new["pending"])


def memory_ledger(judge: MemAlignJudge) -> dict[str, FeedbackRecord]:
    """The feedback records semantic memory holds now (the alignment thread's latest state)."""
    state = judge.alignment_graph.get_state({"configurable": {"thread_id": judge.thread_id}})
    return dict((state.values or {}).get("records") or {})


def _is_unchanged(judge: MemAlignJudge, item: Feedback, ledger: dict[str, FeedbackRecord]) -> bool:
    """True when memory already holds this feedback with the same content (the alignment graph's own test)."""
    known = ledger.get(item.feedback_id)
    if known is None:
        return False
    spec = judge.spec
    fields = spec.validate_record(item.as_input(), where="feedback")
    output = spec.output
    now = datetime.now(UTC).isoformat()
    record = FeedbackRecord(
        id=item.feedback_id,
        inputs=fields.get("inputs"),
        outputs=fields.get("outputs"),
        expectations=fields.get("expectations"),
        value=None if item.value is None else output.validate_value(item.value),
        rationale=(item.rationale or "").strip() or None,
        judge_verdict=None if item.judge_verdict is None else output.validate_value(item.judge_verdict),
        judge_was_wrong=None,
        content_hash="",
        created_at=now,
        updated_at=now,
        distilled=False,
    )
    return content_hash(record) == known["content_hash"]
