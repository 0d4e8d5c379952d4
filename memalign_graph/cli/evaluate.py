"""`memalign eval FILE`: run the MemAlign evaluation protocol and write the table, JSON, CSV and plots."""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from memalign_graph.cli.common import (
    CliError,
    first_line,
    model_label,
    progress_bar,
    read_dataset,
    resolve_embedding_model,
    resolve_model,
    resolve_spec,
)
from memalign_graph.cli.usage import price_options, prices_from
from memalign_graph.errors import ConfigurationError
from memalign_graph.evaluation.ablations import DEFAULT_SHARDS, FEEDBACK_VARIANTS, MEMORY_VARIANTS, Variant
from memalign_graph.evaluation.intervals import DEFAULT_REPLICATES

if TYPE_CHECKING:  # the protocol and its writers are imported when it runs
    from memalign_graph.evaluation.protocol import EvaluationResult

EXAMPLE = """examples (the shipped samples; defaults fit each file):
  memalign eval examples/data/halueval_sample.jsonl --spec examples/judges/halueval.yaml \\
      --memory both,semantic,episodic --out eval/halueval
  memalign eval examples/data/prometheus_sample.jsonl --spec examples/judges/prometheus.yaml \\
      --memory both,semantic,episodic --out eval/prometheus --price-input 0.4 --price-output 1.6
  memalign eval examples/data/llmbar_natural_sample.json --spec examples/judges/llmbar.yaml \\
      --memory both,semantic,episodic --out eval/llmbar

Memory starts empty for every seed and variant (in a temporary folder, or --memory-dir), never in
your judge's home. Test examples are never shown their own record. Writes into --out: results.json
(every number, every prediction, provenance), results.md (a table for a README), results.csv (mean
and 95% interval per variant and shard), runs.csv (every seed), predictions.jsonl, quality_cost.csv,
and learning_curve, quality_vs_cost and tokens_per_judgment as PNG, SVG and PDF."""


def add_command(subcommands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    parser = subcommands.add_parser(
        "eval",
        parents=[*parents, price_options()],
        help="run the evaluation protocol and plot learning curves",
        description="The MemAlign protocol: split into train and test (seeded), feed training feedback in shards, "
        "and after each shard measure agreement on the seen training examples and on the test set.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", help="labelled examples (.jsonl, .csv, .json; see --format)")
    parser.add_argument(
        "--out", type=Path, default=Path("memalign-eval"), help="output folder (default: memalign-eval)"
    )
    parser.add_argument(
        "--train-size",
        type=int,
        help="training examples per seed (default: 50, the paper's, when the file has 100 or more; else half)",
    )
    parser.add_argument(
        "--shards",
        help=f"examples seen at each measurement (default: {','.join(map(str, DEFAULT_SHARDS))}, "
        "up to the train size, and the train size itself)",
    )
    parser.add_argument("--seeds", default="0,1,2", help="seeds of the train/test split (default: 0,1,2)")
    parser.add_argument("--test-size", type=int, help="cap the test set to a random N (default: all the rest)")
    parser.add_argument("--memory", default="both", help=f"memory ablations, from {','.join(MEMORY_VARIANTS)}")
    parser.add_argument("--feedback", default="both", help=f"feedback ablations, from {','.join(FEEDBACK_VARIANTS)}")
    parser.add_argument("--k", type=int, default=5, help="episodes retrieved per judgment (default: 5)")
    parser.add_argument("--concurrency", type=int, default=4, help="judgments in flight at once (default: 4)")
    parser.add_argument("--memory-dir", type=Path, help="keep the protocol's memory here (must be new or empty)")
    parser.add_argument(
        "--bootstrap", type=int, default=DEFAULT_REPLICATES, help="resamples for the 95%% intervals (0: none)"
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the plots (PNG, SVG, PDF)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from memalign_graph.evaluation.protocol import ProtocolSettings, run_protocol
    from memalign_graph.evaluation.results import (
        confusion_matrices_text,
        results_table,
        write_json,
        write_markdown,
        write_predictions,
        write_quality_cost_csv,
        write_runs_csv,
        write_summary_csv,
    )

    if args.concurrency < 1 or args.k < 0:
        raise CliError("--concurrency must be at least 1 and --k at least 0")
    if args.bootstrap < 0:
        raise CliError(f"--bootstrap: {args.bootstrap} must be 0 (no intervals) or more")
    spec = resolve_spec(args, save=False)
    dataset = read_dataset(args, spec, require="value")
    settings = ProtocolSettings.fitting(
        len(dataset.examples),
        train_size=args.train_size,
        shards=_integers(args.shards, "--shards") if args.shards else None,
        seeds=_integers(args.seeds, "--seeds"),
        variants=tuple(
            Variant(memory=memory, feedback=feedback)  # type: ignore[arg-type]
            for memory in _choices(args.memory, "--memory", MEMORY_VARIANTS)
            for feedback in _choices(args.feedback, "--feedback", FEEDBACK_VARIANTS)
        ),
        test_size=args.test_size,
        k=args.k,
        max_concurrency=args.concurrency,
        prices=prices_from(args),
        bootstrap=args.bootstrap,
    )
    settings.check(len(dataset.examples))
    if args.train_size is None or args.shards is None:
        print(
            f"memalign: train size {settings.train_size} of {len(dataset.examples)} examples, shards "
            f"{','.join(map(str, settings.shards))} (defaults fitted to the file; --train-size and --shards set them)",
            file=sys.stderr,
        )
    model = resolve_model(args)
    embeddings = resolve_embedding_model(args)
    label = model_label(model)
    judgments = settings.judgments(len(dataset.examples))
    feedback = len(settings.seeds) * len(settings.variants) * max(settings.shards)
    print(
        f"memalign: {len(dataset.examples)} examples; about {judgments} judgments and {feedback} feedback "
        f"items to align with {label}",
        file=sys.stderr,
    )
    with ExitStack() as stack:
        memory_dir = _memory_dir(args.memory_dir, stack)
        bar = stack.enter_context(progress_bar(args, judgments + feedback, f"evaluating {spec.name}"))
        result = run_protocol(
            spec,
            dataset.examples,
            model=model,
            embeddings=embeddings,
            memory_dir=memory_dir,
            settings=settings,
            model_label=label,
            source=str(args.file),
            on_progress=bar.update,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    written = [
        write_json(result, args.out / "results.json"),
        write_summary_csv(result, args.out / "results.csv"),
        write_runs_csv(result, args.out / "runs.csv"),
        write_markdown(result, args.out / "results.md"),
        write_predictions(result, args.out / "predictions.jsonl"),
        write_quality_cost_csv(result, args.out / "quality_cost.csv"),
    ]
    if not args.no_plots:
        written += _plots(result, args.out)
    print(results_table(result))
    matrices = confusion_matrices_text(result)
    if matrices:
        print("\n" + matrices)
    if not any(run["judging"]["usage"]["calls"] for run in result.runs):
        print(
            "\nno LLM calls were reported: this model answers without a LangChain model call (as the fake one "
            "does), so calls, tokens and cost read 0"
        )
    failures = sum(row["test_no_verdict"] + row["train_no_verdict"] for row in result.summary)
    if failures:
        print(f"\n{failures} judgments gave no verdict (counted as misses; see no_verdict_errors in results.json)")
    print("\nwrote " + ", ".join(str(path) for path in written))
    return 0


def _plots(result: EvaluationResult, out: Path) -> list[Path]:
    from memalign_graph.evaluation.plots import plot_learning_curves, plot_quality_vs_cost, plot_tokens_per_judgment

    try:
        return [
            *plot_learning_curves(result, out / "learning_curve"),
            *plot_quality_vs_cost(result, out / "quality_vs_cost"),
            *plot_tokens_per_judgment(result, out / "tokens_per_judgment"),
        ]
    except ConfigurationError as error:
        print(f"memalign: no plots: {first_line(error)}", file=sys.stderr)
        return []


def _memory_dir(given: Path | None, stack: ExitStack) -> Path:
    if given is None:
        return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="memalign-eval-")))
    if given.exists() and any(given.iterdir()):
        raise CliError(f"--memory-dir: {given} is not empty; the protocol starts from empty memory, give a new folder")
    return given


def _integers(text: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise CliError(f"{flag}: {text!r} must be comma-separated whole numbers, e.g. 0,2,5") from None


def _choices(text: str, flag: str, allowed: tuple[str, ...]) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    wrong = [part for part in chosen if part not in allowed]
    if wrong or not chosen:
        raise CliError(f"{flag}: {wrong or text!r} not among {','.join(allowed)}")
    return list(dict.fromkeys(chosen))
