"""Distillation: one LLM call turns a batch of expert feedback into draft guidelines."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from memalign_graph.model_calls import StructuredOutputError
from memalign_graph.prompts import DATA_NOTICE, DISTILL_SYSTEM_PROMPT, DISTILL_USER_PROMPT
from memalign_graph.records import BatchFailure, DraftGuideline, Dropped
from memalign_graph.rendering import CHARS_PER_TOKEN, render_feedback, render_guidelines
from memalign_graph.spec import JudgeSpec
from memalign_graph.structured_output import StructuredCalls

T = TypeVar("T")
MAX_GUIDELINE_TOKENS = 120
# A batch teaches a few rules; an answer proposing far more than its feedback items is a model gone astray,
# and every proposal costs an embedding and maybe a close call.
PROPOSALS_PER_FEEDBACK = 2
MIN_PROPOSALS = 10
MAX_CITATIONS = 100
PARROTED_SHARE = 0.75
MAX_GUIDELINE_CHARS = MAX_GUIDELINE_TOKENS * CHARS_PER_TOKEN


def guideline_list_schema(
    title: str,
    description: str,
    source_key: str,
    source_description: str,
    *,
    source_items: dict[str, Any] | None = None,
) -> dict[str, Any]:
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
                        source_key: {
                            "type": "array",
                            "items": source_items or {"type": "string"},
                            "description": source_description,
                        },
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
    "sources",
    "The ref numbers of the feedback items this guideline comes from.",
    source_items={"type": "integer"},
)


def schema_wording(schema: Mapping[str, Any]) -> tuple[frozenset[str], ...]:
    """Every description and title in a JSON schema, as word sets: what a model that parrots the schema
    instead of answering it writes as a guideline (a tiny model does, often with a word changed)."""
    found = [_words("string"), _words("integer")]

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key in ("description", "title") and isinstance(value, str):
                    found.append(_words(value.replace("_", " ")))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema)
    return tuple(found)


def parrots_schema(text: str, wording: Sequence[frozenset[str]]) -> bool:
    """Whether `text` is the schema's own wording: the same words, give or take one in four."""
    words = _words(text)
    return any(len(words & said) >= PARROTED_SHARE * len(words | said) for said in wording if said)


def _words(text: str) -> frozenset[str]:
    return frozenset(word.rstrip("s") for word in re.findall(r"[a-z0-9]+", text.casefold()))


_SCHEMA_WORDING = schema_wording(DISTILL_SCHEMA)


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
    feedback = "\n\n".join(
        render_feedback(record, ref=ref, max_tokens_per_field=field_token_budget)
        for ref, record in enumerate(batch, start=1)
    )
    user = DISTILL_USER_PROMPT.format(guidelines=render_guidelines(guidelines), feedback=feedback)
    return [SystemMessage(system), HumanMessage(user)]


def distill_batch(
    calls: StructuredCalls, messages: list[BaseMessage], batch_ids: list[str], *, attempts: int
) -> tuple[list[DraftGuideline], list[Dropped]] | BatchFailure:
    """Draft guidelines for one batch and the proposals dropped, or the failure that keeps the batch pending
    after `attempts` tries."""
    return batch_attempts(
        lambda: clean_drafts(calls.invoke(DISTILL_SCHEMA, messages).parsed, batch_ids), batch_ids, attempts=attempts
    )


def batch_attempts(step: Callable[[], T], batch_ids: list[str], *, attempts: int, label: str = "") -> T | BatchFailure:
    """A batch's model step, tried up to `attempts` times with a short backoff; when every try fails, the
    failure that keeps the batch's feedback pending (any error: it is reported, never turned into memory)."""
    last_error = ""
    for attempt in range(max(1, attempts)):
        if attempt:
            time.sleep(min(0.2 * 2 ** (attempt - 1), 2.0))
        try:
            return step()
        except Exception as error:  # noqa: BLE001 - any failure keeps the batch pending, reported
            last_error = f"{label}{type(error).__name__}: {error}"
    return BatchFailure(feedback_ids=batch_ids, error=last_error)


def clean_drafts(answer: dict[str, Any], batch_ids: list[str]) -> tuple[list[DraftGuideline], list[Dropped]]:
    """The model's proposals as drafts: non-empty, bounded texts, provenance mapped from its refs (1, 2, ...)
    to the batch's feedback ids; and the proposals dropped, with the reason."""
    items = answer.get("guidelines")
    if not isinstance(items, list):
        raise StructuredOutputError("'guidelines' is not a list", str(answer))
    drafts: list[DraftGuideline] = []
    dropped: list[Dropped] = []
    most = max(MIN_PROPOSALS, PROPOSALS_PER_FEEDBACK * len(batch_ids))
    if len(items) > most:
        reason = f"past the {most} proposals a batch of {len(batch_ids)} feedback may make"
        dropped.append(Dropped(text=f"{len(items) - most} more proposals", reason=reason))
        items = items[:most]
    for item in items:
        if not isinstance(item, dict):
            raise StructuredOutputError("a guideline is not an object", str(answer))
        text = " ".join(str(item.get("text") or "").split())
        if not text:
            dropped.append(Dropped(text="", reason="empty"))
            continue
        if parrots_schema(text, _SCHEMA_WORDING):
            dropped.append(Dropped(text=text, reason="repeats the question's wording, not a guideline"))
            continue
        if len(text) > MAX_GUIDELINE_CHARS:
            # A guideline cut mid-sentence can say the opposite of what was meant.
            reason = f"too long ({len(text)} characters, at most {MAX_GUIDELINE_CHARS})"
            dropped.append(Dropped(text=text, reason=reason))
            continue
        cited, unknown = _cited(item, batch_ids)
        if unknown and not cited:
            refs = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            dropped.append(Dropped(text=text, reason=f"cites only feedback it was not shown ({refs})"))
            continue
        # A guideline that cites nothing is credited to its whole batch, so forgetting the batch's
        # feedback can still remove it.
        drafts.append(DraftGuideline(text=text, feedback_ids=sorted(set(cited or batch_ids))))
    return drafts, dropped


def _cited(item: dict[str, Any], batch_ids: list[str]) -> tuple[list[str], list[str]]:
    """Feedback ids from the refs a guideline cites (and from ids, as an older prompt asked for), and the
    citations that name nothing in the batch."""
    cited: list[str] = []
    unknown: list[str] = []
    sources = item.get("sources") or []
    for ref in sources[:MAX_CITATIONS] if isinstance(sources, list) else [sources]:
        number = _ref_number(ref)
        if 1 <= number <= len(batch_ids):
            cited.append(batch_ids[number - 1])
        else:
            unknown.append(_quoted(ref))
    known = set(batch_ids)
    keys = item.get("feedback_ids") or []
    for key in keys[:MAX_CITATIONS] if isinstance(keys, list) else [keys]:
        if str(key) in known:
            cited.append(str(key))
        else:
            unknown.append(_quoted(key))
    return cited, unknown


def _ref_number(ref: Any) -> int:
    """A cited ref as a number, 0 when it is none (text, a fraction, infinity, thousands of digits)."""
    if isinstance(ref, bool):
        return 0
    if isinstance(ref, int):
        return ref
    if isinstance(ref, float):
        return int(ref) if ref.is_integer() else 0
    text = str(ref).strip()
    return int(text) if text.isdigit() and len(text) < 10 else 0


def _quoted(ref: Any, limit: int = 24) -> str:
    text = str(ref) if not isinstance(ref, int) or abs(ref) < 10**limit else f"a {len(str(ref))}-digit number"
    return text if len(text) <= limit else text[: limit - 1] + "…"
