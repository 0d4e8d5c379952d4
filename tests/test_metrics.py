"""Metric functions against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from memalign_graph import Boolean, Categorical, Pairwise, Score
from memalign_graph.evaluation.intervals import bootstrap_intervals
from memalign_graph.evaluation.metrics import (
    NO_VERDICT,
    agreement_report,
    cohens_kappa,
    concordance_correlation,
    confusion_matrix,
    exact_match,
    mean_absolute_error,
    pearson,
)
from memalign_graph.evaluation.summary import mean_and_spread

EXPERT = [1, 2, 3, 4, 5]
JUDGE = [2, 2, 3, 4, 4]


def test_ccc_matches_the_hand_computed_value() -> None:
    # means 3 and 3; population variances 2 and 0.8; covariance (2+1+0+1+2)/5 = 1.2
    # CCC = 2 * 1.2 / (2 + 0.8 + 0) = 6/7
    assert concordance_correlation(EXPERT, JUDGE) == pytest.approx(6 / 7)


def test_ccc_is_lowered_by_a_constant_offset_that_pearson_ignores() -> None:
    shifted = [value + 1 for value in EXPERT]
    # cov = var = 2 and the means differ by 1: CCC = 4 / (2 + 2 + 1) = 0.8, while r = 1
    assert concordance_correlation(EXPERT, shifted) == pytest.approx(0.8)
    assert pearson(EXPERT, shifted) == pytest.approx(1.0)
    assert concordance_correlation(EXPERT, EXPERT) == pytest.approx(1.0)


def test_ccc_agrees_with_its_pearson_form() -> None:
    expert = [1, 3, 2, 5, 4, 4, 2]
    judge = [2, 3, 3, 4, 5, 3, 1]
    n = len(expert)
    mx, my = sum(expert) / n, sum(judge) / n
    sx = math.sqrt(sum((x - mx) ** 2 for x in expert) / n)
    sy = math.sqrt(sum((y - my) ** 2 for y in judge) / n)
    r = pearson(expert, judge)
    assert r is not None
    assert concordance_correlation(expert, judge) == pytest.approx(2 * r * sx * sy / (sx**2 + sy**2 + (mx - my) ** 2))


def test_pearson_and_mae_by_hand() -> None:
    assert pearson(EXPERT, JUDGE) == pytest.approx(1.2 / math.sqrt(2 * 0.8))
    assert mean_absolute_error(EXPERT, JUDGE) == pytest.approx(2 / 5)


def test_undefined_metrics_are_none_not_made_up() -> None:
    assert pearson(EXPERT, [3, 3, 3, 3, 3]) is None  # a constant judge has no correlation
    assert concordance_correlation(EXPERT, [3, 3, 3, 3, 3]) == pytest.approx(0.0)  # but CCC is defined: 0
    assert concordance_correlation([2, 2], [2, 2]) is None  # 0/0
    assert concordance_correlation([4], [4]) is None
    assert mean_absolute_error([], []) is None
    assert exact_match([], []) is None


def test_exact_match_counts_no_verdict_as_a_miss() -> None:
    assert exact_match(["yes", "no", "no", "yes"], ["yes", "no", None, "no"]) == pytest.approx(0.5)
    assert exact_match([True, False], [True, False]) == 1.0


def test_confusion_matrix_has_a_no_verdict_column() -> None:
    matrix = confusion_matrix(["yes", "yes", "no", "no"], ["yes", "no", None, "no"], ["yes", "no"])
    assert matrix == {"yes": {"yes": 1, "no": 1, NO_VERDICT: 0}, "no": {"yes": 0, "no": 1, NO_VERDICT: 1}}
    booleans = confusion_matrix([True, False], [True, True], [True, False])
    assert booleans["false"]["true"] == 1 and booleans["true"]["true"] == 1


def test_agreement_report_for_scores_uses_answered_pairs_and_reports_coverage() -> None:
    report = agreement_report(Score(low=1, high=5), [*EXPERT, 3], [*JUDGE, None])
    assert report["metric"] == "ccc" and report["quality"] == pytest.approx(6 / 7)
    assert (report["n"], report["answered"], report["no_verdict"]) == (6, 5, 1)
    assert report["mae"] == pytest.approx(0.4)
    assert report["exact_match"] == pytest.approx(3 / 6)


@pytest.mark.parametrize(
    ("output", "expected", "predicted", "quality"),
    [
        (Boolean(), [True, False, True], [True, True, None], 1 / 3),
        (Categorical(labels=("yes", "no")), ["yes", "no"], ["yes", "no"], 1.0),
        (Pairwise(), ["A", "B", "A", "B"], ["A", "A", "tie", "B"], 0.5),
    ],
)
def test_agreement_report_for_labels_is_exact_match_with_a_confusion_matrix(output, expected, predicted, quality):
    report = agreement_report(output, expected, predicted)
    assert report["metric"] == "exact_match" and report["quality"] == pytest.approx(quality)
    assert sum(sum(row.values()) for row in report["confusion_matrix"].values()) == len(expected)


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError, match="predicted: 1 values for 2 expected"):
        exact_match(["a", "b"], ["a"])


def test_mean_and_spread_is_the_sample_standard_deviation_of_defined_values() -> None:
    mean, spread = mean_and_spread([0.5, 0.7, None, 0.9])
    assert mean == pytest.approx(0.7) and spread == pytest.approx(0.2)
    assert mean_and_spread([0.4]) == (0.4, None)
    assert mean_and_spread([None]) == (None, None)


def test_cohens_kappa_by_hand_and_against_scikit_learn() -> None:
    expert = ["y", "n", "y", "y", "n", "n", "y", "n"]
    judge = ["y", "y", "y", "n", "n", "n", "y", "y"]
    # p_o = 5/8; p_e = (4/8)(5/8) + (4/8)(3/8) = 1/2; kappa = (5/8 - 1/2) / (1/2) = 1/4
    assert cohens_kappa(expert, judge) == pytest.approx(0.25)
    sklearn = pytest.importorskip("sklearn.metrics")
    assert cohens_kappa(expert, judge) == pytest.approx(sklearn.cohen_kappa_score(expert, judge))
    assert cohens_kappa(expert, [None] * 8) == pytest.approx(0.0)  # no verdict: never agreeing, not by chance
    assert cohens_kappa(["y", "y"], ["y", "y"]) is None  # chance agrees fully: undefined
    assert agreement_report(Boolean(), [True, False], [True, True])["kappa"] == pytest.approx(0.0)


def test_bootstrap_interval_matches_scipy_over_one_seed_and_widens_with_seeds() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    expert = ["yes", "no"] * 30
    judge = [e if index % 3 else ("no" if e == "yes" else "yes") for index, e in enumerate(expert)]
    spec = Categorical(labels=("yes", "no"))
    ours = bootstrap_intervals(spec, [(expert, judge)], ["exact_match"], replicates=4000)["exact_match"]
    matches = [float(e == j) for e, j in zip(expert, judge, strict=True)]
    theirs = scipy_stats.bootstrap((matches,), np.mean, method="percentile", n_resamples=4000, random_state=0)
    assert ours == pytest.approx(tuple(theirs.confidence_interval), abs=0.02)
    other = ["yes"] * 60  # a second seed that disagrees often: the interval over both seeds is wider
    both = bootstrap_intervals(spec, [(expert, judge), (expert, other)], ["exact_match"])["exact_match"]
    assert both is not None and both[1] - both[0] > ours[1] - ours[0]


def test_bootstrap_gives_no_interval_where_the_metric_is_undefined() -> None:
    intervals = bootstrap_intervals(Score(low=1, high=5), [([3, 3, 3], [3, 3, 3])], ["pearson", "mae"])
    assert intervals["pearson"] is None and intervals["mae"] == (0.0, 0.0)
