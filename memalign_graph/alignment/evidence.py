"""The evidence check: a distilled guideline must not contradict the experts on the feedback it cites.

An expert may write a rationale that says the opposite of their own verdict ("Answer True when the
text mentions reply." beside the value False), and a model may distill a rule its sources refute. Before
a draft enters memory, each cited example is judged again by the guideline alone, in one call per batch
that does not show the experts' verdicts; a draft that implies, for any cited example, a verdict other
than the expert's is refused, and the report says which example and what each side said.

What it does not stop: a guideline that agrees with its own examples and is wrong elsewhere (a rule too
broad), a contradiction the checking model fails to see (it is the same kind of model), and feedback
that carries a rationale but no verdict (nothing to hold the guideline to).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from memalign_graph.alignment.distill import batch_attempts
from memalign_graph.errors import InvalidValueError
from memalign_graph.prompts import (
    DATA_NOTICE,
    EVIDENCE_CHECK_TEMPLATE,
    EVIDENCE_SYSTEM_PROMPT,
    EVIDENCE_USER_PROMPT,
)
from memalign_graph.records import BatchFailure, DraftGuideline, Dropped, FeedbackRecord
from memalign_graph.rendering import render_fields
from memalign_graph.spec import JudgeSpec, Score
from memalign_graph.structured_output import StructuredCalls

Check = tuple[int, str]  # (draft index, cited feedback id)


def evidence_schema(spec: JudgeSpec) -> dict[str, Any]:
    return {
        "title": "evidence_check",
        "description": "The verdict each guideline alone implies for its example.",
        "type": "object",
        "properties": {
            "verdicts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "check": {"type": "integer", "description": "The check's number."},
                        "verdict": {"anyOf": [spec.output.json_schema(), {"type": "null"}]},
                    },
                    "required": ["check", "verdict"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["verdicts"],
        "additionalProperties": False,
    }


def checks_for(drafts: Sequence[DraftGuideline], records: Mapping[str, FeedbackRecord]) -> list[Check]:
    """Every (draft, cited example) pair the experts gave a verdict on: what can contradict a draft."""
    return [
        (index, key)
        for index, draft in enumerate(drafts)
        for key in draft["feedback_ids"]
        if key in records and records[key].get("value") is not None
    ]


def evidence_messages(
    spec: JudgeSpec,
    drafts: Sequence[DraftGuideline],
    records: Mapping[str, FeedbackRecord],
    checks: Sequence[Check],
    *,
    field_token_budget: int,
) -> list[BaseMessage]:
    """The check prompt: each guideline beside one example it cites, without the experts' verdicts."""
    system = EVIDENCE_SYSTEM_PROMPT.format(
        judge=spec.name,
        instructions=spec.instructions,
        value_description=spec.output.describe(),
        data_notice=DATA_NOTICE,
    )
    body = "\n\n".join(
        EVIDENCE_CHECK_TEMPLATE.format(
            number=number,
            guideline=drafts[index]["text"],
            fields=render_fields(records[key], max_tokens_per_field=field_token_budget),
        )
        for number, (index, key) in enumerate(checks, start=1)
    )
    return [SystemMessage(system), HumanMessage(EVIDENCE_USER_PROMPT.format(checks=body))]


def refuse_contradicted(
    spec: JudgeSpec,
    drafts: Sequence[DraftGuideline],
    records: Mapping[str, FeedbackRecord],
    checks: Sequence[Check],
    answer: Mapping[str, Any],
) -> tuple[list[DraftGuideline], list[Dropped]]:
    """The drafts no cited example refutes, and those refused with the example and both verdicts."""
    implied: dict[int, Any] = {}
    for item in answer.get("verdicts") or []:
        if isinstance(item, Mapping) and isinstance(item.get("check"), int) and item.get("verdict") is not None:
            try:
                implied[item["check"]] = spec.output.validate_value(item["verdict"])
            except InvalidValueError:
                continue  # an answer outside the type decides nothing
    refused: dict[int, str] = {}
    for number, (index, key) in enumerate(checks, start=1):
        expert = records[key]["value"]
        if number in implied and index not in refused and _contradicts(spec, implied[number], expert):
            refused[index] = (
                f"contradicts the expert (on feedback {key} the guideline implies {implied[number]!r}, "
                f"the expert said {expert!r})"
            )
    kept = [draft for index, draft in enumerate(drafts) if index not in refused]
    dropped = [Dropped(text=drafts[index]["text"], reason=reason) for index, reason in sorted(refused.items())]
    return kept, dropped


def check_evidence(
    calls: StructuredCalls,
    spec: JudgeSpec,
    drafts: list[DraftGuideline],
    records: Mapping[str, FeedbackRecord],
    batch_ids: list[str],
    *,
    field_token_budget: int,
    attempts: int,
) -> tuple[list[DraftGuideline], list[Dropped]] | BatchFailure:
    """Drafts that pass the check and those refused; or, when the check itself keeps failing, the failure
    that keeps the batch pending (no draft enters memory unchecked)."""
    checks = checks_for(drafts, records)
    if not checks:
        return drafts, []
    messages = evidence_messages(spec, drafts, records, checks, field_token_budget=field_token_budget)
    schema = evidence_schema(spec)
    return batch_attempts(
        lambda: refuse_contradicted(spec, drafts, records, checks, calls.invoke(schema, messages).parsed),
        batch_ids,
        attempts=attempts,
        label="evidence check: ",
    )


def _contradicts(spec: JudgeSpec, implied: Any, expert: Any) -> bool:
    """Whether the guideline's verdict refutes the expert's: any other label; on a score scale, a verdict
    half the scale or more away (a guideline that shades a score is not refuted by it)."""
    if isinstance(spec.output, Score):
        return abs(float(implied) - float(expert)) >= (spec.output.high - spec.output.low) / 2
    return bool(implied != expert)
