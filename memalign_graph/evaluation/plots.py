"""Learning-curve plots as PNG files: quality and tokens per judgment against examples seen.

Drawn with matplotlib's object API on the Agg canvas, so no display, GUI backend or global pyplot state
is involved (it works the same in a terminal, a server and a test). matplotlib is an optional extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memalign_graph.errors import ConfigurationError

PLOTS_HELP = "Plots need matplotlib: pip install 'memalign-graph[plots]'."


def plot_learning_curves(summary: Sequence[dict[str, Any]], path: str | Path, *, metric: str, title: str) -> Path:
    """Quality vs examples seen: test (solid) and train (dashed), one colour per variant, spread shaded."""
    figure, axes = _figure()
    for colour, (variant, rows) in zip(_colours(), _by_variant(summary).items(), strict=False):
        for split, style in (("test", "-"), ("train", "--")):
            points = [
                (row["examples_seen"], row[f"{split}_quality_mean"], row[f"{split}_quality_std"])
                for row in rows
                if row[f"{split}_quality_mean"] is not None
            ]
            if not points:
                continue
            seen = [point[0] for point in points]
            means = [point[1] for point in points]
            axes.plot(seen, means, style, marker="o", color=colour, label=f"{variant} ({split})")
            if any(point[2] is not None for point in points):
                spreads = [point[2] or 0.0 for point in points]
                low = [mean - spread for mean, spread in zip(means, spreads, strict=True)]
                high = [mean + spread for mean, spread in zip(means, spreads, strict=True)]
                axes.fill_between(seen, low, high, color=colour, alpha=0.12, linewidth=0)
    _shard_ticks(axes, summary)
    values = [row[f"{split}_quality_mean"] for row in summary for split in ("train", "test")]
    if all(value is None or 0.0 <= value <= 1.0 for value in values):
        axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel("training examples seen")
    axes.set_ylabel(metric)
    axes.set_title(title, fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    return _save(figure, path)


def plot_tokens_per_judgment(summary: Sequence[dict[str, Any]], path: str | Path, *, title: str) -> Path:
    """Mean tokens per judgment vs examples seen: what the growing memories cost each judgment."""
    figure, axes = _figure()
    for colour, (variant, rows) in zip(_colours(), _by_variant(summary).items(), strict=False):
        seen = [row["examples_seen"] for row in rows]
        tokens = [row["total_tokens_per_judgment_mean"] or 0.0 for row in rows]
        axes.plot(seen, tokens, "-", marker="o", color=colour, label=variant)
    _shard_ticks(axes, summary)
    axes.set_xlabel("training examples seen")
    axes.set_ylabel("tokens per judgment (prompt + completion)")
    axes.set_title(title, fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    return _save(figure, path)


def _figure() -> tuple[Any, Any]:
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ConfigurationError(PLOTS_HELP) from error
    figure = Figure(figsize=(7, 4.5), dpi=110, layout="constrained")
    return figure, figure.add_subplot()


def _save(figure: Any, path: str | Path) -> Path:
    path = Path(path)
    figure.savefig(path, format="png")
    return path


def _by_variant(summary: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(summary, key=lambda row: (row["variant"], row["examples_seen"])):
        grouped.setdefault(row["variant"], []).append(row)
    return grouped


def _shard_ticks(axes: Any, summary: Sequence[dict[str, Any]]) -> None:
    axes.set_xticks(sorted({row["examples_seen"] for row in summary}))


def _colours() -> list[str]:
    return [f"C{index}" for index in range(10)] * 10
