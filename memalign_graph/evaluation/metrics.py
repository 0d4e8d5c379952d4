"""How well a judge agrees with experts: exact match for labels, concordance for scores.

A judgment that produced no verdict is passed as `None`. Exact match counts it as a disagreement (a
judge that answers nothing is not right); the score metrics use only the answered pairs, and every
report says how many were answered. A metric that is undefined on its data (Pearson's r of a constant)
is `None`, never a made-up number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from memalign_graph.spec import PAIRWISE_CHOICES, Boolean, Categorical, OutputType, Pairwise, Score

NO_VERDICT = "(no verdict)"


def exact_match(expected: Sequence[Any], predicted: Sequence[Any | None]) -> float | None:
    """The share of examples where the judge's value equals the expert's; no verdict is a miss."""
    _same_length(expected, predicted)
    if not expected:
        return None
    return sum(p is not None and p == e for e, p in zip(expected, predicted, strict=True)) / len(expected)


def concordance_correlation(expected: Sequence[float], predicted: Sequence[float]) -> float | None:
    """Lin's concordance correlation coefficient, with population moments.

    CCC = 2 cov(x, y) / (var x + var y + (mean x - mean y)^2): 1 only when the judge gives the expert's
    scores exactly, lowered by both scatter and a constant offset (which Pearson's r ignores).
    """
    x, y = _arrays(expected, predicted)
    if x.size < 2:
        return None
    covariance = float(np.mean((x - x.mean()) * (y - y.mean())))
    denominator = float(x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    if denominator == 0.0:
        return None
    return 2.0 * covariance / denominator


def pearson(expected: Sequence[float], predicted: Sequence[float]) -> float | None:
    """Pearson's r; undefined (None) when either side is constant."""
    x, y = _arrays(expected, predicted)
    if x.size < 2 or x.std() == 0.0 or y.std() == 0.0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def mean_absolute_error(expected: Sequence[float], predicted: Sequence[float]) -> float | None:
    x, y = _arrays(expected, predicted)
    if x.size == 0:
        return None
    return float(np.mean(np.abs(x - y)))


def confusion_matrix(
    expected: Sequence[Any], predicted: Sequence[Any | None], labels: Sequence[Any]
) -> dict[str, dict[str, int]]:
    """Counts by expert label (rows) and judge label (columns), with a column for no verdict."""
    _same_length(expected, predicted)
    names = [label_name(label) for label in labels]
    matrix = {row: {column: 0 for column in [*names, NO_VERDICT]} for row in names}
    for truth, guess in zip(expected, predicted, strict=True):
        row = matrix.setdefault(label_name(truth), {column: 0 for column in [*names, NO_VERDICT]})
        column = NO_VERDICT if guess is None else label_name(guess)
        row[column] = row.get(column, 0) + 1
    return matrix


def agreement_report(output: OutputType, expected: Sequence[Any], predicted: Sequence[Any | None]) -> dict[str, Any]:
    """Every metric that fits the output type, under one `quality` headline (exact match, or CCC for scores)."""
    _same_length(expected, predicted)
    answered = [(e, p) for e, p in zip(expected, predicted, strict=True) if p is not None]
    report: dict[str, Any] = {
        "n": len(expected),
        "answered": len(answered),
        "no_verdict": len(expected) - len(answered),
    }
    if isinstance(output, Score):
        truth = [float(e) for e, _ in answered]
        guess = [float(p) for _, p in answered]
        ccc = concordance_correlation(truth, guess)
        report.update(
            metric="ccc",
            quality=ccc,
            ccc=ccc,
            pearson=pearson(truth, guess),
            mae=mean_absolute_error(truth, guess),
            exact_match=exact_match(expected, predicted),
        )
        return report
    accuracy = exact_match(expected, predicted)
    report.update(metric="exact_match", quality=accuracy, exact_match=accuracy)
    report["confusion_matrix"] = confusion_matrix(expected, predicted, output_labels(output))
    return report


def output_labels(output: OutputType) -> list[Any]:
    if isinstance(output, Boolean):
        return [True, False]
    if isinstance(output, Categorical):
        return list(output.labels)
    if isinstance(output, Pairwise):
        return list(PAIRWISE_CHOICES)
    return []


def quality_metric_name(output: OutputType) -> str:
    return "concordance correlation (CCC)" if isinstance(output, Score) else "exact match"


def label_name(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _arrays(expected: Sequence[float], predicted: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    _same_length(expected, predicted)
    return np.asarray(expected, dtype=float), np.asarray(predicted, dtype=float)


def _same_length(expected: Sequence[Any], predicted: Sequence[Any]) -> None:
    if len(expected) != len(predicted):
        raise ValueError(f"predicted: {len(predicted)} values for {len(expected)} expected ones; pass one per example.")
