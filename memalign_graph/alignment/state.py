"""The alignment graph's state: semantic memory (what it checkpoints) and what one run carries."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from memalign_graph.records import AlignmentReport, BatchFailure, DraftGuideline, FeedbackRecord, Guideline


class AlignmentPlan(TypedDict):
    """What one alignment will change, decided by `validate` before anything is written."""

    upsert: list[FeedbackRecord]
    delete: list[str]
    distill: list[FeedbackRecord]
    unchanged: list[str]
    guidelines: dict[str, Guideline]


def extend_or_reset(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    """Reducer for per-run fan-in channels: parallel writers append, `None` starts a new run empty."""
    if right is None:
        return []
    return [*(left or []), *right]


class SemanticMemory(TypedDict):
    """The alignment graph's persistent state: semantic memory and the feedback ledger."""

    judge: str
    namespace: str
    guidelines: dict[str, Guideline]
    records: dict[str, FeedbackRecord]


class AlignmentInput(TypedDict, total=False):
    """What a caller sends to the alignment graph: feedback to learn, ids to forget."""

    feedback: list[dict[str, Any]]
    forget: list[str]
    forget_guidelines: list[str]


class AlignmentOutput(TypedDict):
    guidelines: dict[str, Guideline]
    report: AlignmentReport


class AlignmentState(SemanticMemory, AlignmentInput, total=False):
    plan: AlignmentPlan
    drafts: Annotated[list[DraftGuideline], extend_or_reset]
    failures: Annotated[list[BatchFailure], extend_or_reset]
    report: AlignmentReport


class DistillTask(TypedDict):
    """The payload `Send` gives one parallel distillation call (guidelines without embeddings)."""

    batch: list[FeedbackRecord]
    guidelines: list[dict[str, Any]]
