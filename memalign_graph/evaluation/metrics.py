"""How well a judge agrees with experts: exact match and Cohen's kappa for labels, concordance for scores.

A judgment that produced no verdict is passed as `None`. Exact match counts it as a disagreement (a
judge that answers nothing is not right); the score metrics use only the answered pairs, and every
report says how many were answered. A metric that is undefined on its data (Pearson's r of a constant)
is `None`, never a made-up number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from memalign_graph.spec import PAIRWISE_CHOICES, Boolean, Categorical, OutputType, Pairwise, Score

if TYPE_CHECKING:  # numpy loads when a metric is computed, not when the command starts
    import numpy as np

NO_VERDICT = "(no verdict)"


def exact_match(expected: Sequence[Any], predicted: Sequence[Any | None]) -> float | None:
    """The share of examples where the judge's value equals the expert's; no verdict is a miss."""
    _same_length(expected, predicted)
    if not expected:
        return None
    return sum(p is not None and p == e for e, p in zip(expected, predicted, strict=True)) / len(expected)


def cohens_kappa(expected: Sequence[Any], predicted: Sequence[Any | None]) -> float | None:
    """Cohen's kappa: agreement corrected for what the two label frequencies give by chance.

    kappa = (p_o - p_e) / (1 - p_e), with p_o the exact match and p_e the sum over labels of the expert's
    share times the judge's share. No verdict is a category of its own that never matches (so p_o is the
    exact match above); None when chance alone agrees fully (one label on both sides).
    """
    _same_length(expected, predicted)
    if not expected:
        return None
    n = len(expected)
    guesses = [NO_VERDICT if p is None else label_name(p) for p in predicted]
    truths = [label_name(e) for e in expected]
    observed = sum(t == g for t, g in zip(truths, guesses, strict=True)) / n
    chance = sum((truths.count(label) / n) * (guesses.count(label) / n) for label in set(truths))
    if chance >= 1.0:
        return None
    return (observed - chance) / (1.0 - chance)


def concordance_correlation(expected: Sequence[float], predicted: Sequence[float]) -> float | None:
    """Lin's concordance correlation coefficient, with population moments.

    CCC = 2 cov(x, y) / (var x + var y + (mean x - mean y)^2): 1 only when the judge gives the expert's
    scores exactly, lowered by both scatter and a constant offset (which Pearson's r ignores).
    """
    import numpy as np

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
    import numpy as np

    x, y = _arrays(expected, predicted)
    if x.size < 2 or x.std() == 0.0 or y.std() == 0.0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def mean_absolute_error(expected: Sequence[float], predicted: Sequence[float]) -> float | None:
    import numpy as np

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
    report.update(metric="exact_match", quality=accuracy, exact_match=accuracy, kappa=cohens_kappa(expected, predicted))
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


def metric_names(output: OutputType) -> tuple[str, ...]:
    """The metrics an agreement report of this output type carries (each gets a bootstrap interval)."""
    return ("ccc", "pearson", "mae", "exact_match") if isinstance(output, Score) else ("exact_match", "kappa")


METRIC_LABELS = {
    "exact_match": "exact match",
    "kappa": "Cohen's kappa",
    "ccc": "concordance correlation (CCC)",
    "pearson": "Pearson's r",
    "mae": "mean absolute error",
}
METRIC_RANGES = {"exact_match": (0.0, 1.0), "kappa": (-1.0, 1.0), "ccc": (-1.0, 1.0), "pearson": (-1.0, 1.0)}


def label_name(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _arrays(expected: Sequence[float], predicted: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    _same_length(expected, predicted)
    return np.asarray(expected, dtype=float), np.asarray(predicted, dtype=float)


def _same_length(expected: Sequence[Any], predicted: Sequence[Any]) -> None:
    if len(expected) != len(predicted):
        raise ValueError(f"predicted: {len(predicted)} values for {len(expected)} expected ones; pass one per example.")
