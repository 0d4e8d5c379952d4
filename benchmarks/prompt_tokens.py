"""Scenario `prompt_tokens`: prompt tokens per judgment as feedback accumulates (0 to 1000).

Counted with the package's own estimate (`approximate_tokens`, 4 characters a token) on the prompts the
fake model actually received (system + user). The guideline block is the part of the system prompt after
the guideline header; its budget is `JudgeContext.guideline_token_budget`. Semantic memory itself is kept
small by dedupe (exact and near-duplicate merges) and consolidation (one LLM call when the stored
guidelines outgrow the budget; the fake answers it deterministically, see `benchmarks/fakes.py`).
"""

from __future__ import annotations

import statistics

from benchmarks.context import RunContext
from benchmarks.fakes import LatencyChatModel
from benchmarks.report import ScenarioResult, Target
from benchmarks.workload import feedback_batch, judge_spec, judged_example
from memalign_graph import AlignmentContext, JudgeContext, MemAlignJudge
from memalign_graph.rendering import guideline_block_tokens

COLUMNS = [
    ("feedback_seen", "feedback seen"),
    ("guidelines_stored", "guidelines stored"),
    ("stored_tokens", "stored guideline tokens"),
    ("guidelines_shown", "guidelines shown"),
    ("block_tokens_max", "guideline block tokens max"),
    ("budget", "budget"),
    ("prompt_tokens_p50", "prompt tokens p50"),
    ("prompt_tokens_max", "prompt tokens max"),
    ("consolidations", "consolidation calls so far"),
]


def run(context: RunContext) -> ScenarioResult:
    sizes = context.sizes
    result = ScenarioResult(name="prompt_tokens", title="Prompt tokens per judgment vs feedback seen", columns=COLUMNS)
    concurrency, batch = sizes.align_setting
    home = context.folder("tokens")
    model = LatencyChatModel()
    budget = JudgeContext().guideline_token_budget
    consolidations = 0
    with MemAlignJudge(
        judge_spec(),
        model,
        embeddings=context.fast_embeddings(),
        home=home,
        max_concurrency=concurrency,
        alignment_context=AlignmentContext(batch_size=batch),
    ) as judge:
        seen = 0
        for step in sizes.token_steps:
            if step > seen:
                model.reset()
                judge.align(feedback_batch(seen, step - seen))
                consolidations += model.stats("consolidated_guidelines").calls
                seen = step
            model.reset()
            verdicts = [judge.judge(**judged_example(index)) for index in range(sizes.token_judgments)]
            stats = model.stats("verdict")
            stored = judge.guidelines()
            result.rows.append(
                {
                    "feedback_seen": seen,
                    "guidelines_stored": len(stored),
                    "stored_tokens": guideline_block_tokens(stored),
                    "guidelines_shown": max(len(v["metadata"]["guideline_ids"]) for v in verdicts),
                    "block_tokens_max": max(stats.guideline_block_tokens),
                    "budget": budget,
                    "prompt_tokens_p50": statistics.median(stats.prompt_tokens),
                    "prompt_tokens_max": max(stats.prompt_tokens),
                    "consolidations": consolidations,
                }
            )
    worst = max(row["block_tokens_max"] for row in result.rows)
    last = result.rows[-1]
    result.targets.append(
        Target(
            name="guideline block within budget",
            goal=f"guideline block <= {budget} tokens at every step from 0 to {last['feedback_seen']} feedback",
            measured=(
                f"max {worst} tokens; at {last['feedback_seen']} feedback the prompt is "
                f"{last['prompt_tokens_p50']:.0f} tokens p50 ({last['guidelines_stored']} guidelines stored, "
                f"{last['stored_tokens']} tokens)"
            ),
            met=worst <= budget,
        )
    )
    result.notes += [
        f"{sizes.token_judgments} judgments per step, k = 5 retrieved examples, field budget 1,000 tokens; "
        "synthetic inputs ~60 tokens, outputs ~45, rationales ~20 (benchmarks/workload.py).",
        "Reference implementation, as measured in the issue: ~770 prompt tokens after 10 feedback, ~3,100 "
        "after 1,000 (every guideline in every prompt, no budget).",
        "stored guideline tokens counts every stored guideline as the prompt would render it; it may exceed "
        "the budget between consolidations, and the prompt then shows the best-supported ones that fit.",
    ]
    return result
