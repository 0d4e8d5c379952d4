"""Figures of an evaluation, as a paper would print them: PNG (200 dpi), SVG and PDF of each.

- `learning_curve`: quality against training examples seen, train and test side by side, one line per
  variant under the names readers know, bootstrap 95% intervals as bars (clipped to the metric's range),
  the zero-shot and majority-class references on the test panel, and n in the caption.
- `tokens_per_judgment`: what the growing memories cost each judgment.
- `quality_vs_cost`: test quality against tokens (or money, when priced) per judgment and for alignment.

Lines that coincide stay visible: each variant has its own marker, line style and marker size, and is
shifted sideways by a small offset. Drawn with matplotlib's object API on the Agg canvas (no display,
no global pyplot state). matplotlib is an optional extra.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memalign_graph.errors import ConfigurationError
from memalign_graph.evaluation.ablations import variant_name, variant_order
from memalign_graph.evaluation.intervals import interval_name, seeds_text
from memalign_graph.evaluation.metrics import METRIC_RANGES
from memalign_graph.evaluation.predictions import majority_label
from memalign_graph.evaluation.protocol import EvaluationResult

PLOTS_HELP = "Plots need matplotlib: pip install 'memalign-graph[plots]'."
FORMATS = ("png", "svg", "pdf")
DPI = 200
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h", "*")
LINESTYLES = ("-", "--", "-.", ":")
CAPTION_POINTS = 7.5
LEGEND_COLUMNS = 3


def plot_learning_curves(result: EvaluationResult, stem: str | Path) -> list[Path]:
    """Train and test facets of quality against examples seen; returns the PNG, SVG and PDF written."""
    variants = _by_variant(result.summary)
    canvas = _canvas(
        9.0, 4.0, _title(result, "learning curve"), _caption(result), len(variants) + _references_count(result)
    )
    axes = canvas.plots.subplots(1, 2, sharey=True)
    metric = _metric_key(result)
    for panel, split in zip(axes, ("train", "test"), strict=True):
        for index, (variant, rows) in enumerate(variants.items()):
            _curve(panel, rows, split, index, len(variants), metric, label=variant_name(variant))
        _shard_ticks(panel, result.summary)
        panel.set_xlabel("training examples seen")
        panel.grid(True, alpha=0.3)
    axes[0].set_title("seen training examples (own record in memory)", fontsize=9)
    axes[1].set_title("held-out test examples", fontsize=9)
    axes[0].set_ylabel(result.metric)
    _references(axes[1], result)
    _quality_limits(axes[0], result.summary, metric)
    _interval_key(axes[1], len(result.settings["seeds"]))
    return _save(canvas, axes, stem)


def plot_tokens_per_judgment(result: EvaluationResult, stem: str | Path) -> list[Path]:
    """Mean tokens per judgment against examples seen: what the growing memories cost each judgment."""
    variants = _by_variant(result.summary)
    canvas = _canvas(7.0, 3.8, _title(result, "tokens per judgment"), _caption(result, intervals=False), len(variants))
    axes = canvas.plots.add_subplot()
    span = _x_span(result.summary)
    for index, (variant, rows) in enumerate(variants.items()):
        seen = [row["examples_seen"] + _offset(index, len(variants), span) for row in rows]
        tokens = [row["total_tokens_per_judgment_mean"] or 0.0 for row in rows]
        axes.plot(seen, tokens, label=variant_name(variant), **_style(index))
    _shard_ticks(axes, result.summary)
    axes.set_xlabel("training examples seen")
    axes.set_ylabel("tokens per judgment (prompt + completion)")
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    return _save(canvas, [axes], stem)


def plot_quality_vs_cost(result: EvaluationResult, stem: str | Path) -> list[Path]:
    """Test quality against cost per judgment and cost of alignment, each point labelled by examples seen."""
    note = "Numbers at the points: training examples seen. "
    title, caption = _title(result, "quality against cost"), note + _caption(result, shifted=False)
    variants = _by_variant(result.summary)
    canvas = _canvas(9.0, 4.0, title, caption, len(variants) + 1)
    axes = canvas.plots.subplots(1, 2, sharey=True)
    metric = _metric_key(result)
    priced = all(row.get("cost_per_judgment_mean") is not None for row in result.summary)
    if priced:
        keys, labels = ("cost_per_judgment_mean", "alignment_cost_mean"), ("cost per judgment", "alignment cost so far")
    else:
        keys = ("total_tokens_per_judgment_mean", "alignment_tokens_mean")
        labels = ("tokens per judgment (prompt + completion)", "alignment tokens so far (prompt + completion)")
    for panel, key, label in zip(axes, keys, labels, strict=True):
        for index, (variant, rows) in enumerate(variants.items()):
            points = [row for row in rows if row.get(key) is not None and row["test_quality_mean"] is not None]
            xs = [row[key] for row in points]
            style = _style(index)
            panel.plot(xs, [row["test_quality_mean"] for row in points], label=variant_name(variant), **style)
            _bars(panel, xs, points, "test", metric, style["color"])
            _seen_labels(panel, xs, points, index, style["color"])
        panel.set_xlabel(label)
        panel.grid(True, alpha=0.3)
    axes[0].set_ylabel(f"test {result.metric}")
    axes[0].set_title("what each judgment costs", fontsize=9)
    axes[1].set_title("what learning cost (cumulative)", fontsize=9)
    _quality_limits(axes[0], result.summary, metric, splits=("test",))
    _interval_key(axes[0], len(result.settings["seeds"]))
    return _save(canvas, axes, stem)


def _seen_labels(axes: Any, xs: Sequence[float], rows: Sequence[dict[str, Any]], index: int, colour: str) -> None:
    """Label each point with the examples seen; points that fall on one spot share one label ('5, 10')."""
    spots: dict[tuple[float, float], list[str]] = {}
    for x, row in zip(xs, rows, strict=True):
        spots.setdefault((round(x, 9), round(row["test_quality_mean"], 9)), []).append(str(row["examples_seen"]))
    for position, ((x, y), seen) in enumerate(spots.items()):
        lift = 4 + 7 * index if position % 2 == 0 else -11 - 7 * index  # neighbours alternate above and below
        axes.annotate(", ".join(seen), (x, y), textcoords="offset points", xytext=(4, lift), fontsize=6.5, color=colour)


def _interval_key(axes: Any, seeds: int) -> None:
    """A legend entry that says what the bars are."""
    axes.errorbar([], [], yerr=[], fmt="none", ecolor="0.4", capsize=2.5, label=interval_name(seeds))


def _curve(
    axes: Any, rows: Sequence[dict[str, Any]], split: str, index: int, count: int, metric: str, label: str
) -> None:
    points = [row for row in rows if row[f"{split}_quality_mean"] is not None]
    if not points:
        return
    span = _x_span(rows)
    xs = [row["examples_seen"] + _offset(index, count, span) for row in points]
    style = _style(index)
    axes.plot(xs, [row[f"{split}_quality_mean"] for row in points], label=label, **style)
    _bars(axes, xs, points, split, metric, style["color"])


def _bars(axes: Any, xs: Sequence[float], rows: Sequence[dict[str, Any]], split: str, metric: str, colour: str) -> None:
    """Each point's interval as an error bar, clipped to what the metric can be."""
    low_bound, high_bound = METRIC_RANGES.get(metric, (float("-inf"), float("inf")))
    for x, row in zip(xs, rows, strict=True):
        mean, low, high = (row.get(f"{split}_quality_{part}") for part in ("mean", "low", "high"))
        if mean is None or low is None or high is None:
            continue
        low, high = max(low, low_bound), min(high, high_bound)
        axes.errorbar(
            [x], [mean], yerr=[[max(0.0, mean - low)], [max(0.0, high - mean)]],
            fmt="none", ecolor=colour, elinewidth=1.0, capsize=2.5, alpha=0.6,
        )  # fmt: skip


def _references_count(result: EvaluationResult) -> int:
    return bool(result.references.get("zero_shot")) + bool(
        (result.references.get("majority_class") or {}).get("per_seed")
    )


def _references(axes: Any, result: EvaluationResult) -> None:
    """Zero-shot as a wide pale band and the majority class as a thin dark line: both show when they meet."""
    zero = result.references.get("zero_shot")
    if zero and zero.get("mean") is not None:
        axes.axhline(zero["mean"], color="0.55", alpha=0.45, linewidth=4.5, zorder=0, label="zero-shot (empty memory)")
    majority = result.references.get("majority_class") or {}
    label = majority_label(result.references)
    if label and majority.get("quality_mean") is not None:
        axes.axhline(majority["quality_mean"], color="0.1", linestyle="-.", linewidth=1.0, zorder=1, label=label)


def _quality_limits(
    axes: Any, summary: Sequence[dict[str, Any]], metric: str, *, splits: Sequence[str] = ("train", "test")
) -> None:
    """The metric's own range (exact match 0 to 1), widened only down to the lowest value drawn."""
    low_bound, high_bound = METRIC_RANGES.get(metric, (None, None))
    if low_bound is None or high_bound is None:
        return
    drawn = [
        row[f"{split}_quality_{part}"]
        for row in summary
        for split in splits
        for part in ("mean", "low")
        if row.get(f"{split}_quality_{part}") is not None
    ]
    bottom = max(low_bound, min([0.0, *drawn]))
    margin = 0.03 * (high_bound - bottom)
    axes.set_ylim(bottom - margin, high_bound + margin)


def _legend(footer: Any, axes: Sequence[Any]) -> None:
    handles, labels = [], []
    for panel in axes:
        for handle, label in zip(*panel.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    footer.legend(handles, labels, loc="upper center", ncols=LEGEND_COLUMNS, fontsize=8, frameon=False)


def _title(result: EvaluationResult, what: str) -> str:
    source = Path(result.source).name if result.source else "the given examples"
    return textwrap.fill(f"{result.judge} on {source}: {what}", width=90)


def _caption(result: EvaluationResult, *, intervals: bool = True, shifted: bool = True) -> str:
    seeds = result.settings["seeds"]
    test = result.runs[0]["test"]["n"] if result.runs else 0
    seen = max(result.settings["shards"])
    text = (
        f"n = {test} test examples and up to {seen} seen training examples per seed; {seeds_text(seeds)}; "
        f"k = {result.settings['k']}. "
        + (f"Bars: {interval_name(len(seeds))}. " if intervals else "")
        + (
            "Points are shifted sideways a little so coinciding lines stay visible. "
            if shifted and len(result.settings["variants"]) > 1
            else ""
        )
        + f"Model: {result.model}. Embeddings: {result.provenance.get('embedding_model', 'unknown')}."
    )
    return text


def _style(index: int) -> dict[str, Any]:
    """A variant's look: colour, marker, line style and a size that shrinks, so overlaps show every mark."""
    return {
        "color": f"C{index % 10}",
        "marker": MARKERS[index % len(MARKERS)],
        "linestyle": LINESTYLES[index % len(LINESTYLES)],
        "markersize": max(4.0, 8.0 - 1.2 * index),
        "linewidth": 1.6,
        "markerfacecolor": "white" if index % 2 else f"C{index % 10}",
        "markeredgewidth": 1.3,
    }


def _offset(index: int, count: int, span: float) -> float:
    return (index - (count - 1) / 2) * 0.012 * span


def _x_span(rows: Sequence[dict[str, Any]]) -> float:
    seen = [row["examples_seen"] for row in rows]
    return float(max(seen) - min(seen)) or 1.0 if seen else 1.0


def _metric_key(result: EvaluationResult) -> str:
    return str(result.summary[0]["metric"]) if result.summary else "exact_match"


@dataclass(frozen=True)
class Canvas:
    """A figure in two bands: the panels (with the title) above, the legend and the caption below them."""

    figure: Any
    plots: Any
    footer: Any
    caption: str


def _canvas(width: float, plot_height: float, title: str, caption: str, entries: int) -> Canvas:
    """A figure sized so the legend's rows and the caption's lines fit under the panels, never on them."""
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ConfigurationError(PLOTS_HELP) from error
    wrapped = textwrap.fill(caption, width=int(width * 17))
    rows = math.ceil(entries / LEGEND_COLUMNS)
    footer_height = (rows * 8 * 1.8 + (wrapped.count("\n") + 1) * CAPTION_POINTS * 1.4 + 18) / 72
    figure = Figure(figsize=(width, plot_height + footer_height), dpi=DPI, layout="constrained")
    plots, footer = figure.subfigures(2, 1, height_ratios=[plot_height, footer_height])  # type: ignore[misc]
    plots.suptitle(title, fontsize=11)
    return Canvas(figure=figure, plots=plots, footer=footer, caption=wrapped)


def _save(canvas: Canvas, axes: Sequence[Any], stem: str | Path) -> list[Path]:
    _legend(canvas.footer, axes)
    canvas.footer.text(0.5, 0.03, canvas.caption, ha="center", va="bottom", fontsize=CAPTION_POINTS, color="0.25")
    stem = Path(stem)
    written = []
    for extension in FORMATS:
        path = stem.with_suffix(f".{extension}")
        canvas.figure.savefig(path, format=extension, dpi=DPI, metadata=_metadata(extension))
        written.append(path)
    return written


def _metadata(extension: str) -> dict[str, Any] | None:
    # No creation date in SVG and PDF: the same result draws the same file.
    return {"Date": None} if extension in ("svg", "pdf") else None


def _by_variant(summary: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(summary, key=lambda row: (variant_order(row["variant"]), row["examples_seen"])):
        grouped.setdefault(row["variant"], []).append(row)
    return grouped


def _shard_ticks(axes: Any, summary: Sequence[dict[str, Any]]) -> None:
    axes.set_xticks(sorted({row["examples_seen"] for row in summary}))
