"""`python -m benchmarks`: run the scenarios, print one markdown table each, write them all as JSON.

python -m benchmarks                      # every scenario at the issue's sizes (~5-7 min on 2 cores)
python -m benchmarks --quick              # smaller sizes, about a minute
python -m benchmarks --scenario alignment --scenario scale
python -m benchmarks --qdrant-url http://localhost:6333   # also run `scale` against a server
python -m benchmarks --readme README.md  # also put the tables into the README, between its two markers
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import (
    alignment,
    batch_throughput,
    edge,
    incremental,
    judge_overhead,
    kills,
    minilm_queries,
    prompt_tokens,
    round_trips,
    scale,
    startup,
    vs_mlflow,
)
from benchmarks.context import PRESETS, RunContext
from benchmarks.report import ScenarioResult, machine_info, render_markdown, write_json

SCENARIOS: dict[str, Callable[[RunContext], ScenarioResult]] = {
    "alignment": alignment.run,
    "round_trips": round_trips.run,
    "incremental": incremental.run,
    "prompt_tokens": prompt_tokens.run,
    "batch_throughput": batch_throughput.run,
    "judge_overhead": judge_overhead.run,
    "minilm_queries": minilm_queries.run,
    "scale": scale.run,
    "edge": edge.run,
    "vs-mlflow": vs_mlflow.run,
    "kills": kills.run,
    "startup": startup.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    size.add_argument("--full", action="store_true", help="also MiniLM at N=1000")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="run only these (repeatable)")
    parser.add_argument("--qdrant-url", default=os.environ.get("MEMALIGN_QDRANT_URL") or None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results.json"), help="JSON results")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables here")
    parser.add_argument(
        "--readme", type=Path, default=None, help="also replace the results between this file's two markers"
    )
    args = parser.parse_args(argv)

    preset = "quick" if args.quick else "full" if args.full else "default"
    names = args.scenario or list(SCENARIOS)
    command = "python -m benchmarks " + shlex.join(sys.argv[1:] if argv is None else argv)
    info = machine_info()
    context = RunContext.create(PRESETS[preset], qdrant_url=args.qdrant_url)
    results: list[ScenarioResult] = []
    started = time.perf_counter()
    try:
        for name in SCENARIOS:
            if name not in names:
                continue
            print(f"[{time.perf_counter() - started:6.1f} s] running {name} ...", file=sys.stderr, flush=True)
            began = time.perf_counter()
            result = SCENARIOS[name](context)
            result.seconds = time.perf_counter() - began
            results.append(result)
    finally:
        context.close()
    info["total_seconds"] = round(time.perf_counter() - started, 1)
    info["preset"] = preset
    markdown = render_markdown(results, info, command=command.strip())
    markdown += f"\nTotal benchmark time: {info['total_seconds']:.0f} s ({preset} sizes).\n"
    print(markdown)
    write_json(args.out, results, info, command=command.strip())
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown)
    if args.readme:
        splice_into_readme(args.readme, markdown)
    print(f"JSON written to {args.out}", file=sys.stderr)
    return 0


README_START = "<!-- benchmark results: start (python -m benchmarks --readme README.md) -->"
README_END = "<!-- benchmark results: end -->"


def splice_into_readme(readme: Path, markdown: str) -> None:
    """Put a run's tables between the README's markers, one heading level down (they sit under a section)."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise SystemExit(f"{readme}: no results markers; add the lines {README_START} and {README_END}.")
    before, rest = text.split(README_START, 1)
    after = rest.split(README_END, 1)[1]
    demoted = "\n".join("#" + line if line.startswith("### ") else line for line in markdown.strip().splitlines())
    readme.write_text(f"{before}{README_START}\n{demoted}\n{README_END}{after}")


if __name__ == "__main__":
    raise SystemExit(main())
