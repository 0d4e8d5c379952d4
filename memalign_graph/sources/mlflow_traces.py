"""MLflow trace assessments as feedback: what experts record on traces, and MLflow's own MemAlign reads.

A HUMAN feedback assessment named like the judge is an expert's verdict on the trace: its value and
rationale, with the trace's root-span inputs and outputs (and its expectation assessments, when the
judge reads expectations). The latest LLM_JUDGE assessment of the same name on the trace is the
judge's own verdict (`judge_verdict`), so the episode says whether the judge got it wrong.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from memalign_graph.errors import ConfigurationError
from memalign_graph.feedback import Feedback
from memalign_graph.records import as_feedback
from memalign_graph.spec import JudgeSpec

if TYPE_CHECKING:
    from mlflow.entities import Assessment, Trace

PAGE_SIZE = 200


def require(module: str, extra: str) -> None:
    """One line naming the extra to install, instead of an ImportError deep inside a source."""
    if importlib.util.find_spec(module) is None:
        raise ConfigurationError(f"{module} is not installed: pip install 'memalign-graph[{extra}]'.")


def from_mlflow(
    *,
    experiment_ids: Sequence[str] | str,
    assessment_name: str,
    tracking_uri: str | None = None,
    spec: JudgeSpec | None = None,
) -> list[Feedback]:
    """Feedback from the HUMAN assessments named `assessment_name` on the traces of these experiments.

    Each valid assessment is one feedback with id `mlflow:<assessment id>`; one that overrides another
    (`mlflow.override_feedback`) keeps the id of the first, so importing after a correction replaces the
    old verdict. `tracking_uri` defaults to MLflow's own (`MLFLOW_TRACKING_URI`). With `spec`, only the
    fields that judge reads are kept (traces often carry expectations a judge does not read).
    """
    require("mlflow", "mlflow")
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids)
    feedback = []
    for trace in _traces(client, ids):
        feedback.extend(trace_feedback(trace, assessment_name, spec=spec))
    return feedback


def trace_feedback(
    trace: Trace, assessment_name: str, *, spec: JudgeSpec | None = None, assessment_ids: set[str] | None = None
) -> list[Feedback]:
    """The experts' feedback one trace holds for this assessment name (only `assessment_ids`, when given)."""
    from mlflow.entities import AssessmentSourceType
    from mlflow.entities import Feedback as MlflowFeedback
    from mlflow.genai.utils.trace_utils import (
        extract_expectations_from_trace,
        extract_inputs_from_trace,
        extract_outputs_from_trace,
    )

    every = list(trace.info.assessments or [])
    by_id = {str(assessment.assessment_id): assessment for assessment in every}
    # (assessment, its value) for the valid feedback of this name that holds a value, not an error
    named = [
        (a, a.feedback.value)
        for a in every
        if a.name == assessment_name
        and isinstance(a, MlflowFeedback)
        and a.valid is not False
        and a.feedback is not None
        and a.feedback.error is None
    ]
    judged = [(a, value) for a, value in named if a.source.source_type == AssessmentSourceType.LLM_JUDGE]
    latest_judge = max(judged, key=lambda pair: pair[0].last_update_time_ms or 0, default=None)
    fields = {
        "inputs": extract_inputs_from_trace(trace),
        "outputs": extract_outputs_from_trace(trace),
        "expectations": extract_expectations_from_trace(trace),
    }
    if spec is not None:
        fields = {name: value for name, value in fields.items() if name in spec.fields}
    feedback = []
    for assessment, value in named:
        if assessment.source.source_type != AssessmentSourceType.HUMAN:
            continue
        if assessment_ids is not None and assessment.assessment_id not in assessment_ids:
            continue
        record = {
            **fields,
            "id": f"mlflow:{_first_of(assessment, by_id)}",
            "value": value,
            "rationale": assessment.rationale,
            "judge_verdict": latest_judge[1] if latest_judge is not None else None,
        }
        feedback.append(as_feedback(record, where=f"mlflow trace {trace.info.trace_id} {assessment.assessment_id}"))
    return feedback


def _first_of(assessment: Assessment, by_id: Mapping[str, Assessment]) -> str:
    """The id of the assessment a chain of overrides started from (a correction keeps the first one's id)."""
    seen = {assessment.assessment_id}
    while assessment.overrides and assessment.overrides in by_id and assessment.overrides not in seen:
        assessment = by_id[assessment.overrides]
        seen.add(assessment.assessment_id)
    return str(assessment.assessment_id)


def _traces(client: Any, experiment_ids: list[str]) -> Iterator[Trace]:
    token = None
    while True:
        page = client.search_traces(locations=experiment_ids, max_results=PAGE_SIZE, page_token=token)
        yield from page
        token = page.token
        if not token:
            return
