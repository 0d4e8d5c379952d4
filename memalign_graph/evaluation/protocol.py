"""The MemAlign evaluation protocol: learning curves of a judge as experts' feedback accumulates.

For each seed, the examples are shuffled and split into `train_size` training examples and the rest
for testing. Training feedback is fed in shards (0, 2, 5, 10, 20, 50 examples seen, by default); after
each shard the judge is measured on the training examples seen so far and on the test set, starting
each seed and variant from empty memory. Quality is exact match for labels and concordance (CCC) for
scores. Every LLM call, token and second is accounted per alignment stage and per judgment.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.sqlite import SqliteSaver

from memalign_graph.accounting import Prices, Usage, UsageTracker, track_usage
from memalign_graph.bulk import judge_examples
from memalign_graph.errors import MemAlignError
from memalign_graph.evaluation.ablations import (
    DEFAULT_SHARDS,
    Variant,
    VariantJudges,
    open_variant_judges,
    variant_feedback,
    variant_order,
)
from memalign_graph.evaluation.datasets import LabeledExample
from memalign_graph.evaluation.intervals import DEFAULT_REPLICATES
from memalign_graph.evaluation.metrics import agreement_report, quality_metric_name
from memalign_graph.evaluation.predictions import (
    add_intervals,
    judged_example,
    majority_reference,
    prediction_rows,
    shard_regressions,
)
from memalign_graph.evaluation.provenance import provenance
from memalign_graph.evaluation.summary import (
    costs,
    describe_error,
    error_counts,
    mean_and_spread,
    per_judgment,
    summarize,
)
from memalign_graph.feedback import Feedback
from memalign_graph.memory.qdrant_store import QdrantEpisodicStore
from memalign_graph.records import Verdict
from memalign_graph.spec import JudgeSpec

PAPER_TRAIN_SIZE = 50
ALIGNMENT_STAGES = ("validate", "distill", "dedupe", "write_memory")
JUDGING_STAGES = ("retrieve", "build_working_memory", "judge", "parse")


class EvaluationError(MemAlignError, ValueError):
    """The protocol cannot run as asked (too few examples, shards out of range, every judgment failing)."""


@dataclass(frozen=True)
class ProtocolSettings:
    """How the protocol runs. `test_size` caps the test set (a random subset) to bound the cost."""

    train_size: int = 50
    shards: tuple[int, ...] = DEFAULT_SHARDS
    seeds: tuple[int, ...] = (0, 1, 2)
    variants: tuple[Variant, ...] = (Variant(),)
    test_size: int | None = None
    k: int = 5
    max_concurrency: int = 4
    prices: Prices | None = None
    bootstrap: int = DEFAULT_REPLICATES  # resamples for the 95% intervals; 0 leaves them out

    @classmethod
    def fitting(cls, available: int, **given: Any) -> ProtocolSettings:
        """Settings that fit `available` examples: the paper's 50 training examples when at least 100 are
        available, else half of them; its shards up to that train size (and the train size itself).
        Settings given (and not None) are kept as they are."""
        chosen = {name: value for name, value in given.items() if value is not None}
        train_size = chosen.setdefault(
            "train_size", PAPER_TRAIN_SIZE if available >= 2 * PAPER_TRAIN_SIZE else available // 2
        )
        chosen.setdefault("shards", tuple(sorted({*(s for s in DEFAULT_SHARDS if s < train_size), train_size})))
        return cls(**chosen)

    def check(self, available: int) -> None:
        """Raise `EvaluationError` naming the setting that cannot work with `available` examples."""
        if self.train_size < 1:
            raise EvaluationError(f"train_size: {self.train_size} must be at least 1.")
        if available <= self.train_size:
            raise EvaluationError(
                f"train_size: {self.train_size} leaves no test examples out of {available}; "
                f"use a smaller train size or more data."
            )
        if not self.shards or list(self.shards) != sorted(set(self.shards)) or self.shards[0] < 0:
            raise EvaluationError(f"shards: {list(self.shards)} must be distinct counts in increasing order, from 0.")
        if self.shards[-1] > self.train_size:
            raise EvaluationError(
                f"shards: {self.shards[-1]} examples seen is more than train_size {self.train_size}; "
                f"lower the shard or raise train_size."
            )
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise EvaluationError(f"seeds: {list(self.seeds)} must be one or more distinct integers.")
        if not self.variants or len(set(self.variants)) != len(self.variants):
            raise EvaluationError("variants: give one or more distinct variants.")
        if self.test_size is not None and self.test_size < 1:
            raise EvaluationError(f"test_size: {self.test_size} must be at least 1 (or unset for all).")

    def judgments(self, available: int) -> int:
        """How many judgments a run makes: seen training examples and the test set, after every shard."""
        test = (
            available - self.train_size if self.test_size is None else min(self.test_size, available - self.train_size)
        )
        return len(self.seeds) * len(self.variants) * sum(shard + test for shard in self.shards)


def split_train_test(
    examples: Sequence[LabeledExample], *, train_size: int, seed: int, test_size: int | None = None
) -> tuple[list[LabeledExample], list[LabeledExample]]:
    """A seeded shuffle: the first `train_size` examples train, the rest (up to `test_size`) test."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    shuffled = [examples[index] for index in order]
    train, test = shuffled[:train_size], shuffled[train_size:]
    return train, test if test_size is None else test[:test_size]


@dataclass
class EvaluationResult:
    """Every measurement (`runs`: one per seed, variant and shard) and their summary over seeds."""

    judge: str
    metric: str
    model: str
    source: str
    settings: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)
    references: dict[str, Any] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_protocol(
    spec: JudgeSpec,
    examples: Sequence[LabeledExample],
    *,
    model: BaseChatModel,
    embeddings: Embeddings,
    memory_dir: str | Path,
    settings: ProtocolSettings = ProtocolSettings(),
    model_label: str | None = None,
    source: str = "",
    on_progress: Callable[[int], None] | None = None,
) -> EvaluationResult:
    """Run the protocol with memory under `memory_dir` (which should start empty) and return every number.

    `on_progress(n)` is told of every judgment and every feedback item aligned.
    """
    if any(example.value is None for example in examples):
        raise EvaluationError("examples: every example needs the expert's value to be measured against.")
    settings.check(len(examples))
    folder = Path(memory_dir)
    if (folder / "semantic.sqlite").exists() or (folder / "episodes").exists():
        raise EvaluationError(f"memory_dir: {folder} already holds memory; the protocol starts from empty memory.")
    folder.mkdir(parents=True, exist_ok=True)
    result = EvaluationResult(
        judge=spec.name,
        metric=quality_metric_name(spec.output),
        model=model_label or type(model).__name__,
        source=source,
        settings=_settings_dict(settings, len(examples)),
        provenance=provenance(model=model_label or type(model).__name__, embeddings=embeddings, source=source),
    )
    majority = []
    store = QdrantEpisodicStore(path=folder / "episodes")
    connection = sqlite3.connect(folder / "semantic.sqlite", check_same_thread=False)
    try:
        checkpointer = SqliteSaver(connection)
        for seed in settings.seeds:
            train, test = split_train_test(
                examples, train_size=settings.train_size, seed=seed, test_size=settings.test_size
            )
            majority.append({"seed": seed, **majority_reference(spec.output, train, test)})
            for variant in settings.variants:
                with open_variant_judges(
                    spec,
                    model,
                    embeddings,
                    variant,
                    episodic_store=store,
                    checkpointer=checkpointer,
                    namespace=f"eval-s{seed}-{variant.key}",
                    k=settings.k,
                    max_concurrency=settings.max_concurrency,
                ) as judges:
                    runs, predictions = _learning_curve(judges, spec, seed, variant, train, test, settings, on_progress)
                    result.runs.extend(runs)
                    result.predictions.extend(predictions)
    finally:
        store.close()
        connection.close()
    result.summary = summarize(result.runs)
    add_intervals(result.summary, result.predictions, spec.output, replicates=settings.bootstrap)
    result.references = references(result.summary, majority)
    return result


def references(summary: Sequence[dict[str, Any]], majority: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What the curves are read against: the judge with empty memory (zero-shot, when shard 0 was measured;
    every variant measures the same judge there, the first is reported) and the majority class."""
    first = sorted(summary, key=lambda row: variant_order(row["variant"]))
    zero = next((row for row in first if row["examples_seen"] == 0), None)
    quality = [entry["quality"] for entry in majority]
    return {
        "zero_shot": None
        if zero is None
        else {
            key: zero[f"test_quality_{key}"] for key in ("mean", "std", "low", "high") if f"test_quality_{key}" in zero
        },
        "majority_class": {
            "quality_mean": mean_and_spread(quality)[0],
            "per_seed": list(majority),
        },
    }


def _learning_curve(
    judges: VariantJudges,
    spec: JudgeSpec,
    seed: int,
    variant: Variant,
    train: list[LabeledExample],
    test: list[LabeledExample],
    settings: ProtocolSettings,
    on_progress: Callable[[int], None] | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One seed and variant: align shard by shard from empty memory, measuring after each shard; the runs,
    and every judgment as a prediction row."""
    runs: list[dict[str, Any]] = []
    predictions: list[dict[str, Any]] = []
    previous: list[dict[str, Any]] = []
    seen = given = 0
    alignment_total = Usage()
    for index, shard in enumerate(settings.shards):
        feedback = [item for item in (variant_feedback(example, variant) for example in train[seen:shard]) if item]
        alignment_usage, alignment = _align(judges, feedback)
        alignment_total = alignment_total + alignment_usage
        if on_progress and shard > seen:
            on_progress(shard - seen)
        seen, given = shard, given + len(feedback)
        measured, judging_usage, judged = _measure(judges, spec, train[:seen], test, settings, on_progress)
        rows = prediction_rows(
            judged, [*(["train"] * seen), *(["test"] * len(test))], measured.pop("verdicts"),
            seed=seed, variant=variant.key, shard=index, examples_seen=seen,
        )  # fmt: skip
        predictions.extend(rows)
        runs.append(
            {
                "seed": seed,
                "variant": variant.key,
                "memory": variant.memory,
                "feedback": variant.feedback,
                "examples_seen": seen,
                "feedback_given": given,
                "guidelines": len(judges.judge.guidelines()),
                **measured,
                "regressions": shard_regressions(previous, rows) if index else None,
                "alignment": {**alignment, "cumulative": alignment_total.as_dict()},
                "cost": costs(
                    settings.prices, alignment_usage, alignment_total, judging_usage, measured["judging"]["judgments"]
                ),
            }
        )
        previous = rows
    return runs, predictions


def _measure(
    judges: VariantJudges,
    spec: JudgeSpec,
    seen: list[LabeledExample],
    test: list[LabeledExample],
    settings: ProtocolSettings,
    on_progress: Callable[[int], None] | None,
) -> tuple[dict[str, Any], Usage, list[LabeledExample]]:
    """Judge the seen training examples (their own records in memory) and the test set (never shown its
    own record); agreement, each judgment's accounting, and the verdicts."""
    judged = [*seen, *test]
    tracker = UsageTracker()
    started = time.perf_counter()
    with track_usage(tracker):
        verdicts = judge_examples(
            judges.judge,
            [judged_example(example, "train") for example in seen] + [judged_example(e, "test") for e in test],
            labels=[f"train:{e.id}" for e in seen] + [f"test:{e.id}" for e in test],
            max_concurrency=settings.max_concurrency,
            tracker=tracker,
            on_done=on_progress,
        )
    seconds = time.perf_counter() - started
    _refuse_total_failure(verdicts)
    values = [None if isinstance(verdict, Exception) else verdict["score"] for verdict in verdicts]
    usage = sum(tracker.by_item().values(), Usage())
    measured = {
        "train": agreement_report(spec.output, [e.value for e in seen], values[: len(seen)]) if seen else None,
        "test": agreement_report(spec.output, [e.value for e in test], values[len(seen) :]),
        "judging": {
            "judgments": len(judged),
            "wall_seconds": seconds,
            "usage": usage.as_dict(),
            "stages": {stage: used.as_dict() for stage, used in tracker.by_stage().items()},
            "per_judgment": per_judgment(usage, len(judged)),
        },
        "no_verdict_errors": error_counts(verdicts),
        "verdicts": verdicts,
    }
    return measured, usage, judged


def _align(judges: VariantJudges, feedback: list[Feedback]) -> tuple[Usage, dict[str, Any]]:
    """Align on one shard's feedback; its usage, and what it did with calls, tokens and time by stage."""
    if not feedback:
        return Usage(), {"wall_seconds": 0.0, "usage": Usage().as_dict(), "stages": {}, "report": None}
    tracker = UsageTracker()
    started = time.perf_counter()
    with track_usage(tracker):
        report = judges.aligner.align(feedback)
    usage = tracker.total()
    return usage, {
        "wall_seconds": time.perf_counter() - started,
        "usage": usage.as_dict(),
        "stages": {stage: used.as_dict() for stage, used in tracker.by_stage().items()},
        "report": {
            "added": len(report["added"]),
            "distilled": len(report["distilled"]),
            "pending": len(report["pending"]),
            "failed_batches": [failure["error"] for failure in report["failed_batches"]],
            "guidelines_added": len(report["guidelines_added"]),
            "guidelines_merged": len(report["guidelines_merged"]),
        },
    }


def _refuse_total_failure(verdicts: Sequence[Verdict | Exception]) -> None:
    """When no judgment at all got a verdict, the model is misconfigured: stop instead of measuring nothing."""
    failures = [verdict for verdict in verdicts if isinstance(verdict, Exception)]
    if verdicts and len(failures) == len(verdicts):
        raise EvaluationError(f"every judgment failed; the first error: {describe_error(failures[0])}")


def _settings_dict(settings: ProtocolSettings, available: int) -> dict[str, Any]:
    return {
        "train_size": settings.train_size,
        "shards": list(settings.shards),
        "seeds": list(settings.seeds),
        "variants": [variant.key for variant in settings.variants],
        "test_size": settings.test_size,
        "examples": available,
        "k": settings.k,
        "max_concurrency": settings.max_concurrency,
        "prices_per_million_tokens": asdict(settings.prices) if settings.prices else None,
        "bootstrap_replicates": settings.bootstrap,
        "test_judged": "around its own record (exclude_self): never shown it",
        "train_judged": "with its own record in memory (fitting to the feedback seen, as the paper measures)",
    }
