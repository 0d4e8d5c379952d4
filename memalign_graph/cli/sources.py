"""`memalign align --from-mlflow` / `--from-langsmith`: feedback read from where experts left it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from memalign_graph.cli.common import CliError

if TYPE_CHECKING:
    from memalign_graph.feedback import Feedback
    from memalign_graph.spec import JudgeSpec

EXAMPLES = """  memalign align --from-mlflow support-bot --assessment polite --spec judge.yaml
  memalign align --from-langsmith support-bot --key polite --judge polite   (LANGSMITH_API_KEY, LANGSMITH_ENDPOINT)"""


def add_source_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("feedback from an evaluation tool, instead of FILE")
    group.add_argument(
        "--from-mlflow",
        metavar="EXPERIMENT",
        help="MLflow experiment names or ids (comma-separated): HUMAN assessments",
    )
    group.add_argument("--assessment", metavar="NAME", help="the assessment name (default: the judge's name)")
    group.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking store (default: $MLFLOW_TRACKING_URI)")
    group.add_argument("--from-langsmith", metavar="PROJECT", help="a LangSmith tracing project: feedback on its runs")
    group.add_argument("--key", metavar="KEY", help="the LangSmith feedback key (default: the judge's name)")


def chosen_source(args: argparse.Namespace) -> str | None:
    """Which source the command line names: a file, mlflow or langsmith; exactly one of them."""
    named = [
        name
        for name, given in (("file", args.file), ("mlflow", args.from_mlflow), ("langsmith", args.from_langsmith))
        if given
    ]
    if len(named) != 1:
        raise CliError(
            "align: give one source of feedback: FILE, --from-mlflow EXPERIMENT or --from-langsmith PROJECT"
            + (f" (got {', '.join(named)})" if named else "")
        )
    if args.assessment and not args.from_mlflow or args.key and not args.from_langsmith:
        raise CliError("align: --assessment goes with --from-mlflow, --key with --from-langsmith")
    return None if named[0] == "file" else named[0]


def read_source(args: argparse.Namespace, spec: JudgeSpec, source: str) -> tuple[list[Feedback], str]:
    """The feedback the named tool holds for this judge, and where it came from in words."""
    from memalign_graph.sources import from_langsmith, from_mlflow

    if source == "mlflow":
        experiments = _mlflow_experiments(args.from_mlflow, args.tracking_uri)
        name = args.assessment or spec.name
        feedback = from_mlflow(
            experiment_ids=experiments, assessment_name=name, tracking_uri=args.tracking_uri, spec=spec
        )
        return feedback, f"MLflow experiment {args.from_mlflow} (assessment {name!r})"
    from langsmith import Client

    key = args.key or spec.name
    feedback = from_langsmith(Client(), project_name=args.from_langsmith, feedback_key=key, spec=spec)
    return feedback, f"LangSmith project {args.from_langsmith} (feedback key {key!r})"


def _mlflow_experiments(names: str, tracking_uri: str | None) -> list[str]:
    """Experiment ids from names or ids, each checked, so a typo is one line and not an empty import."""
    from memalign_graph.sources.mlflow_traces import require

    require("mlflow", "mlflow")
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri)
    ids = []
    for item in (part.strip() for part in names.split(",") if part.strip()):
        found = client.get_experiment_by_name(item)
        if found is None and item.isdigit():
            try:
                found = client.get_experiment(item)
            except MlflowException:
                found = None
        if found is None:
            raise CliError(f"--from-mlflow: no experiment {item!r} in the tracking store; give its name or id")
        ids.append(str(found.experiment_id))
    return ids
