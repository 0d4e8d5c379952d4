"""The records both graphs and both memories share: feedback as the ledger keeps it, guidelines,
episodes, verdicts, and the report of an alignment.

Everything here is JSON-like (`TypedDict`s of strings, numbers, lists and dicts), so checkpoints
deserialize anywhere without allow-lists and a user can read them as they are.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, NotRequired, TypedDict


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


def content_hash(record: FeedbackRecord) -> str:
    """A fingerprint of everything an expert said, to tell an unchanged repeat from a correction."""
    keys = ("inputs", "outputs", "expectations", "value", "rationale", "judge_verdict")
    canonical = json.dumps({key: record.get(key) for key in keys}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
