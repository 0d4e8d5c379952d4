"""What the protocol reports: per-judgment usage and cost, errors counted, and runs summarized over seeds
(one row per variant and number of examples seen)."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from memalign_graph.accounting import Prices, Usage
from memalign_graph.records import Verdict


def summarize(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and spread (sample standard deviation) over seeds, per variant and examples seen."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["variant"], run["examples_seen"]), []).append(run)
    rows = []
    for (variant, seen), group in groups.items():
        first = group[0]
        row: dict[str, Any] = {
            "variant": variant,
            "memory": first["memory"],
            "feedback": first["feedback"],
            "examples_seen": seen,
            "seeds": len(group),
            "metric": first["test"]["metric"],
        }
        for split in ("train", "test"):
            reports = [run[split] for run in group if run[split] is not None]
            row[f"{split}_quality_mean"], row[f"{split}_quality_std"] = mean_and_spread(r["quality"] for r in reports)
            row[f"{split}_no_verdict"] = sum(r["no_verdict"] for r in reports)
            row[f"{split}_judged"] = sum(r["n"] for r in reports)
            for extra in ("pearson", "mae", "kappa", "exact_match"):
                if reports and extra in reports[0] and extra != reports[0]["metric"]:
                    row[f"{split}_{extra}_mean"], _ = mean_and_spread(r[extra] for r in reports)
        row["guidelines_mean"], _ = mean_and_spread(run["guidelines"] for run in group)
        for key in ("calls", "total_tokens", "seconds"):
            row[f"{key}_per_judgment_mean"], _ = mean_and_spread(run["judging"]["per_judgment"][key] for run in group)
        row["alignment_calls_mean"], _ = mean_and_spread(run["alignment"]["cumulative"]["calls"] for run in group)
        row["alignment_tokens_mean"], _ = mean_and_spread(
            run["alignment"]["cumulative"]["total_tokens"] for run in group
        )
        if first.get("regressions") is not None:
            for kind in ("fixed", "broken"):
                row[f"{kind}_mean"], _ = mean_and_spread(len(run["regressions"][kind]) for run in group)
            row["rechecked_mean"], _ = mean_and_spread(run["regressions"]["checked"] for run in group)
        if first["cost"] is not None:
            row["cost_per_judgment_mean"], _ = mean_and_spread(run["cost"]["per_judgment"] for run in group)
            row["alignment_cost_mean"], _ = mean_and_spread(run["cost"]["alignment_cumulative"] for run in group)
        rows.append(row)
    return sorted(rows, key=lambda row: (row["variant"], row["examples_seen"]))


def mean_and_spread(values: Any) -> tuple[float | None, float | None]:
    """The mean and sample standard deviation of the defined values; spread is None with fewer than two."""
    defined = [float(value) for value in values if value is not None]
    if not defined:
        return None, None
    spread = statistics.stdev(defined) if len(defined) > 1 else None
    return statistics.fmean(defined), spread


def per_judgment(usage: Usage, judgments: int) -> dict[str, float]:
    count = max(1, judgments)
    return {
        "calls": usage.calls / count,
        "input_tokens": usage.input_tokens / count,
        "output_tokens": usage.output_tokens / count,
        "total_tokens": usage.total_tokens / count,
        "seconds": usage.seconds / count,
    }


def costs(
    prices: Prices | None, alignment: Usage, alignment_total: Usage, judging: Usage, judgments: int
) -> dict[str, float] | None:
    if prices is None:
        return None
    return {
        "alignment": prices.cost(alignment),
        "alignment_cumulative": prices.cost(alignment_total),
        "judging": prices.cost(judging),
        "per_judgment": prices.cost(judging) / max(1, judgments),
    }


def error_counts(verdicts: Sequence[Verdict | Exception]) -> dict[str, int]:
    return dict(Counter(describe_error(verdict) for verdict in verdicts if isinstance(verdict, Exception)))


def describe_error(error: Exception) -> str:
    first_line = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first_line}"[:300]
