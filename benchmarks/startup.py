"""Scenario `startup`: what a newcomer waits for before anything happens.

Each command runs in a fresh Python process, as a person runs it, a few times; the table shows the median.
`align, nothing new` re-aligns a home on the feedback it already holds with the default (local MiniLM)
embeddings: nothing is embedded, so the model must not load.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.context import RunContext
from benchmarks.report import ScenarioResult, Target

COLUMNS = [("what", "what"), ("runs", "runs"), ("median_s", "median s"), ("min_s", "min s"), ("max_s", "max s")]
FEEDBACK = {"id": "f1", "inputs": "late parcel", "outputs": "Sorry!", "value": True, "rationale": "Apologise."}
SPEC = {"name": "tone", "instructions": "Is the reply appropriate?", "output": {"kind": "boolean"}}


def run(context: RunContext) -> ScenarioResult:
    result = ScenarioResult(name="startup", title="Starting: fresh processes", columns=COLUMNS)
    home = context.folder("startup")
    (home / "feedback.jsonl").write_text(json.dumps(FEEDBACK) + "\n")
    (home / "spec.json").write_text(json.dumps(SPEC))
    memalign = [sys.executable, "-m", "memalign_graph.cli"]
    mem = ["--home", str(home / "memory")]
    first = [*memalign, "align", str(home / "feedback.jsonl"), "--spec", str(home / "spec.json"), *mem]
    _run([*first, "--model", "fake", "--embeddings", "fake", "--no-progress"])  # the home holds its feedback
    commands: list[tuple[str, list[str]]] = [
        ("import memalign_graph", [sys.executable, "-c", "import memalign_graph"]),
        ("memalign --help", [*memalign, "--help"]),
        ("memalign align --help", [*memalign, "align", "--help"]),
        ("memalign memory show", [*memalign, "memory", "show", "--judge", "tone", *mem]),
        ("memalign align, nothing new", [*first, "--model", "fake", "--no-progress"]),
    ]
    runs = context.sizes.startup_runs
    for what, command in commands:
        seconds = [_run(command) for _ in range(runs)]
        result.rows.append(
            {
                "what": what,
                "runs": runs,
                "median_s": statistics.median(seconds),
                "min_s": min(seconds),
                "max_s": max(seconds),
            }
        )
    by_name = {row["what"]: row["median_s"] for row in result.rows}
    result.targets += [
        Target(
            name="import",
            goal="import memalign_graph <= 1 s",
            measured=f"{by_name['import memalign_graph']:.2f} s",
            met=by_name["import memalign_graph"] <= 1.0,
        ),
        Target(
            name="--help",
            goal="memalign --help <= 0.5 s",
            measured=f"{by_name['memalign --help']:.2f} s",
            met=by_name["memalign --help"] <= 0.5,
        ),
        Target(
            name="nothing to do",
            goal="an alignment with nothing new loads no embedding model",
            measured=f"{by_name['memalign align, nothing new']:.2f} s (34 s before: the model loaded anyway)",
            met=by_name["memalign align, nothing new"] < 10,
        ),
    ]
    result.notes.append(
        "Medians of fresh processes (`python -m memalign_graph.cli`, the console script's own code); the machine's "
        "load at the start is in the header. Before: import ~5.6 s, --help 3.5-6.7 s, memory commands ~7.5 s."
    )
    return result


def _run(command: list[str]) -> float:
    environment: dict[str, Any] = {**os.environ, "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=environment, cwd=Path.cwd())
    return time.perf_counter() - started
