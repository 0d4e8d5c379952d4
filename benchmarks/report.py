"""Results: one table per scenario (markdown, so it pastes into the README) and the same data as JSON.

Every figure carries its N and latency in its row, and the machine it ran on in the header: absolute
times drift between machines, and this one is shared (the load average is recorded too).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "memalign-graph",
    "langgraph",
    "langgraph-checkpoint-sqlite",
    "langchain-core",
    "qdrant-client",
    "qdrant-edge-py",
    "numpy",
    "torch",
    "sentence-transformers",
    "mlflow",
    "dspy",
)


@dataclass
class Target:
    """One of the issue's targets and what this run measured against it."""

    name: str
    goal: str
    measured: str
    met: bool | None  # None: not measurable in this run (e.g. skipped)


@dataclass
class ScenarioResult:
    """A scenario's rows (dicts with the keys of `columns`), targets and notes."""

    name: str
    title: str
    columns: list[tuple[str, str]]  # (key, header)
    rows: list[dict[str, Any]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def machine_info() -> dict[str, Any]:
    """Cores, RAM, CPU model, OS, Python, package versions and the load at the time of the run."""
    info: dict[str, Any] = {
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_gib": _ram_gib(),
        "cpu": _cpu_model(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "load_average": [round(value, 2) for value in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "git_commit": _git_commit(),
        "packages": {},
    }
    for package in PACKAGES:
        try:
            info["packages"][package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info["packages"][package] = None
    return info


def machine_line(info: dict[str, Any]) -> str:
    packages = ", ".join(f"{name} {version}" for name, version in info["packages"].items() if version)
    return (
        f"Machine: {info['cores']} cores ({info['cpu']}), {info['ram_gib']} GiB RAM, {info['os']}, "
        f"Python {info['python']}, load average {info['load_average']} at start; {packages}."
    )


def render_markdown(results: list[ScenarioResult], info: dict[str, Any], *, command: str) -> str:
    lines = [f"`{command}`", "", machine_line(info), ""]
    lines += render_summary(results)
    for result in results:
        lines += [f"### {result.title}", ""]
        lines += _table(result)
        lines.append("")
        for target in result.targets:
            status = {True: "met", False: "NOT met", None: "not measured"}[target.met]
            lines.append(f"- Target {target.name}: {target.goal}. Measured: {target.measured}. **{status}**")
        for note in result.notes:
            lines.append(f"- {note}")
        lines.append("")
    return "\n".join(lines)


def render_summary(results: list[ScenarioResult]) -> list[str]:
    """Every target of the run in one table, first: what a reader checks before the tables behind it."""
    targets = [(result, target) for result in results for target in result.targets]
    if not targets:
        return []
    lines = [
        "### Where the targets stand (this run)",
        "",
        "| scenario | target | goal | measured | status |",
        "|---|---|---|---|---|",
    ]
    for result, target in targets:
        status = {True: "met", False: "NOT met", None: "not measured"}[target.met]
        lines.append(f"| {result.name} | {target.name} | {target.goal} | {target.measured} | {status} |")
    return [*lines, ""]


def _table(result: ScenarioResult) -> list[str]:
    headers = [header for _, header in result.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in result.rows:
        lines.append("| " + " | ".join(_cell(row.get(key)) for key, _ in result.columns) + " |")
    return lines


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write_json(path: Path, results: list[ScenarioResult], info: dict[str, Any], *, command: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"command": command, "machine": info, "scenarios": [asdict(result) for result in results]}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


def _ram_gib() -> float | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _git_commit() -> str | None:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None
