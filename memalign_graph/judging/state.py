"""The judging graph's state: an example in, a verdict and the memory it used out."""

from __future__ import annotations

from typing import Any, TypedDict

from memalign_graph.records import Episode, Guideline, Verdict


class JudgeInput(TypedDict, total=False):
    inputs: Any
    outputs: Any
    expectations: Any
    example_id: str  # the example's id in the caller's data: feedback memory holds under it is reported
    exclude_ids: list[str]  # feedback this judgment must not be shown (episodes, and guidelines only they support)


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
    structured_output: str
    in_memory: list[str]  # this example's own records found in memory (the leakage guard)
    excluded: list[str]  # feedback ids retrieval left out
    verdict: Verdict
