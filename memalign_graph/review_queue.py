"""What to review next: unlabelled examples ranked by how much an expert's verdict on each would teach.

Experts' time is the scarce input. Each candidate is judged a few times and scored by three signals,
each between 0 and 1:

- **instability**: the judge disagrees with itself. It judges the example `repeats` times with memory
  (a pairwise judge alternates the order of the two responses and maps the swapped verdict back, so a
  position bias shows). For labels: the share of judgments off the most common verdict, scaled so that
  a two-way split is 1 (no verdict counts as a verdict of its own); for scores: the range of the scores
  over the scale's width.
- **novelty**: nothing like it is in memory: 1 minus the similarity of the nearest episode (clamped to
  0..1; 1 with no episode at all). A verdict here covers ground memory does not.
- **memory effect**: memory changes the verdict: the judge with memory against the same judge with none
  (k = 0, no guidelines). 1 when the labels differ; for scores the distance over the scale's width.
  Where what was learned moves a verdict, an expert confirms the lesson or catches it overreaching.

The rule: `teach = instability + novelty + memory effect` (each weighted 1 by default, `weights=`),
highest first; ties keep the file's order. An example memory already holds (same id or content: the
leakage guard) is left out: its verdict is known. The cost is `repeats + 1` judgments per example.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig

from memalign_graph.judge import MemAlignJudge
from memalign_graph.judging.leakage import guard_input
from memalign_graph.judging.state import JudgeInput
from memalign_graph.spec import Pairwise, Score

SWAPPED = {"A": "B", "B": "A", "tie": "tie"}
NO_VERDICT = object()


@dataclass(frozen=True)
class Candidate:
    """An example to rank: what the judge reads, its id, and where it came from (for people)."""

    id: str
    inputs: Any
    outputs: Any = None
    expectations: Any = None
    where: str = ""


class ReviewItem(TypedDict):
    """One ranked example: its score, the three signals, and the verdicts they came from."""

    rank: int
    id: str
    where: str
    score: float
    instability: float
    novelty: float
    memory_effect: float
    verdicts: list[Any]  # with memory, one per repeat (None: no verdict); pairwise swaps mapped back
    without_memory: Any
    nearest_episode: dict[str, Any] | None  # {feedback_id, similarity}
    example: dict[str, Any]


@dataclass(frozen=True)
class ReviewQueue:
    """The ranked examples, and the ids left out because memory already holds them."""

    items: list[ReviewItem]
    in_memory: list[str]


def rank_for_review(
    judge: MemAlignJudge,
    candidates: Sequence[Candidate],
    *,
    repeats: int = 2,
    limit: int | None = None,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    max_concurrency: int | None = None,
) -> ReviewQueue:
    """Rank `candidates` by what an expert's verdict on each would teach `judge` (see the module's rule)."""
    if repeats < 1:
        raise ValueError(f"repeats: {repeats} must be at least 1.")
    pairwise = isinstance(judge.spec.output, Pairwise)
    config = RunnableConfig(max_concurrency=max_concurrency or judge.max_concurrency)
    with_memory = [
        _input(candidate, swap=pairwise and attempt % 2 == 1) for candidate in candidates for attempt in range(repeats)
    ]
    answered = judge.judge_graph.batch(with_memory, config, context=judge.judge_context, return_exceptions=True)
    bare = replace(judge.judge_context, k=0, guideline_token_budget=0)
    plain = judge.judge_graph.batch([_input(c) for c in candidates], config, context=bare, return_exceptions=True)
    items: list[ReviewItem] = []
    in_memory: list[str] = []
    for index, candidate in enumerate(candidates):
        results = answered[index * repeats : (index + 1) * repeats]
        if any(not isinstance(r, Exception) and r["verdict"]["metadata"]["in_memory"] for r in results):
            in_memory.append(candidate.id)
            continue
        verdicts = [_value(result, swapped=pairwise and attempt % 2 == 1) for attempt, result in enumerate(results)]
        items.append(_item(judge, candidate, verdicts, _value(plain[index]), _nearest(results), weights))
    items.sort(key=lambda item: -item["score"])  # stable: ties keep the file's order
    chosen = items if limit is None else items[:limit]
    for rank, item in enumerate(chosen, start=1):
        item["rank"] = rank
    return ReviewQueue(items=chosen, in_memory=in_memory)


def teach_score(instability: float, novelty: float, memory_effect: float, weights: Sequence[float]) -> float:
    """The rule in one line: the weighted sum of the three signals."""
    return weights[0] * instability + weights[1] * novelty + weights[2] * memory_effect


def instability_of(verdicts: Sequence[Any], output: Any) -> float:
    if len(verdicts) < 2:
        return 0.0
    if isinstance(output, Score):
        scores = [float(v) for v in verdicts if v is not None]
        spread = (max(scores) - min(scores)) / (output.high - output.low) if scores else 0.0
        return 1.0 if len(scores) < len(verdicts) else spread
    keys = [NO_VERDICT if v is None else v for v in verdicts]
    modal = Counter(keys).most_common(1)[0][1]
    return min(1.0, (len(keys) - modal) / (len(keys) / 2))


def memory_effect_of(with_memory: Any, without: Any, output: Any) -> float:
    if with_memory is None or without is None:
        return 1.0 if (with_memory is None) != (without is None) else 0.0
    if isinstance(output, Score):
        return abs(float(with_memory) - float(without)) / (output.high - output.low)
    return 0.0 if with_memory == without else 1.0


def _item(
    judge: MemAlignJudge,
    candidate: Candidate,
    verdicts: list[Any],
    without: Any,
    nearest: dict[str, Any] | None,
    weights: Sequence[float],
) -> ReviewItem:
    output = judge.spec.output
    instability = instability_of(verdicts, output)
    novelty = 1.0 if nearest is None else min(1.0, max(0.0, 1.0 - nearest["similarity"]))
    first = next((v for v in verdicts if v is not None), None)
    effect = memory_effect_of(first, without, output)
    return ReviewItem(
        rank=0,
        id=candidate.id,
        where=candidate.where,
        score=teach_score(instability, novelty, effect, weights),
        instability=instability,
        novelty=novelty,
        memory_effect=effect,
        verdicts=verdicts,
        without_memory=without,
        nearest_episode=nearest,
        example={"inputs": candidate.inputs, "outputs": candidate.outputs, "expectations": candidate.expectations},
    )


def _input(candidate: Candidate, *, swap: bool = False) -> JudgeInput:
    outputs = candidate.outputs
    if swap:
        outputs = (
            [outputs[1], outputs[0]] if isinstance(outputs, list | tuple) else {"A": outputs["B"], "B": outputs["A"]}
        )
    example = JudgeInput(inputs=candidate.inputs, outputs=outputs, expectations=candidate.expectations)
    return guard_input(example, {"example_id": candidate.id})[0]


def _value(result: Any, *, swapped: bool = False) -> Any:
    if isinstance(result, Exception):
        return None
    value = result["verdict"]["score"]
    return SWAPPED.get(value, value) if swapped else value


def _nearest(results: Sequence[Any]) -> dict[str, Any] | None:
    """The nearest episode any judgment of the example was shown (the same for every repeat)."""
    for result in results:
        if not isinstance(result, Exception):
            episodes = result["memory_used"]["episodes"]
            if episodes:
                return {"feedback_id": episodes[0]["feedback_id"], "similarity": float(episodes[0]["similarity"])}
            return None
    return None
