"""`memalign review-queue FILE`: which examples an expert should review next, best teachers first."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memalign_graph.cli.common import (
    CliError,
    model_label,
    open_judge,
    read_dataset,
    resolve_embedding_model,
    resolve_model,
    resolve_spec,
)

if TYPE_CHECKING:
    from memalign_graph.review_queue import ReviewItem

EXAMPLE = """example:
  memalign review-queue new_rows.jsonl --judge halueval_hallucination -n 20 -o to_review.jsonl

Each row is judged --repeats times with memory (a pairwise judge with the responses swapped every other
time) and once without memory. Its score = instability (the judge disagrees with itself) + novelty
(1 - similarity of the nearest episode) + memory effect (memory changes the verdict), each 0 to 1;
highest first. Rows the judge's memory already holds are left out. -o writes each ranked row as JSON
with its signals, verdicts and the example itself."""


def add_command(subcommands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    parser = subcommands.add_parser(
        "review-queue",
        parents=parents,
        help="rank unlabelled rows by how much an expert's verdict would teach",
        description="Rank the rows of a file by how much an expert's verdict on each would teach the judge.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", help="rows to rank (.jsonl, .csv, .json; see --format); labels are ignored")
    parser.add_argument("-n", "--top", type=int, default=20, help="how many rows to list (default: 20)")
    parser.add_argument("-o", "--output", type=Path, help="JSONL file for the ranked rows (default: none)")
    parser.add_argument(
        "--repeats", type=int, default=2, help="judgments with memory per row, to see instability (default: 2)"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="judgments in flight at once (default: 4)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from memalign_graph.review_queue import Candidate, rank_for_review

    for flag, value in (("-n", args.top), ("--repeats", args.repeats), ("--concurrency", args.concurrency)):
        if value < 1:
            raise CliError(f"{flag}: {value} must be at least 1")
    spec = resolve_spec(args, save=False)
    dataset = read_dataset(args, spec, require="inputs")
    model = resolve_model(args)
    embeddings = resolve_embedding_model(args)
    candidates = [
        Candidate(id=e.id, inputs=e.inputs, outputs=e.outputs, expectations=e.expectations, where=e.where)
        for e in dataset.examples
    ]
    print(
        f"memalign: judging {len(candidates)} rows {args.repeats + 1} times each with {model_label(model)}",
        file=sys.stderr,
    )
    with open_judge(args, spec, model, embeddings) as judge:
        queue = rank_for_review(
            judge, candidates, repeats=args.repeats, limit=args.top, max_concurrency=args.concurrency
        )
    ranked = len(candidates) - len(queue.in_memory)
    print(
        f"review queue for judge {spec.name!r}: the {len(queue.items)} of {ranked} rows an expert's verdict "
        "would teach most (score = instability + novelty + memory effect, each 0 to 1)"
    )
    if queue.in_memory:
        print(f"  {len(queue.in_memory)} rows left out: the judge's memory already holds them")
    print(_table(queue.items))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with args.output.open("w", encoding="utf-8") as handle:
            for item in queue.items:
                handle.write(json.dumps(item, ensure_ascii=False, default=str) + "\n")
        print(f"wrote {args.output}")
    return 0


def _table(items: list[ReviewItem]) -> str:
    headers = ["rank", "row", "id", "score", "unstable", "novel", "memory effect", "verdicts / without memory"]
    rows = [
        [
            str(item["rank"]),
            item["where"],
            _short(item["id"]),
            f"{item['score']:.2f}",
            f"{item['instability']:.2f}",
            f"{item['novelty']:.2f}",
            f"{item['memory_effect']:.2f}",
            f"{'/'.join(_text(v) for v in item['verdicts'])} / {_text(item['without_memory'])}",
        ]
        for item in items
    ]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    head = "  ".join(cell.ljust(width) for cell, width in zip(headers, widths, strict=True)).rstrip()
    return "\n".join([head, "  ".join("-" * width for width in widths), *lines])


def _short(text: str, width: int = 28) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
