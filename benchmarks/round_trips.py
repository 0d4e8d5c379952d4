"""Scenario `round_trips`: what a judgment and an alignment wait for when every remote call has a latency.

A hosted provider makes the embedding model remote too, so here the LLM and the embedding model both
take the configured latency per call. A judgment with empty memory should wait for one call (the
verdict: there is nothing to retrieve); with memory, for two (the query embedding, then the verdict).
A small alignment should wait for three: distillation (the episodes are embedded meanwhile), the
evidence check of the drafts, then the drafts' embedding for dedupe (two with the check off).

The last rows count completion tokens per distilled record at 1,000 feedback: what a real model is
slowest and most expensive at. The distiller answers as a capable model would (one guideline per
distinct rationale, citing every record it comes from), and the same answers are also priced in MLflow
MemAlign's format.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from benchmarks.context import RunContext
from benchmarks.fakes import CountingEmbeddings, GroupingChatModel, LatencyChatModel
from benchmarks.report import ScenarioResult, Target
from benchmarks.workload import feedback_batch, judge_spec, judged_example
from memalign_graph import AlignmentContext, MemAlignJudge

COLUMNS = [
    ("operation", "operation"),
    ("feedback_before", "feedback in memory before"),
    ("latency_ms", "LLM and embedding ms"),
    ("wall_s", "wall s"),
    ("round_trips", "round-trips"),
    ("llm_calls", "LLM calls"),
    ("embedding_calls", "embedding calls"),
    ("completion_tokens", "completion tokens"),
    ("per_record", "completion tokens per record"),
]
JUDGMENTS = 5
SMALL_ALIGNMENT = 50


def run(context: RunContext) -> ScenarioResult:
    sizes = context.sizes
    latency = sizes.latency_s
    result = ScenarioResult(
        name="round_trips", title="Round trips with a remote LLM and embedding model", columns=COLUMNS
    )
    model = LatencyChatModel(latency_s=0.0)
    embeddings = CountingEmbeddings(context.fast_embeddings(), label="fast fake")
    with MemAlignJudge(judge_spec(), model, embeddings=embeddings, home=context.folder("round-trips")) as judge:
        empty = _judgments(judge, model, embeddings, latency, feedback_before=0)
        aligned = _timed(model, embeddings, latency, lambda: judge.align(feedback_batch(0, SMALL_ALIGNMENT)))
        aligned.update(operation=f"align {SMALL_ALIGNMENT} feedback", feedback_before=0)
        warm = _judgments(judge, model, embeddings, latency, feedback_before=SMALL_ALIGNMENT)
    unchecked_context = AlignmentContext(check_evidence=False)
    home = context.folder("round-trips-unchecked")
    with MemAlignJudge(
        judge_spec(), model, embeddings=embeddings, home=home, alignment_context=unchecked_context
    ) as judge:
        unchecked = _timed(model, embeddings, latency, lambda: judge.align(feedback_batch(0, SMALL_ALIGNMENT)))
        unchecked.update(operation=f"align {SMALL_ALIGNMENT} feedback, evidence check off", feedback_before=0)
    result.rows += [empty, aligned, unchecked, warm]
    tokens = _completion_tokens(context, sizes.align_sweep_n)
    for row in tokens:
        row["per_record"] = row["completion_tokens"] / sizes.align_sweep_n
    result.rows += tokens

    result.targets += [
        Target(
            name="empty memory: no retrieval",
            goal="a judgment with empty memory waits for 1 round trip (the verdict)",
            measured=f"{empty['round_trips']:.2f} round trips, {empty['embedding_calls']} embedding calls",
            met=empty["embedding_calls"] == 0 and empty["round_trips"] < 1.5,
        ),
        Target(
            name=f"align {SMALL_ALIGNMENT}",
            goal="3 round trips: distill (episodes embedded meanwhile), check the drafts' evidence, embed the "
            "drafts; 2 with the evidence check off",
            measured=f"{aligned['round_trips']:.2f} round trips ({aligned['wall_s']:.2f} s); "
            f"{unchecked['round_trips']:.2f} with the check off",
            met=aligned["round_trips"] < 3.5 and unchecked["round_trips"] < 2.5,
        ),
        Target(
            name=f"completion tokens at {sizes.align_sweep_n}",
            goal="per distilled record at most MLflow MemAlign's format on the same answers",
            measured=f"{tokens[0]['per_record']:.1f} vs {tokens[1]['per_record']:.1f}",
            met=tokens[0]["per_record"] <= tokens[1]["per_record"],
        ),
    ]
    result.notes += [
        "round-trips = wall / latency. The LLM is the package's fake and the embeddings the hashed fake, each "
        "sleeping the latency per call, so the wait is the graphs' own sequencing.",
        "Judgment rows: the mean of sequential judgments. Before: a judgment with empty memory still embedded "
        "the query and searched (2 round trips), and an alignment embedded episodes after dedupe (3).",
        "Completion tokens: characters / 4 of the distiller's JSON answers. Ours cites feedback by its ref in "
        "the batch (1, 2, ...); feedback ids are never repeated back.",
    ]
    return result


def _judgments(
    judge: MemAlignJudge,
    model: LatencyChatModel,
    embeddings: CountingEmbeddings,
    latency: float,
    *,
    feedback_before: int,
) -> dict[str, Any]:
    walls: list[float] = []
    rows: list[dict[str, Any]] = []
    for index in range(JUDGMENTS):
        row = _timed(model, embeddings, latency, lambda index=index: judge.judge(**judged_example(index)))
        walls.append(row["wall_s"])
        rows.append(row)
    return {
        "operation": "one judgment",
        "feedback_before": feedback_before,
        "latency_ms": round(latency * 1000),
        "wall_s": statistics.mean(walls),
        "round_trips": statistics.mean(walls) / latency,
        "llm_calls": rows[-1]["llm_calls"],
        "embedding_calls": rows[-1]["embedding_calls"],
        "completion_tokens": None,
        "per_record": None,
    }


def _timed(model: LatencyChatModel, embeddings: CountingEmbeddings, latency: float, action: Any) -> dict[str, Any]:
    model.reset()
    embeddings.reset()
    model.latency_s = embeddings.latency_s = latency
    started = time.perf_counter()
    action()
    wall = time.perf_counter() - started
    model.latency_s = embeddings.latency_s = 0.0
    return {
        "latency_ms": round(latency * 1000),
        "wall_s": wall,
        "round_trips": wall / latency,
        "llm_calls": model.calls,
        "embedding_calls": embeddings.calls,
        "completion_tokens": None,
        "per_record": None,
    }


def _completion_tokens(context: RunContext, n: int) -> list[dict[str, Any]]:
    model = GroupingChatModel(latency_s=0.0)
    embeddings = CountingEmbeddings(context.fast_embeddings(), label="fast fake")
    home = context.folder("completion-tokens")
    with MemAlignJudge(
        judge_spec(), model, embeddings=embeddings, home=home, alignment_context=AlignmentContext(batch_size=16)
    ) as judge:
        judge.align(feedback_batch(0, n))
    ours = model.stats("distilled_guidelines").completion_tokens
    theirs = model.mlflow_completion_tokens
    common = {"feedback_before": 0, "latency_ms": 0, "wall_s": None, "round_trips": None, "embedding_calls": None}
    calls = model.stats("distilled_guidelines").calls
    return [
        {**common, "operation": f"distill {n}: refs (ours)", "llm_calls": calls, "completion_tokens": ours},
        {**common, "operation": f"distill {n}: MLflow's format", "llm_calls": calls, "completion_tokens": theirs},
    ]
