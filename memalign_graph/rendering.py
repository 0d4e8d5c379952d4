"""Turning judged values into bounded, delimited prompt text.

Judged texts and expert feedback are data, never instructions: every value goes inside a named tag,
and anything in the data that looks like one of our tags is neutralized so it cannot close it early.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from memalign_graph.prompts import EPISODE_TEMPLATE, FEEDBACK_TEMPLATE, NO_GUIDELINES
from memalign_graph.records import Episode, Guideline

logger = logging.getLogger("memalign_graph")

CHARS_PER_TOKEN = 4
_TAG_NAMES = (
    "inputs",
    "outputs",
    "expectations",
    "response_a",
    "response_b",
    "example",
    "feedback",
    "guideline",
    "guidelines",
    "judge_verdict",
    "expert_value",
    "expert_rationale",
    "examples",
)
_TAG_PATTERN = re.compile(r"<(/?)\s*(" + "|".join(_TAG_NAMES) + r")\b", re.IGNORECASE)


def approximate_tokens(text: str) -> int:
    """A provider-neutral token estimate (4 characters a token), good enough for budgets."""
    return -(-len(text) // CHARS_PER_TOKEN)


def truncate(text: str, max_tokens: int, *, label: str | None = None) -> str:
    """Cut `text` to about `max_tokens`, keeping head and tail and saying how much was dropped.

    With a `label`, the cut is also logged as a warning: a judged field is never sent whole past its
    budget, and never cut silently.
    """
    limit = max_tokens * CHARS_PER_TOKEN
    if len(text) <= limit:
        return text
    if label:
        logger.warning(
            "%s: %d characters cut to %d to fit its budget of %d tokens (field_token_budget)",
            label,
            len(text),
            limit,
            max_tokens,
        )
    marker = f"\n[... {len(text) - limit} characters truncated ...]\n"
    head = (limit * 3) // 4
    tail = limit - head
    return text[:head] + marker + (text[-tail:] if tail > 0 else "")


def render_value(value: Any) -> str:
    """Readable text for a judged value: strings as they are, conversations as turns, the rest as JSON."""
    if isinstance(value, str):
        return value
    if _is_conversation(value):
        return "\n".join(_render_turn(turn) for turn in value)
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def delimit(tag: str, text: str, **attributes: str) -> str:
    """Wrap data in a tag the prompt names as data; tags inside the data are defused."""
    attrs = "".join(f' {key}="{value}"' for key, value in attributes.items())
    safe = _TAG_PATTERN.sub(lambda m: f"<{m.group(1)}\u200b{m.group(2)}", text)
    return f"<{tag}{attrs}>\n{safe}\n</{tag}>"


def render_fields(fields: Mapping[str, Any], *, max_tokens_per_field: int) -> str:
    """The judged fields of one example, each delimited and truncated to its budget."""
    parts: list[str] = []
    for name in ("inputs", "outputs", "expectations"):
        if fields.get(name) is None:
            continue
        value = fields[name]
        if name == "outputs" and isinstance(value, Mapping) and set(value) == {"A", "B"}:
            for side in ("A", "B"):
                text = truncate(render_value(value[side]), max_tokens_per_field, label=f"outputs.{side}")
                parts.append(delimit(f"response_{side.lower()}", text))
            continue
        parts.append(delimit(name, truncate(render_value(value), max_tokens_per_field, label=name)))
    return "\n".join(parts)


def retrieval_text(fields: Mapping[str, Any], *, max_tokens: int) -> str:
    """The text embedded for retrieval: what was judged (inputs and outputs), not the verdict.

    A conversation or agent trajectory is embedded by what its user asked and what it finally
    answered: tool calls and tool output say little about which past examples are alike.
    """
    pieces = [_retrieval_piece(fields[name]) for name in ("inputs", "outputs") if fields.get(name) is not None]
    return truncate("\n\n".join(pieces), max_tokens)


def guideline_tokens(guideline: Mapping[str, Any]) -> int:
    """What one guideline costs in the prompt: its text and its bullet with the id."""
    return approximate_tokens(guideline["text"]) + 6


def guideline_block_tokens(guidelines: Iterable[Mapping[str, Any]]) -> int:
    return sum(guideline_tokens(guideline) for guideline in guidelines)


def select_guidelines(guidelines: Sequence[Guideline], token_budget: int) -> list[Guideline]:
    """The best-supported guidelines that fit the budget (they arrive ranked)."""
    chosen: list[Guideline] = []
    used = 0
    for guideline in guidelines:
        cost = guideline_tokens(guideline)
        if used + cost > token_budget:
            continue
        chosen.append(guideline)
        used += cost
    return chosen


def render_guidelines(guidelines: Sequence[Mapping[str, Any]]) -> str:
    if not guidelines:
        return NO_GUIDELINES
    return "\n".join(f"- [{guideline['id']}] {guideline['text']}" for guideline in guidelines)


def render_verdicts(record: Mapping[str, Any]) -> str:
    """The judge's and the expert's verdicts on a past example, mistake flagged."""
    lines: list[str] = []
    if record.get("judge_verdict") is not None:
        wrong = " (the judge was wrong)" if record.get("judge_was_wrong") else ""
        lines.append(f"Judge's verdict: {render_value(record['judge_verdict'])}{wrong}")
    if record.get("value") is not None:
        lines.append(f"Expert's verdict: {render_value(record['value'])}")
    if record.get("rationale"):
        lines.append(delimit("expert_rationale", str(record["rationale"])))
    return "\n".join(lines)


def render_episode(episode: Episode, *, max_tokens_per_field: int) -> str:
    return EPISODE_TEMPLATE.format(
        feedback_id=episode["feedback_id"],
        fields=render_fields(episode, max_tokens_per_field=max_tokens_per_field),
        verdicts=render_verdicts(episode),
    )


def render_feedback(record: Mapping[str, Any], *, ref: int, max_tokens_per_field: int) -> str:
    """One feedback for a distillation prompt, named by a short `ref` the model cites (ids cost tokens)."""
    return FEEDBACK_TEMPLATE.format(
        ref=ref,
        fields=render_fields(record, max_tokens_per_field=max_tokens_per_field),
        verdicts=render_verdicts(record),
    )


def _retrieval_piece(value: Any) -> str:
    if not _is_conversation(value):
        return render_value(value)
    turns = [_as_turn(turn) for turn in value]
    asked = [content for role, content, _ in turns if role in ("user", "human") and content]
    answers = [content for role, content, calls in turns if role in ("assistant", "ai") and content and not calls]
    return "\n".join([*asked, *answers[-1:]])


def _is_conversation(value: Any) -> bool:
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        return False
    return all(
        isinstance(turn, BaseMessage) or (isinstance(turn, Mapping) and "role" in turn and "content" in turn)
        for turn in value
    )


def _as_turn(turn: BaseMessage | Mapping[str, Any]) -> tuple[str, str, list[tuple[str, str]]]:
    """(role, text, [(tool name, arguments)]) of a LangChain message or an OpenAI-style message dict."""
    if isinstance(turn, BaseMessage):
        role, content, raw_calls = turn.type, turn.content, getattr(turn, "tool_calls", None) or []
    else:
        role, content, raw_calls = str(turn["role"]), turn["content"], turn.get("tool_calls") or []
    text = content if isinstance(content, str) else _content_text(content)
    calls = []
    for call in raw_calls:
        if not isinstance(call, Mapping):
            continue
        function = call.get("function") or {}
        name = call.get("name") or function.get("name")
        arguments = call.get("args", function.get("arguments"))
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False, default=str)
        calls.append((str(name), arguments))
    return role, text, calls


def _content_text(content: Any) -> str:
    """Text of multi-part content: text parts as they are, other parts named by their type."""
    if isinstance(content, list):
        return " ".join(
            part.get("text", f"[{part.get('type', 'part')}]") if isinstance(part, Mapping) else str(part)
            for part in content
        )
    return json.dumps(content, ensure_ascii=False, default=str)


def _render_turn(turn: BaseMessage | Mapping[str, Any]) -> str:
    role, text, calls = _as_turn(turn)
    rendered_calls = "".join(f"\n  -> tool call {name}({arguments})" for name, arguments in calls)
    return f"{role}: {text}{rendered_calls}"
