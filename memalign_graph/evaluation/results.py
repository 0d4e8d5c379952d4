"""Evaluation results for people and programs: a terminal table, JSON, CSV, every prediction, quality
against cost, and confusion matrices."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memalign_graph.evaluation.ablations import variant_name, variant_order
from memalign_graph.evaluation.intervals import interval_name, seeds_text
from memalign_graph.evaluation.metrics import METRIC_LABELS, NO_VERDICT
from memalign_graph.evaluation.predictions import majority_label
from memalign_graph.evaluation.protocol import EvaluationResult

RUN_COLUMNS = (
    "seed",
    "variant",
    "examples_seen",
    "feedback_given",
    "guidelines",
    "train_quality",
    "train_no_verdict",
    "test_quality",
    "test_no_verdict",
    "test_kappa",
    "test_pearson",
    "test_mae",
    "fixed",
    "broken",
    "alignment_calls",
    "alignment_tokens",
    "alignment_seconds",
    "judgments",
    "calls_per_judgment",
    "tokens_per_judgment",
    "seconds_per_judgment",
    "cost_per_judgment",
    "alignment_cost_cumulative",
)


def results_table(result: EvaluationResult) -> str:
    """The summary as an aligned text table: one row per variant and number of examples seen."""
    priced = any("cost_per_judgment_mean" in row for row in result.summary)
    second = "test kappa" if any("test_kappa_mean" in row for row in result.summary) else "test r"
    headers = ["variant", "seen", "train", "test", second, "broken/fixed", "no verdict", "calls/judgment"]
    headers += ["tokens/judgment", "align tokens"]
    if priced:
        headers += ["cost/judgment", "align cost"]
    rows = []
    for row in sorted(result.summary, key=lambda row: (variant_order(row["variant"]), row["examples_seen"])):
        extra = "kappa" if second == "test kappa" else "pearson"
        cells = [
            *_quality_cells(row, extra),
            f"{row['test_no_verdict'] + row['train_no_verdict']}/{row['test_judged'] + row['train_judged']}",
            _number(row["calls_per_judgment_mean"], 2),
            _number(row["total_tokens_per_judgment_mean"], 0),
            _number(row["alignment_tokens_mean"], 0),
        ]
        if priced:
            cells += [_number(row.get("cost_per_judgment_mean"), 6), _number(row.get("alignment_cost_mean"), 4)]
        rows.append(cells)
    seeds = result.settings["seeds"]
    title = (
        f"{result.judge}: {result.metric}, mean over {seeds_text(seeds)} "
        f"[{interval_name(len(seeds))}]; train = examples seen so far (in memory), "
        f"test = {_test_size(result)} held out (never shown their own record); model: {result.model}"
    )
    return title + "\n" + _aligned([headers, *rows]) + "\n" + references_line(result)


def references_line(result: EvaluationResult) -> str:
    """The test-set references the curves are read against."""
    zero = result.references.get("zero_shot")
    majority = result.references.get("majority_class") or {}
    parts = []
    if zero:
        parts.append(f"zero-shot (empty memory) {_interval_text(zero.get('mean'), zero.get('low'), zero.get('high'))}")
    else:
        parts.append("zero-shot not measured (no shard 0)")
    label = majority_label(result.references)
    if label:
        parts.append(f"{label} {_number(majority.get('quality_mean'), 3)}")
    return "references (test): " + "; ".join(parts)


def confusion_matrices_text(result: EvaluationResult) -> str:
    """Test-set confusion matrices at the last shard of each variant, summed over seeds (labels only)."""
    last = max(result.settings["shards"])
    blocks = []
    for variant in sorted(result.settings["variants"], key=variant_order):
        runs = [r for r in result.runs if r["variant"] == variant and r["examples_seen"] == last]
        matrices = [r["test"].get("confusion_matrix") for r in runs if r["test"].get("confusion_matrix")]
        if not matrices:
            continue
        summed: dict[str, dict[str, int]] = {}
        for matrix in matrices:
            for truth, row in matrix.items():
                for guess, count in row.items():
                    summed.setdefault(truth, {}).setdefault(guess, 0)
                    summed[truth][guess] += count
        columns = [c for c in next(iter(summed.values())) if c != NO_VERDICT] + [NO_VERDICT]
        table = [["expert \\ judge", *columns]] + [
            [truth, *(str(row.get(c, 0)) for c in columns)] for truth, row in summed.items()
        ]
        blocks.append(
            f"confusion matrix, {variant_name(variant)}, {last} examples seen (test, all seeds):\n" + _aligned(table)
        )
    return "\n\n".join(blocks)


def _quality_cells(row: dict[str, Any], second: str) -> list[str]:
    """What both tables begin a row with: the variant, how much it has seen, its quality (train, test and
    the second measure, with intervals) and what aligning broke and fixed."""
    return [
        variant_name(row["variant"]),
        str(row["examples_seen"]),
        _with_interval(row, "train_quality"),
        _with_interval(row, "test_quality"),
        _with_interval(row, f"test_{second}"),
        _regressions(row),
    ]


def results_markdown(result: EvaluationResult) -> str:
    """A table for a README or a report: each variant after the last shard, with the references and the
    model, embeddings and library that produced it (every shard is in results.csv)."""
    last = max(result.settings["shards"])
    rows = sorted(
        (row for row in result.summary if row["examples_seen"] == last), key=lambda row: variant_order(row["variant"])
    )
    second = "kappa" if any("test_kappa_mean" in row for row in rows) else "pearson"
    metric = "CCC" if rows and rows[0]["metric"] == "ccc" else METRIC_LABELS.get(rows[0]["metric"] if rows else "", "")
    lines = [
        f"| variant | seen | train {metric} | test {metric} | test {METRIC_LABELS[second]} | broken/fixed "
        "| tokens/judgment | alignment tokens |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [
            *_quality_cells(row, second),
            _number(row["total_tokens_per_judgment_mean"], 0),
            _number(row["alignment_tokens_mean"], 0),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    provenance = result.provenance
    commit = provenance.get("git_commit")
    seeds = result.settings["seeds"]
    caption = (
        f"{result.judge} on {provenance.get('data_file') or result.source}: train {result.settings['train_size']}, "
        f"test {_test_size(result)} per seed, {seeds_text(seeds)}, k = {result.settings['k']}; mean "
        f"[{interval_name(len(seeds))}]. Model: {result.model}. Embeddings: "
        f"{provenance.get('embedding_model')}. memalign-graph {provenance.get('library_version')}"
        + (f" (git {_short_commit(commit)})" if commit else "")
        + f", {provenance.get('started_at')}. {_capitalized(references_line(result))}."
    )
    return caption + "\n\n" + "\n".join(lines) + "\n"


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _short_commit(commit: str) -> str:
    sha, _, dirty = commit.partition("-")
    return sha[:12] + (f"-{dirty}" if dirty else "")


def write_markdown(result: EvaluationResult, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(results_markdown(result), encoding="utf-8")
    return path


def write_predictions(result: EvaluationResult, path: str | Path) -> Path:
    """Every judgment, one JSON line each (also in results.json)."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as handle:
        for row in result.predictions:
            handle.write(json.dumps(_finite(row), ensure_ascii=False, default=str) + "\n")
    return path


QUALITY_COST_COLUMNS = (
    "variant",
    "name",
    "examples_seen",
    "test_quality_mean",
    "test_quality_low",
    "test_quality_high",
    "total_tokens_per_judgment_mean",
    "calls_per_judgment_mean",
    "alignment_tokens_mean",
    "alignment_calls_mean",
    "cost_per_judgment_mean",
    "alignment_cost_mean",
)


def write_quality_cost_csv(result: EvaluationResult, path: str | Path) -> Path:
    """Quality against what it costs: tokens (and money, when priced) per judgment and for the alignment."""
    rows = [{**row, "name": variant_name(row["variant"])} for row in result.summary]
    return _write_csv(path, list(QUALITY_COST_COLUMNS), rows)


def write_json(result: EvaluationResult, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(_finite(result.as_dict()), indent=2, ensure_ascii=False, default=str) + "\n")
    return path


def write_summary_csv(result: EvaluationResult, path: str | Path) -> Path:
    """The summary rows (mean and spread over seeds), one per variant and number of examples seen."""
    columns: list[str] = []
    for row in result.summary:
        columns += [key for key in row if key not in columns]
    return _write_csv(path, columns, result.summary)


def write_runs_csv(result: EvaluationResult, path: str | Path) -> Path:
    """Every measurement, one row per seed, variant and shard, flattened."""
    return _write_csv(path, list(RUN_COLUMNS), [flat_run(run) for run in result.runs])


def flat_run(run: dict[str, Any]) -> dict[str, Any]:
    train, test = run["train"] or {}, run["test"]
    cumulative = run["alignment"]["cumulative"]
    per_judgment = run["judging"]["per_judgment"]
    return {
        "seed": run["seed"],
        "variant": run["variant"],
        "examples_seen": run["examples_seen"],
        "feedback_given": run["feedback_given"],
        "guidelines": run["guidelines"],
        "train_quality": train.get("quality"),
        "train_no_verdict": train.get("no_verdict"),
        "test_quality": test["quality"],
        "test_no_verdict": test["no_verdict"],
        "test_kappa": test.get("kappa"),
        "fixed": len(run["regressions"]["fixed"]) if run.get("regressions") else None,
        "broken": len(run["regressions"]["broken"]) if run.get("regressions") else None,
        "test_pearson": test.get("pearson"),
        "test_mae": test.get("mae"),
        "alignment_calls": cumulative["calls"],
        "alignment_tokens": cumulative["total_tokens"],
        "alignment_seconds": run["alignment"]["wall_seconds"],
        "judgments": run["judging"]["judgments"],
        "calls_per_judgment": per_judgment["calls"],
        "tokens_per_judgment": per_judgment["total_tokens"],
        "seconds_per_judgment": per_judgment["seconds"],
        "cost_per_judgment": (run["cost"] or {}).get("per_judgment"),
        "alignment_cost_cumulative": (run["cost"] or {}).get("alignment_cumulative"),
    }


def _write_csv(path: str | Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> Path:
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in columns})
    return path


def _aligned(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _with_interval(row: dict[str, Any], prefix: str) -> str:
    return _interval_text(row.get(f"{prefix}_mean"), row.get(f"{prefix}_low"), row.get(f"{prefix}_high"))


def _interval_text(mean: float | None, low: float | None, high: float | None) -> str:
    if mean is None:
        return "-"
    if mean is None:
        return "-"
    if low is None or high is None:
        return _fixed(mean, 3)
    return f"{_fixed(mean, 3)} [{_fixed(low, 2)}, {_fixed(high, 2)}]"


def _fixed(value: float, digits: int) -> str:
    """A number to `digits` places, never '-0.00' (rounding noise of a zero)."""
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _regressions(row: dict[str, Any]) -> str:
    if row.get("broken_mean") is None:
        return "-"
    return f"{_compact(row['broken_mean'])}/{_compact(row['fixed_mean'])}"


def _compact(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _test_size(result: EvaluationResult) -> int:
    runs = result.runs
    return runs[0]["test"]["n"] if runs else 0


def _finite(value: Any) -> Any:
    """NaN and infinities are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
