"""Bootstrap 95% intervals over examples and seeds, for every metric of an agreement report.

A two-level (cluster) bootstrap: each replicate draws the seeds with replacement, then, for every seed
drawn, that seed's judged examples with replacement, computes the metric on each drawn seed and
averages over them, as the point estimate averages over seeds. The interval is the 2.5th and 97.5th
percentile of the replicates (percentile method). So it holds both sources of spread: which examples
happened to be judged (and split into train and test) and what a seed's run did. Metrics are computed
on the replicates' index arrays at once with numpy; a replicate where a metric is undefined (a constant
judge has no Pearson's r) is left out, and too few defined replicates give no interval at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from memalign_graph.evaluation.metrics import label_name
from memalign_graph.spec import OutputType, Score

if TYPE_CHECKING:  # numpy loads when a metric is computed, not when the command starts
    import numpy as np

DEFAULT_REPLICATES = 2000
CONFIDENCE = 0.95
MIN_DEFINED_SHARE = 0.5  # fewer defined replicates than this share: the interval is not reported

Judged = tuple[Sequence[Any], Sequence[Any | None]]
"""One seed's judgments: the experts' values and the judge's (None: no verdict)."""


def bootstrap_intervals(
    output: OutputType,
    seeds: Sequence[Judged],
    metrics: Sequence[str],
    *,
    replicates: int = DEFAULT_REPLICATES,
    random_seed: int = 0,
) -> dict[str, tuple[float, float] | None]:
    """A (low, high) 95% interval per metric over `seeds`' examples; None where it cannot be estimated."""
    import numpy as np

    seeds = [seed for seed in seeds if len(seed[0])]
    if not seeds or replicates < 1:
        return {metric: None for metric in metrics}
    rng = np.random.default_rng(random_seed)
    drawn_seeds = rng.integers(0, len(seeds), size=(replicates, len(seeds)))
    totals = {metric: np.zeros(replicates) for metric in metrics}
    for position in range(len(seeds)):
        for index, (expected, predicted) in enumerate(seeds):
            rows = np.flatnonzero(drawn_seeds[:, position] == index)
            if rows.size == 0:
                continue
            picks = rng.integers(0, len(expected), size=(rows.size, len(expected)))
            values = _metric_values(output, expected, predicted, picks, metrics)
            for metric in metrics:
                totals[metric][rows] += values[metric]
    alpha = (1.0 - CONFIDENCE) / 2.0
    intervals: dict[str, tuple[float, float] | None] = {}
    for metric in metrics:
        means = totals[metric] / len(seeds)
        defined = means[np.isfinite(means)]
        if defined.size < MIN_DEFINED_SHARE * replicates:
            intervals[metric] = None
            continue
        low, high = np.quantile(defined, [alpha, 1.0 - alpha])
        intervals[metric] = (float(low), float(high))
    return intervals


def interval_name(seeds: int) -> str:
    """What the intervals are, in words fit for a caption: with one seed there is no seed to resample."""
    return "bootstrap 95% interval over examples and seeds" if seeds > 1 else "bootstrap 95% interval over examples"


def seeds_text(seeds: Sequence[int]) -> str:
    """'3 seeds (0, 1, 2)' or '1 seed (0)'."""
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))})"


def _metric_values(
    output: OutputType,
    expected: Sequence[Any],
    predicted: Sequence[Any | None],
    picks: np.ndarray,
    metrics: Sequence[str],
) -> dict[str, np.ndarray]:
    """Each metric on every resample (a row of `picks` indexes the examples); NaN where undefined."""
    import numpy as np

    if isinstance(output, Score):
        return _score_metrics(expected, predicted, picks, metrics)
    names = sorted({label_name(value) for value in expected})
    codes = {name: code for code, name in enumerate(names)}
    missing = len(names)  # a judge's label the experts never used, or no verdict: never a match
    truth = np.array([codes[label_name(value)] for value in expected])[picks]
    guess = np.array([missing if p is None else codes.get(label_name(p), missing) for p in predicted])[picks]
    match = (truth == guess).mean(axis=1)
    values: dict[str, np.ndarray] = {}
    if "exact_match" in metrics:
        values["exact_match"] = match
    if "kappa" in metrics:
        chance = sum((truth == code).mean(axis=1) * (guess == code).mean(axis=1) for code in range(len(names)))
        with np.errstate(divide="ignore", invalid="ignore"):
            values["kappa"] = np.where(chance < 1.0, (match - chance) / (1.0 - chance), np.nan)
    return values


def _score_metrics(
    expected: Sequence[Any], predicted: Sequence[Any | None], picks: np.ndarray, metrics: Sequence[str]
) -> dict[str, np.ndarray]:
    """Scores: exact match counts no verdict as a miss; the other metrics use the answered pairs only."""
    import numpy as np

    answered = np.array([p is not None for p in predicted])[picks]
    x = np.array([float(e) for e in expected])[picks]
    y = np.array([float(p) if p is not None else np.nan for p in predicted])[picks]
    y = np.where(answered, y, 0.0)
    count = answered.sum(axis=1)
    values: dict[str, np.ndarray] = {}
    if "exact_match" in metrics:
        values["exact_match"] = (answered & (x == y)).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = answered / np.maximum(count, 1)[:, None]
        mean_x, mean_y = (weights * x).sum(axis=1), (weights * y).sum(axis=1)
        dx, dy = x - mean_x[:, None], y - mean_y[:, None]
        var_x, var_y = (weights * dx**2).sum(axis=1), (weights * dy**2).sum(axis=1)
        covariance = (weights * dx * dy).sum(axis=1)
        enough = count >= 2
        denominator = var_x + var_y + (mean_x - mean_y) ** 2
        if "ccc" in metrics:
            values["ccc"] = np.where(enough & (denominator > 0), 2.0 * covariance / denominator, np.nan)
        if "pearson" in metrics:
            spread = np.sqrt(var_x * var_y)
            values["pearson"] = np.where(enough & (spread > 0), covariance / spread, np.nan)
        if "mae" in metrics:
            values["mae"] = np.where(count > 0, (weights * np.abs(x - y)).sum(axis=1), np.nan)
    return values
