"""`memalign align FILE`: learn from a file of expert feedback, with progress; a re-run changes nothing."""

from __future__ import annotations

import argparse
import sys
import time

from memalign_graph.cli.common import (
    CliError,
    open_judge,
    progress_bar,
    read_dataset,
    resolve_embedding_model,
    resolve_model,
    resolve_spec,
    save_spec,
)
from memalign_graph.cli.sources import EXAMPLES as SOURCE_EXAMPLES
from memalign_graph.cli.sources import add_source_options, chosen_source, read_source
from memalign_graph.cli.usage import price_options, prices_from, usage_line
from memalign_graph.config import memory_home

EXAMPLE = f"""example:
  memalign align examples/data/halueval_sample.jsonl --spec examples/judges/halueval.yaml
  memalign align feedback.csv --judge support_tone --inputs question --outputs answer \\
      --value verdict --rationale why --model openai:gpt-4.1-mini
{SOURCE_EXAMPLES}

Rows already in memory with the same content are skipped, so running it again on the same file
changes nothing (feedback from MLflow or LangSmith keeps the id it has there, so the same holds).
Each chunk of feedback becomes one version in `memalign memory history`.
--check-regressions judges every seen example before and after (two judgments each), reports fixed,
broken and unchanged verdicts, and exits with status 3 when a verdict that matched the expert no longer does."""


def add_command(subcommands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    parser = subcommands.add_parser(
        "align",
        parents=[*parents, price_options()],
        help="align a judge on expert feedback: a file, MLflow assessments or LangSmith feedback",
        description="Align a judge on expert feedback read from JSONL, CSV or JSON (value and/or rationale per row), "
        "or from MLflow trace assessments or LangSmith run feedback.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", nargs="?", help="feedback file (.jsonl, .csv, .json; see --format)")
    add_source_options(parser)
    parser.add_argument("--chunk-size", type=int, default=16, help="feedback items per alignment run (default: 16)")
    parser.add_argument(
        "--check-regressions",
        action="store_true",
        help="re-judge the seen examples before and after; exit 3 if a verdict that matched the expert now does not",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from memalign_graph.accounting import UsageTracker, track_usage
    from memalign_graph.alignment import describe_distillation
    from memalign_graph.bulk import align_in_chunks
    from memalign_graph.regressions import checked_alignment, describe_regressions

    if args.chunk_size < 1:
        raise CliError(f"--chunk-size: {args.chunk_size} must be at least 1")
    source = chosen_source(args)
    spec = resolve_spec(args, save=False)
    skipped = 0
    if source is None:
        dataset = read_dataset(args, spec, require="feedback")
        feedback = [item for item in (example.feedback() for example in dataset.examples) if item is not None]
        origin, skipped = str(args.file), len(dataset.skipped)
    else:
        feedback, origin = read_source(args, spec, source)
    model = resolve_model(args)
    embeddings = resolve_embedding_model(args)
    save_spec(memory_home(args.home), spec, args.namespace)
    tracker = UsageTracker()
    started = time.perf_counter()
    with open_judge(args, spec, model, embeddings) as judge, track_usage(tracker):
        if args.check_regressions:
            seen = len(judge.memory.ledger()) + len(feedback)
            print(
                f"memalign: --check-regressions: judging up to {seen} seen examples before and after", file=sys.stderr
            )
        with progress_bar(args, len(feedback), f"aligning {spec.name}") as bar:
            align = lambda: align_in_chunks(judge, feedback, chunk_size=args.chunk_size, on_done=bar.update)  # noqa: E731
            report = checked_alignment(judge, feedback, align) if args.check_regressions else align()
        guidelines = len(judge.guidelines())
    print(
        f"aligned judge {spec.name!r} (namespace {args.namespace}) on {origin}: {len(feedback)} feedback read"
        + (f", {skipped} rows skipped" if skipped else "")
    )
    print(
        f"  added {len(report['added'])}, updated {len(report['updated'])}, "
        f"unchanged {len(report['unchanged'])} (already in memory), pending {len(report['pending'])}"
    )
    print(
        f"  guidelines: {guidelines} now (+{len(report['guidelines_added'])} added, "
        f"{len(report['guidelines_merged'])} merged, {len(report['guidelines_removed'])} removed)"
    )
    for line in describe_distillation(report):
        print(f"  {line}")
    print(f"  {usage_line(tracker.total(), prices_from(args))}, {time.perf_counter() - started:.1f} s")
    for line in describe_regressions(report["regressions"]) if "regressions" in report else []:
        print(f"  {line}")
    if report["pending"]:
        first = report["failed_batches"][0]["error"] if report["failed_batches"] else "distillation failed"
        print(
            f"memalign: {len(report['pending'])} feedback items are stored but not distilled yet ({first}); "
            "run the same command again to retry them",
            file=sys.stderr,
        )
        return 1
    if "regressions" in report and report["regressions"]["broken"]:
        broken = report["regressions"]["broken"]
        print(f"memalign: {len(broken)} verdicts that matched the expert no longer do (see above)", file=sys.stderr)
        return 3
    return 0
