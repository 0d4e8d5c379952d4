"""Working memory: the prompt of one judgment, built from the instructions and both memories.

The stable part (instructions, guidelines) comes first and the per-call part (retrieved examples,
the judged example) last, so providers that cache prompt prefixes reuse the first part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from memalign_graph.judging.state import MemoryUsed, WorkingMemory
from memalign_graph.prompts import DATA_NOTICE, JUDGE_SYSTEM_PROMPT, JUDGE_USER_PROMPT, NO_EXAMPLES
from memalign_graph.records import Episode, Guideline
from memalign_graph.rendering import delimit, render_episode, render_fields, render_guidelines, select_guidelines
from memalign_graph.spec import JudgeSpec


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


def memory_used(guidelines: Sequence[Guideline], episodes: Sequence[Episode], memory: WorkingMemory) -> MemoryUsed:
    """What the judgment was shown, for the caller: the guidelines within budget and every episode."""
    shown = set(memory["guideline_ids"])
    return MemoryUsed(
        guidelines=[
            {"id": g["id"], "text": g["text"], "feedback_ids": g["feedback_ids"]}
            for g in guidelines
            if g["id"] in shown
        ],
        episodes=list(episodes),
    )
