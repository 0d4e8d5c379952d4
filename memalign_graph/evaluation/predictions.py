"""Every judgment the protocol made, one row each, and what is derived from them: the regressions between
shards, the majority-class reference, and the per-seed samples the bootstrap intervals resample.

A prediction row: `{id, seed, variant, shard, examples_seen, split, expected, verdict, rationale,
guideline_ids, episode_ids, in_memory, own_record_shown, error}`. `split` is `train` (an example already
fed as feedback: its own record is in memory, as the paper measures fitting) or `test` (held out; judged
with `exclude_self`, so even a duplicate of a training row under another id is never shown to it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from memalign_graph.evaluation.datasets import LabeledExample
from memalign_graph.evaluation.intervals import bootstrap_intervals
from memalign_graph.evaluation.metrics import agreement_report, label_name, metric_names
from memalign_graph.evaluation.summary import describe_error
from memalign_graph.records import RegressionReport, Verdict
from memalign_graph.regressions import compare_verdicts
from memalign_graph.spec import OutputType, Score


def judged_example(example: LabeledExample, split: str) -> dict[str, Any]:
    """What a judge is given for one protocol judgment: the fields, the id, and for test `exclude_self`."""
    return {**example.example(), "example_id": example.id, "exclude_self": split == "test"}


def prediction_rows(
    examples: Sequence[LabeledExample],
    splits: Sequence[str],
    verdicts: Sequence[Verdict | Exception],
    *,
    seed: int,
    variant: str,
    shard: int,
    examples_seen: int,
) -> list[dict[str, Any]]:
    rows = []
    for example, split, verdict in zip(examples, splits, verdicts, strict=True):
        row: dict[str, Any] = {
            "id": example.id,
            "seed": seed,
            "variant": variant,
            "shard": shard,
            "examples_seen": examples_seen,
            "split": split,
            "expected": example.value,
        }
        if isinstance(verdict, Exception):
            row.update(verdict=None, rationale=None, guideline_ids=[], episode_ids=[], in_memory=[])
            row.update(own_record_shown=False, error=describe_error(verdict))
        else:
            metadata = verdict["metadata"]
            in_memory = list(metadata.get("in_memory", []))
            row.update(
                verdict=verdict["score"],
                rationale=verdict["comment"],
                guideline_ids=list(metadata["guideline_ids"]),
                episode_ids=list(metadata["episode_ids"]),
                in_memory=in_memory,
                own_record_shown=bool(set(in_memory) & set(metadata["episode_ids"])),
                error=None,
            )
        rows.append(row)
    return rows


def shard_regressions(previous: Sequence[dict[str, Any]], current: Sequence[dict[str, Any]]) -> RegressionReport:
    """The training examples judged at the previous shard and again now: fixed, broken, unchanged."""
    before = {row["id"]: row["verdict"] for row in previous if row["split"] == "train"}
    now = {row["id"]: row for row in current if row["split"] == "train" and row["id"] in before}
    return compare_verdicts(
        {fid: row["expected"] for fid, row in now.items()}, before, {fid: row["verdict"] for fid, row in now.items()}
    )


def majority_reference(
    output: OutputType, train: Sequence[LabeledExample], test: Sequence[LabeledExample]
) -> dict[str, Any]:
    """What always answering the training set's most common expert value scores on the test set.

    For a score judge that constant has a CCC of 0 (or none, when the test scores are constant too).
    """
    counts = Counter(label_name(example.value) for example in train)
    top = max(counts.values())
    name = min(label for label, count in counts.items() if count == top)  # ties: the first by name
    value = next(example.value for example in train if label_name(example.value) == name)
    expected = [example.value for example in test]
    report = agreement_report(output, expected, [value] * len(expected))
    return {
        "value": value,
        "quality": report["quality"],
        "metric": report["metric"],
        "score": isinstance(output, Score),
    }


def add_intervals(
    summary: Sequence[dict[str, Any]], predictions: Sequence[dict[str, Any]], output: OutputType, *, replicates: int
) -> None:
    """Every metric's bootstrap 95% interval over examples and seeds, as `{split}_{metric}_low/high` columns
    (the headline metric as `{split}_quality_low/high`)."""
    metrics = metric_names(output)
    samples = seed_samples(predictions)
    for row in summary:
        for split in ("train", "test"):
            per_seed = samples.get((row["variant"], row["examples_seen"], split), {})
            judged = [per_seed[seed] for seed in sorted(per_seed)]
            intervals = bootstrap_intervals(output, judged, metrics, replicates=replicates)
            for metric, interval in intervals.items():
                name = "quality" if metric == row["metric"] else metric
                row[f"{split}_{name}_low"], row[f"{split}_{name}_high"] = interval or (None, None)


def majority_label(references: dict[str, Any]) -> str | None:
    """How reports name the majority-class reference: its value(s), one per seed's training set."""
    per_seed = (references.get("majority_class") or {}).get("per_seed") or []
    if not per_seed:
        return None
    values = sorted({repr(entry["value"]) for entry in per_seed}, key=str)
    listed = ", ".join(values) + (" by seed" if len(values) > 1 else "")
    kind = "most common training score" if per_seed[0].get("score") else "majority class"
    return f"{kind} ({listed})"


def seed_samples(
    predictions: Sequence[dict[str, Any]],
) -> dict[tuple[str, int, str], dict[int, tuple[list[Any], list[Any]]]]:
    """By variant, examples seen and split, then by seed: the expert values and the verdicts (what the
    bootstrap resamples)."""
    grouped: dict[tuple[str, int, str], dict[int, tuple[list[Any], list[Any]]]] = {}
    for row in predictions:
        by_seed = grouped.setdefault((row["variant"], row["examples_seen"], row["split"]), {})
        expected, verdicts = by_seed.setdefault(row["seed"], ([], []))
        expected.append(row["expected"])
        verdicts.append(row["verdict"])
    return grouped
