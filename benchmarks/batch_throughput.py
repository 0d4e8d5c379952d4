"""Scenario `batch_throughput`: many judgments through `batch` / `abatch` with bounded concurrency.

The ideal is `ceil(n / concurrency) x latency`: every slot busy with an LLM call all the time. The
fake model records how many calls were actually in flight at once, which tells a slow run's cause
(too few in flight) from CPU-bound overhead (all in flight, but slower than the latency).
"""

from __future__ import annotations

import asyncio
import math
import time

from benchmarks.context import RunContext
from benchmarks.fakes import LatencyChatModel
from benchmarks.report import ScenarioResult, Target
from benchmarks.workload import feedback_batch, judge_spec, judged_example
from memalign_graph import AlignmentContext, MemAlignJudge

COLUMNS = [
    ("method", "method"),
    ("n", "judgments"),
    ("latency_ms", "LLM ms"),
    ("concurrency", "max_concurrency"),
    ("wall_s", "wall s"),
    ("ideal_s", "ideal s"),
    ("ratio", "wall / ideal"),
    ("in_flight", "LLM calls in flight max"),
    ("errors", "errors"),
]
TOLERANCE = 1.2


def run(context: RunContext) -> ScenarioResult:
    sizes = context.sizes
    result = ScenarioResult(name="batch_throughput", title="Batch judging throughput", columns=COLUMNS)
    home = context.folder("batch")
    model = LatencyChatModel()
    examples = [judged_example(index) for index in range(sizes.batch_judgments)]
    with MemAlignJudge(
        judge_spec(),
        model,
        embeddings=context.fast_embeddings(),
        home=home,
        max_concurrency=16,
        alignment_context=AlignmentContext(batch_size=16),
    ) as judge:
        judge.align(feedback_batch(0, min(200, sizes.batch_judgments * 2)))
        model.latency_s = sizes.latency_s
        for method, concurrency in sizes.batch_runs:
            model.reset()
            started = time.perf_counter()
            if method == "batch":
                verdicts = judge.batch(examples, max_concurrency=concurrency, return_exceptions=True)
            else:
                verdicts = asyncio.run(judge.abatch(examples, max_concurrency=concurrency, return_exceptions=True))
            wall = time.perf_counter() - started
            ideal = math.ceil(len(examples) / concurrency) * sizes.latency_s
            result.rows.append(
                {
                    "method": method,
                    "n": len(examples),
                    "latency_ms": round(sizes.latency_s * 1000),
                    "concurrency": concurrency,
                    "wall_s": wall,
                    "ideal_s": ideal,
                    "ratio": wall / ideal,
                    "in_flight": model.stats("verdict").max_in_flight,
                    "errors": sum(isinstance(verdict, Exception) for verdict in verdicts),
                }
            )
    for row in result.rows:
        result.targets.append(
            Target(
                name=f"{row['method']} at max_concurrency {row['concurrency']}",
                goal=f"{row['n']} judgments within {TOLERANCE:.0%} of ceil(n / concurrency) x latency "
                f"= {row['ideal_s']:.1f} s",
                measured=f"{row['wall_s']:.1f} s (x{row['ratio']:.2f}), {row['in_flight']} LLM calls in flight at most",
                met=row["ratio"] <= TOLERANCE,
            )
        )
    result.notes.append(
        "One judge with the guidelines of aligned feedback and its episodes (memory on disk), fast fake "
        f"embedding, fake model at {round(sizes.latency_s * 1000)} ms a call. abatch runs under asyncio.run."
    )
    return result
