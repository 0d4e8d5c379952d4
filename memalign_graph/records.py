"""The records both graphs and both memories share: feedback as the ledger keeps it, guidelines,
episodes, verdicts, and the report of an alignment.

Everything here is JSON-like (`TypedDict`s of strings, numbers, lists and dicts), so checkpoints
deserialize anywhere without allow-lists and a user can read them as they are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from pydantic import ValidationError

from memalign_graph.errors import InvalidValueError
from memalign_graph.feedback import Feedback, check_text

if TYPE_CHECKING:
    from memalign_graph.spec import JudgeSpec

# What one stored field of feedback may hold, in characters (JSON for structured values). A prompt shows
# at most `field_token_budget` tokens of a field; past this, a row is a mistake, and storing it would
# copy it into every checkpoint that carries it.
MAX_STORED_FIELD_CHARS = 256 * 1024


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


class Guideline(TypedDict):
    """A general rule distilled from feedback; `feedback_ids` is its provenance. (Its embedding, for
    dedupe, is kept beside it in semantic memory.)"""

    id: str
    text: str
    feedback_ids: list[str]
    created_at: str
    updated_at: str


class DraftGuideline(TypedDict):
    """A guideline as one distillation call proposed it, before dedupe."""

    text: str
    feedback_ids: list[str]
    batch: NotRequired[int]


class Dropped(TypedDict):
    """A guideline a model proposed that did not enter memory, and why."""

    text: str
    reason: str


class BatchOutcome(TypedDict):
    """What one distillation call proposed and what became of it (merged: into a guideline memory had,
    or into another proposal of the run)."""

    batch: int
    feedback_ids: list[str]
    proposed: int
    kept: int
    merged: int
    dropped: list[Dropped]


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
    structured_output: str  # how the model was asked for JSON (memalign_graph.structured_output)
    in_memory: list[str]  # ids of this very example's records in memory: its own answer was within reach
    excluded_ids: list[str]  # feedback retrieval left out (exclude_ids, exclude_self)


class Verdict(TypedDict):
    """A verdict in the result shape of openevals and LangSmith evaluators.

    `score` is the typed value (bool, label, number or 'A'/'B'/'tie'); `comment` is the rationale.
    """

    key: str
    score: Any
    comment: str
    metadata: VerdictMetadata


class Regression(TypedDict):
    """A seen example whose verdict moved: the expert's value, and the judge's before and after."""

    id: str
    expected: Any
    before: Any  # None: no verdict
    after: Any


class RegressionReport(TypedDict):
    """The seen examples re-judged before and after an alignment, against the expert's current value.

    fixed: wrong (or no verdict) before, right after; broken: right before, not after; unchanged: the rest.
    """

    checked: int
    fixed: list[str]
    broken: list[str]
    unchanged_right: list[str]
    unchanged_wrong: list[str]
    changes: list[Regression]  # every fixed and broken example, with its values
    agreement_before: float | None
    agreement_after: float | None


class AlignmentReport(TypedDict):
    """What an alignment did, for the caller and for the checkpoint history."""

    added: list[str]
    updated: list[str]
    unchanged: list[str]
    forgotten: list[str]
    not_found: list[str]
    distilled: list[str]
    pending: list[str]
    failed_batches: list[BatchFailure]
    guidelines_added: list[str]
    guidelines_merged: list[str]
    guidelines_removed: list[str]
    guidelines_redistilled: list[str]
    distillation: list[BatchOutcome]
    regressions: NotRequired[RegressionReport]  # with align(..., check_regressions=True)


REPORT_ID_LISTS = (
    "added",
    "updated",
    "unchanged",
    "forgotten",
    "not_found",
    "distilled",
    "guidelines_added",
    "guidelines_merged",
    "guidelines_removed",
    "guidelines_redistilled",
)


def empty_report(*, unchanged: Sequence[str] = (), not_found: Sequence[str] = ()) -> AlignmentReport:
    """The report of an alignment that changed nothing (feedback memory held already aside, ids to forget
    that memory does not hold)."""
    return AlignmentReport(
        added=[],
        updated=[],
        unchanged=list(unchanged),
        forgotten=[],
        not_found=list(not_found),
        distilled=[],
        pending=[],
        failed_batches=[],
        guidelines_added=[],
        guidelines_merged=[],
        guidelines_removed=[],
        guidelines_redistilled=[],
        distillation=[],
    )


def merge_reports(into: AlignmentReport, new: AlignmentReport) -> None:
    """Fold a later alignment's report into an earlier one; pending is what is pending after the last."""
    for key in REPORT_ID_LISTS:
        into[key] = sorted(set(into[key]) | set(new[key]))  # type: ignore[literal-required]
    into["failed_batches"] = [*into["failed_batches"], *new["failed_batches"]]
    into["distillation"] = [*into["distillation"], *new["distillation"]]
    into["pending"] = list(new["pending"])


def content_hash(record: FeedbackRecord) -> str:
    """A fingerprint of everything an expert said, to tell an unchanged repeat from a correction."""
    keys = ("inputs", "outputs", "expectations", "value", "rationale", "judge_verdict")
    canonical = json.dumps({key: record.get(key) for key in keys}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def to_record(
    feedback: Feedback,
    spec: JudgeSpec,
    *,
    known: Mapping[str, FeedbackRecord],
    now: str,
    where: str = "feedback",
) -> FeedbackRecord:
    """The ledger record of one feedback, checked against the judge: the only place a record is built.

    `known` is the ledger: a record it holds under the same id keeps its creation time. Two records
    say the same when their `content_hash` does.
    """
    fields = spec.validate_record(feedback.as_input(), where=where)
    check_text(feedback.rationale, field=f"{where}.rationale")
    check_text(feedback.id, field=f"{where}.id")
    value = None if feedback.value is None else spec.output.validate_value(feedback.value, field=f"{where}.value")
    verdict = (
        None
        if feedback.judge_verdict is None
        else spec.output.validate_value(feedback.judge_verdict, field=f"{where}.judge_verdict")
    )
    feedback_id = feedback.feedback_id
    previous = known.get(feedback_id)
    record = FeedbackRecord(
        id=feedback_id,
        inputs=fields.get("inputs"),
        outputs=fields.get("outputs"),
        expectations=fields.get("expectations"),
        value=value,
        rationale=(feedback.rationale or "").strip() or None,
        judge_verdict=verdict,
        judge_was_wrong=None if value is None or verdict is None else value != verdict,
        content_hash="",
        created_at=previous["created_at"] if previous else now,
        updated_at=now,
    )
    for name in ("inputs", "outputs", "expectations", "rationale"):
        _check_stored_size(record[name], field=f"{where}.{name}")
    record["content_hash"] = content_hash(record)
    return record


def to_records(
    spec: JudgeSpec, feedback: Sequence[Feedback | Mapping[str, Any]], known: Mapping[str, FeedbackRecord], *, now: str
) -> list[FeedbackRecord]:
    """Every incoming feedback as a ledger record, or an error naming the record and the field.

    One id twice with the same content counts once; with different content it is refused.
    """
    records: dict[str, FeedbackRecord] = {}
    first_index: dict[str, int] = {}
    for index, item in enumerate(feedback):
        where = f"feedback[{index}]"
        parsed = as_feedback(item, where=where)
        record = to_record(parsed, spec, known=known, now=now, where=where)
        earlier = records.get(record["id"])
        if earlier is not None:
            if earlier["content_hash"] != record["content_hash"]:
                raise InvalidValueError(
                    f"{where}.id: {record['id']!r} is also feedback[{first_index[record['id']]}] with different "
                    "content; keep one of them, or give them different ids."
                )
            continue
        records[record["id"]] = record
        first_index[record["id"]] = index
    return list(records.values())


def as_feedback(item: Feedback | Mapping[str, Any], *, where: str) -> Feedback:
    """A `Feedback` from itself or from a plain dict, with pydantic's complaints as one line naming `where`."""
    if isinstance(item, Feedback):
        return item
    try:
        return Feedback.model_validate(item)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc']) or 'record'}: {issue['msg']}" for issue in error.errors()
        )
        raise InvalidValueError(f"{where}: {problems}") from error


def _check_stored_size(value: Any, *, field: str) -> None:
    if value is None:
        return
    size = len(value) if isinstance(value, str) else len(json.dumps(value, ensure_ascii=False, default=str))
    if size > MAX_STORED_FIELD_CHARS:
        raise InvalidValueError(
            f"{field}: {size:,} characters is more than a stored feedback field holds ({MAX_STORED_FIELD_CHARS:,}); "
            "shorten it (a prompt shows at most field_token_budget tokens of a field anyway)."
        )
