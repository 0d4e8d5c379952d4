"""Distillation: one LLM call turns a batch of expert feedback into draft guidelines."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from memalign_graph.model_calls import StructuredOutputError
from memalign_graph.prompts import DATA_NOTICE, DISTILL_SYSTEM_PROMPT, DISTILL_USER_PROMPT
from memalign_graph.records import BatchFailure, DraftGuideline
from memalign_graph.rendering import render_feedback, render_guidelines, truncate
from memalign_graph.spec import JudgeSpec
from memalign_graph.structured_output import StructuredCalls

MAX_GUIDELINE_TOKENS = 120


def guideline_list_schema(title: str, description: str, source_key: str, source_description: str) -> dict[str, Any]:
    """The JSON schema of a list of guidelines, each citing where it comes from under `source_key`."""
    return {
        "title": title,
        "description": description,
        "type": "object",
        "properties": {
            "guidelines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string", "description": "The guideline, one or two sentences."},
                        source_key: {"type": "array", "items": {"type": "string"}, "description": source_description},
                    },
                    "required": ["text", source_key],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["guidelines"],
        "additionalProperties": False,
    }


DISTILL_SCHEMA = guideline_list_schema(
    "distilled_guidelines",
    "New general guidelines distilled from the feedback.",
    "feedback_ids",
    "Ids of the feedback items this guideline comes from.",
)


def distill_messages(
    spec: JudgeSpec,
    batch: Sequence[Mapping[str, Any]],
    guidelines: Sequence[Mapping[str, Any]],
    *,
    field_token_budget: int,
) -> list[BaseMessage]:
    """The distillation prompt: the judge's criterion, its current guidelines, the delimited feedback."""
    system = DISTILL_SYSTEM_PROMPT.format(
        judge=spec.name,
        instructions=spec.instructions,
        value_description=spec.output.describe(),
        data_notice=DATA_NOTICE,
    )
    feedback = "\n\n".join(render_feedback(record, max_tokens_per_field=field_token_budget) for record in batch)
    user = DISTILL_USER_PROMPT.format(guidelines=render_guidelines(guidelines), feedback=feedback)
    return [SystemMessage(system), HumanMessage(user)]


def distill_batch(
    calls: StructuredCalls, messages: list[BaseMessage], batch_ids: list[str], *, attempts: int
) -> list[DraftGuideline] | BatchFailure:
    """Draft guidelines for one batch, or the failure that keeps the batch pending after `attempts` tries."""
    last_error = ""
    for attempt in range(max(1, attempts)):
        if attempt:
            time.sleep(min(0.2 * 2 ** (attempt - 1), 2.0))
        try:
            return clean_drafts(calls.invoke(DISTILL_SCHEMA, messages).parsed, batch_ids)
        except Exception as error:  # noqa: BLE001 - any failure keeps the batch pending, reported
            last_error = f"{type(error).__name__}: {error}"
    return BatchFailure(feedback_ids=batch_ids, error=last_error)


def clean_drafts(answer: dict[str, Any], batch_ids: list[str]) -> list[DraftGuideline]:
    """Non-empty, bounded guideline texts whose provenance is limited to the batch's own ids."""
    items = answer.get("guidelines")
    if not isinstance(items, list):
        raise StructuredOutputError("'guidelines' is not a list", str(answer))
    allowed = set(batch_ids)
    drafts: list[DraftGuideline] = []
    for item in items:
        if not isinstance(item, dict):
            raise StructuredOutputError("a guideline is not an object", str(answer))
        text = " ".join(str(item.get("text") or "").split())
        if not text:
            continue
        cited = [str(feedback_id) for feedback_id in item.get("feedback_ids") or [] if str(feedback_id) in allowed]
        # A guideline that cites nothing usable is credited to its whole batch, so forgetting
        # the batch's feedback can still remove it.
        drafts.append(
            DraftGuideline(text=truncate(text, MAX_GUIDELINE_TOKENS), feedback_ids=sorted(set(cited or batch_ids)))
        )
    return drafts
