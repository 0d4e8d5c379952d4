"""`memalign judge FILE`: judge every row of a file into JSONL, with progress and bounded concurrency."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from memalign_graph.cli.common import (
    CliError,
    first_line,
    model_label,
    open_judge,
    progress_bar,
    read_dataset,
    resolve_embedding_model,
    resolve_model,
    resolve_spec,
)
from memalign_graph.cli.usage import price_options, prices_from, usage_line
from memalign_graph.errors import ProviderDownError

if TYPE_CHECKING:
    from memalign_graph.evaluation.datasets import LabeledExample

EXAMPLE = """example:
  memalign judge examples/data/halueval_sample.jsonl --judge halueval_hallucination -o verdicts.jsonl
  memalign judge drafts.csv --judge support_tone --inputs question --outputs answer --concurrency 8

Each output line is {id, where, verdict: {key, score, comment, metadata} or null, error, expected, usage, model}.
A row the model gave no valid verdict for has verdict null and its error; nothing is made up.
A row the judge's memory already holds (same id or same content) is flagged in metadata.in_memory and
counted in a warning: its verdict saw the expert's own answer. --exclude-self judges each row around it."""

CHUNK_PER_WORKER = 8


def add_command(subcommands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    parser = subcommands.add_parser(
        "judge",
        parents=[*parents, price_options()],
        help="judge every row of a file to JSONL",
        description="Judge every row of a file with everything the judge has learned; write one JSON line per row.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", help="rows to judge (.jsonl, .csv, .json; see --format)")
    parser.add_argument("-o", "--output", type=Path, help="JSONL file to write (default: standard output)")
    parser.add_argument("--concurrency", type=int, default=4, help="judgments in flight at once (default: 4)")
    parser.add_argument(
        "--exclude-self",
        action="store_true",
        help="never show a row its own record in memory (same id or content): judge it as a new example",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from memalign_graph.accounting import UsageTracker, track_usage
    from memalign_graph.bulk import judge_examples
    from memalign_graph.evaluation.metrics import agreement_report

    if args.concurrency < 1:
        raise CliError(f"--concurrency: {args.concurrency} must be at least 1")
    spec = resolve_spec(args, save=False)
    dataset = read_dataset(args, spec, require="inputs")
    model = resolve_model(args)
    embeddings = resolve_embedding_model(args)
    label = model_label(model)
    tracker = UsageTracker()
    expected: list[Any] = []
    predicted: list[Any] = []
    failures: list[str] = []
    leaked: list[str] = []
    started = time.perf_counter()
    with open_judge(args, spec, model, embeddings) as judge, _output(args.output) as out, track_usage(tracker):
        with progress_bar(args, len(dataset.examples), f"judging with {spec.name}") as bar:
            size = args.concurrency * CHUNK_PER_WORKER
            for start in range(0, len(dataset.examples), size):
                chunk = dataset.examples[start : start + size]
                verdicts = judge_examples(
                    judge,
                    [_guarded(example, args.exclude_self) for example in chunk],
                    labels=[example.where for example in chunk],
                    max_concurrency=args.concurrency,
                    tracker=tracker,
                    on_done=bar.update,
                )
                usage = tracker.by_item()
                for example, verdict in zip(chunk, verdicts, strict=True):
                    row = _row(example, verdict, usage.get(example.where), label)
                    out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
                    if isinstance(verdict, Exception):
                        failures.append(f"{example.where}: {row['error']}")
                    elif verdict["metadata"].get("in_memory"):
                        leaked.append(example.where)
                    if example.value is not None:
                        expected.append(example.value)
                        predicted.append(None if isinstance(verdict, Exception) else verdict["score"])
                out.flush()
                down = next((verdict for verdict in verdicts if isinstance(verdict, ProviderDownError)), None)
                if down is not None and all(isinstance(verdict, Exception) for verdict in verdicts):
                    raise down  # no row of this chunk got a verdict and the provider is down: stop here
    total = len(dataset.examples)
    seconds = time.perf_counter() - started
    print(
        f"judged {total} rows with {spec.name!r} ({label}): {total - len(failures)} verdicts, "
        f"{len(failures)} without a verdict, {seconds:.1f} s",
        file=sys.stderr,
    )
    print(f"  {usage_line(tracker.total(), prices_from(args), judgments=total)}", file=sys.stderr)
    if expected and any(value is not None for value in predicted):  # no metric over zero verdicts
        report = agreement_report(spec.output, expected, predicted)
        quality = "undefined" if report["quality"] is None else f"{report['quality']:.3f}"
        print(
            f"  agreement with the file's {len(expected)} expert values: {report['metric']} {quality}", file=sys.stderr
        )
    if leaked:
        print(_leak_warning(leaked, total, spec.name, excluded=args.exclude_self), file=sys.stderr)
    for failure in failures[:5]:
        print(f"memalign: no verdict for {failure}", file=sys.stderr)
    if failures and len(failures) == total:
        return 1
    return 0


def _guarded(example: LabeledExample, exclude_self: bool) -> dict[str, Any]:
    """The row as the judge sees it, named by its id so the leakage guard can recognise it."""
    return {**example.example(), "example_id": example.id, "exclude_self": exclude_self}


def _leak_warning(leaked: list[str], total: int, judge: str, *, excluded: bool) -> str:
    where = ", ".join(leaked[:3]) + (", ..." if len(leaked) > 3 else "")
    if excluded:
        return (
            f"memalign: {len(leaked)} of {total} rows are in judge {judge}'s memory ({where}); "
            "--exclude-self judged them around their own records"
        )
    return (
        f"memalign: warning: {len(leaked)} of {total} rows are in judge {judge}'s memory by id or content "
        f"({where}): each was shown its own expert verdict, so agreement on them says nothing about new rows; "
        "--exclude-self judges them around their own records"
    )


def _row(example: LabeledExample, verdict: Any, usage: Any, label: str) -> dict[str, Any]:
    failed = isinstance(verdict, Exception)
    return {
        "id": example.id,
        "where": example.where,
        "verdict": None if failed else verdict,
        "error": f"{type(verdict).__name__}: {first_line(verdict)}" if failed else None,
        "expected": example.value,
        "usage": usage.as_dict() if usage is not None else None,
        "model": label,
    }


@contextmanager
def _output(path: Path | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        yield handle
