"""The alignment graph's state: semantic memory (what it checkpoints) and what one run carries.

The per-run channels that carry feedback or guidelines are `DeltaChannel`s with last-value semantics:
stored once per write, not again in every checkpoint of the run (see `memalign_graph.memory.ledger`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, NotRequired, TypedDict

from langgraph.channels.delta import DeltaChannel

from memalign_graph.memory.ledger import Changes, SemanticMemory, apply_changes, latest
from memalign_graph.records import AlignmentReport, BatchFailure, BatchOutcome, DraftGuideline, Guideline


class AlignmentPlan(TypedDict):
    """What one alignment will change, decided by `validate` (the ledger's own changes are written then).

    Guidelines travel as changes to memory's (`planned_guidelines` applies them), so a run stores what it
    changes, not every guideline again.
    """

    added: list[str]
    updated: list[str]
    unchanged: list[str]
    forgotten: list[str]
    not_found: NotRequired[list[str]]  # ids asked to forget that memory did not hold (absent in older plans)
    distill: list[str]
    guideline_changes: Changes
    redistilled: list[str]
    restored: str | None
    kept: dict[str, int]


def extend_or_reset(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    """Fan-in of parallel writers: they append, and `None` starts a new run empty."""
    if right is None:
        return []
    return [*(left or []), *right]


def extend_or_reset_all(current: list[Any], writes: Sequence[list[Any] | None]) -> list[Any]:
    """`extend_or_reset` over a batch of writes, as a `DeltaChannel` replays them."""
    value = current
    for write in writes:
        value = extend_or_reset(value, write)
    return value


class AlignmentInput(TypedDict, total=False):
    """What a caller sends: feedback to learn, ids to forget, guideline ids to drop, guideline ids to
    `redistill` (dropped, and the feedback they cite distilled again: a purge sends every guideline that
    ever cited what it erases), or an earlier version (a checkpoint id of the memory thread) to restore."""

    feedback: Annotated[list[dict[str, Any]], DeltaChannel(latest)]
    forget: list[str]
    forget_guidelines: list[str]
    redistill: list[str]
    restore: str | None


class AlignmentOutput(TypedDict):
    guidelines: dict[str, Guideline]
    report: AlignmentReport


class AlignmentState(SemanticMemory, AlignmentInput, total=False):
    plan: Annotated[AlignmentPlan, DeltaChannel(latest)]
    drafts: Annotated[list[DraftGuideline], DeltaChannel(extend_or_reset_all)]
    batches: Annotated[list[BatchOutcome], DeltaChannel(extend_or_reset_all)]
    failures: Annotated[list[BatchFailure], DeltaChannel(extend_or_reset_all)]
    episodes_synced: bool | None  # this run has written its episodes (beside distillation)
    report: Annotated[AlignmentReport, DeltaChannel(latest)]


def planned_guidelines(state: AlignmentState) -> dict[str, Guideline]:
    """The guidelines as the run's plan leaves them: memory's, with the plan's changes applied."""
    return apply_changes(state.get("guidelines") or {}, [state["plan"]["guideline_changes"]])


class DistillTask(TypedDict):
    """The payload `Send` gives one parallel distillation call: its number and the ids of its batch.
    LangGraph checkpoints every payload twice until the call is done, so the feedback itself is read from
    the run's state."""

    index: int
    batch: list[str]
