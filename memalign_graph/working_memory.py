"""Working memory: the prompt of one judgment, built from the instructions and both memories.

The stable part (instructions, guidelines) comes first and the per-call part (retrieved examples,
the judged example) last, so providers that cache prompt prefixes reuse the first part.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from memalign_graph.prompts import (
    DATA_NOTICE,
    EPISODE_TEMPLATE,
    FEEDBACK_TEMPLATE,
    JUDGE_SYSTEM_PROMPT,
    JUDGE_USER_PROMPT,
    NO_EXAMPLES,
    NO_GUIDELINES,
)
from memalign_graph.rendering import approximate_tokens, delimit, render_fields, render_value
from memalign_graph.spec import JudgeSpec
from memalign_graph.state import Episode, FeedbackRecord, Guideline, WorkingMemory


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


def render_guidelines(guidelines: Sequence[Guideline]) -> str:
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


def render_feedback(record: FeedbackRecord, *, max_tokens_per_field: int) -> str:
    return FEEDBACK_TEMPLATE.format(
        feedback_id=record["id"],
        fields=render_fields(record, max_tokens_per_field=max_tokens_per_field),
        verdicts=render_verdicts(record),
    )


def build_judge_prompt(
    spec: JudgeSpec,
    example: Mapping[str, Any],
    guidelines: Sequence[Guideline],
    episodes: Sequence[Episode],
    *,
    guideline_token_budget: int,
    field_token_budget: int,
) -> WorkingMemory:
    shown = select_guidelines(guidelines, guideline_token_budget)
    system = JUDGE_SYSTEM_PROMPT.format(
        judge=spec.name,
        instructions=spec.instructions,
        data_notice=DATA_NOTICE,
        value_description=spec.output.describe(),
        guidelines=delimit("guidelines", render_guidelines(shown)),
    )
    examples = (
        "\n\n".join(render_episode(episode, max_tokens_per_field=field_token_budget) for episode in episodes)
        or NO_EXAMPLES
    )
    user = JUDGE_USER_PROMPT.format(
        examples=examples,
        example=render_fields(example, max_tokens_per_field=field_token_budget),
    )
    return WorkingMemory(
        system=system,
        user=user,
        guideline_ids=[guideline["id"] for guideline in shown],
        episode_ids=[episode["feedback_id"] for episode in episodes],
    )
