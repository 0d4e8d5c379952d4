"""The plain data that flows through the graphs and lives in their checkpoints.

Everything here is JSON-like (`TypedDict`s of strings, numbers, lists and dicts), so checkpoints
deserialize anywhere without allow-lists and a user can read them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, TypedDict

DEFAULT_NAMESPACE = "default"
# LLM calls in flight at once (distillation fan-out, close calls, batch judging). Measured on 2 cores at
# 300 ms a call: 16 keeps batch judging within 10% of ideal; with batches of 32 feedback, 1,000 align in ~2 s.
DEFAULT_MAX_CONCURRENCY = 16


class FeedbackRecord(TypedDict):
    """One expert's feedback as semantic memory's ledger keeps it (the source of every episode)."""

    id: str
    inputs: Any
    outputs: Any
    expectations: Any
    value: Any
    rationale: str | None
    judge_verdict: Any
    judge_was_wrong: bool | None
    content_hash: str
    created_at: str
    updated_at: str
    distilled: bool


class Guideline(TypedDict):
    """A general rule distilled from feedback; `feedback_ids` is its provenance.

    Semantic memory keeps each guideline's `embedding` for dedupe; what a user reads leaves it out.
    """

    id: str
    text: str
    feedback_ids: list[str]
    created_at: str
    updated_at: str
    embedding: NotRequired[list[float]]


class DraftGuideline(TypedDict):
    """A guideline as one distillation call proposed it, before dedupe."""

    text: str
    feedback_ids: list[str]


class BatchFailure(TypedDict):
    """A distillation batch that failed after its retries: its feedback stays pending."""

    feedback_ids: list[str]
    error: str


class Episode(TypedDict):
    """A past example retrieved for a judgment, with its similarity to the judged input."""

    feedback_id: str
    inputs: Any
    outputs: Any
    expectations: Any
    value: Any
    rationale: str | None
    judge_verdict: Any
    judge_was_wrong: bool | None
    similarity: float


class VerdictMetadata(TypedDict):
    judge: str
    namespace: str
    guideline_ids: list[str]
    episode_ids: list[str]
    attempts: int


class Verdict(TypedDict):
    """A verdict in the result shape of openevals and LangSmith evaluators.

    `score` is the typed value (bool, label, number or 'A'/'B'/'tie'); `comment` is the rationale.
    """

    key: str
    score: Any
    comment: str
    metadata: VerdictMetadata


class AlignmentPlan(TypedDict):
    """What one alignment will change, decided by `validate` before anything is written."""

    upsert: list[FeedbackRecord]
    delete: list[str]
    distill: list[FeedbackRecord]
    unchanged: list[str]
    guidelines: dict[str, Guideline]


class AlignmentReport(TypedDict):
    """What an alignment did, for the caller and for the checkpoint history."""

    added: list[str]
    updated: list[str]
    unchanged: list[str]
    forgotten: list[str]
    distilled: list[str]
    pending: list[str]
    failed_batches: list[BatchFailure]
    guidelines_added: list[str]
    guidelines_merged: list[str]
    guidelines_removed: list[str]


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


class JudgeInput(TypedDict, total=False):
    inputs: Any
    outputs: Any
    expectations: Any


class MemoryUsed(TypedDict):
    """What a judgment was shown: the guidelines within budget and the retrieved examples."""

    guidelines: list[dict[str, Any]]
    episodes: list[Episode]


class JudgeOutput(TypedDict):
    verdict: Verdict
    memory_used: MemoryUsed


class WorkingMemory(TypedDict):
    """The prompt of one judgment: stable part first (instructions, guidelines), then the examples."""

    system: str
    user: str
    guideline_ids: list[str]
    episode_ids: list[str]


class JudgeState(JudgeInput, total=False):
    guidelines: list[Guideline]
    memory_used: MemoryUsed
    episodes: list[Episode]
    working_memory: WorkingMemory
    answer: dict[str, Any]
    raw_outputs: list[str]
    attempts: int
    error: str | None
    verdict: Verdict


@dataclass(frozen=True)
class MemoryContext:
    """Settings judging and alignment share: whose memory, and how much of it fits a prompt."""

    namespace: str = DEFAULT_NAMESPACE
    guideline_token_budget: int = 1500
    field_token_budget: int = 1000


@dataclass(frozen=True)
class JudgeContext(MemoryContext):
    """Per-run settings of the judging graph (LangGraph runtime context)."""

    k: int = 5
    max_parse_attempts: int = 3


@dataclass(frozen=True)
class AlignmentContext(MemoryContext):
    """Per-run settings of the alignment graph (LangGraph runtime context)."""

    batch_size: int = 32
    max_distill_attempts: int = 3
    merge_similarity: float = 0.92
    close_call_similarity: float = 0.8
    keep_episodes: Literal["all", "mistakes"] = "all"
    distill: bool = True  # False: episodes only (an ablation); feedback stays pending for a later distillation
