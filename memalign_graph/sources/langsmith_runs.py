"""LangSmith feedback as feedback here, and verdicts back to LangSmith as feedback on the judged run.

On a LangSmith run, feedback of one key comes from people (annotation queues, the UI, the API) or
from an evaluator (source type "model"). A person's feedback is an expert verdict: its value (or score)
and its comment as the rationale. An evaluator's feedback becomes expert feedback only when a person
corrected it: the correction is the value, and the evaluator's own score is the judge's verdict. The
run's inputs and outputs are the judged example; its dataset example's outputs are the expectations.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from memalign_graph.errors import InvalidValueError
from memalign_graph.evaluator_results import LabelScores
from memalign_graph.feedback import Feedback
from memalign_graph.records import Verdict, as_feedback
from memalign_graph.spec import Boolean, JudgeSpec

if TYPE_CHECKING:
    from langsmith import Client
    from langsmith.schemas import Feedback as LangSmithFeedback
    from langsmith.schemas import Run

BATCH = 100  # run ids per feedback or example query (they travel in the URL)
MODEL_SOURCE = "model"
_RATIONALE_KEYS = ("comment", "reasoning", "rationale", "explanation")


def from_langsmith(
    client: Client,
    *,
    project_name: str | None = None,
    dataset_name: str | None = None,
    feedback_key: str,
    spec: JudgeSpec | None = None,
) -> list[Feedback]:
    """Feedback from the root runs of a tracing project, or of every experiment on a dataset, that have
    feedback with key `feedback_key`; one feedback per expert's row (id `langsmith:<feedback id>`).

    With `spec`, only the fields that judge reads are kept, and for a boolean judge a score of 1 or 0
    (a thumbs up or down) is true or false.
    """
    if (project_name is None) == (dataset_name is None):
        raise InvalidValueError(
            "from_langsmith: name where the runs are: project_name= (a tracing project) or dataset_name= "
            "(the experiments on a dataset), one of them."
        )
    if dataset_name is not None:
        project_ids = [project.id for project in client.list_projects(reference_dataset_name=dataset_name)]
    else:
        project_ids = [client.read_project(project_name=project_name).id]
    if not project_ids:
        return []
    with warnings.catch_warnings():
        # list_runs is deprecated for a query API not in every langsmith release; evaluate_comparative uses it too.
        warnings.simplefilter("ignore", DeprecationWarning)
        runs = list(
            client.list_runs(project_id=project_ids, is_root=True, filter=f'eq(feedback_key, "{feedback_key}")')
        )
    rows: dict[str, list[LangSmithFeedback]] = {}
    for batch in _batches([run.id for run in runs]):
        for row in client.list_feedback(run_ids=batch, feedback_key=[feedback_key]):
            rows.setdefault(str(row.run_id), []).append(row)
    references = _references(client, runs)
    feedback = []
    for run in runs:
        fields = {
            "inputs": run.inputs,
            "outputs": run.outputs,
            "expectations": references.get(str(run.reference_example_id)),
        }
        if spec is not None:
            fields = {name: value for name, value in fields.items() if name in spec.fields}
        feedback.extend(_run_feedback(run, rows.get(str(run.id), []), fields, spec))
    return feedback


def _run_feedback(
    run: Run, rows: list[LangSmithFeedback], fields: Mapping[str, Any], spec: JudgeSpec | None
) -> list[Feedback]:
    by_model = sorted((r for r in rows if _source(r) == MODEL_SOURCE), key=lambda r: str(r.modified_at or ""))
    judge_verdict = _value(by_model[-1]) if by_model else None
    found = []
    for row in rows:
        if _source(row) == MODEL_SOURCE:
            correction = row.correction
            if correction is None:
                continue  # an evaluator's verdict nobody corrected is no expert's feedback
            corrected = correction if isinstance(correction, Mapping) else {"comment": correction}
            value = corrected.get("value", corrected.get("score"))
            rationale = next((corrected[key] for key in _RATIONALE_KEYS if corrected.get(key)), None)
            verdict = _value(row)
        else:
            value, rationale, verdict = _value(row), row.comment, judge_verdict
        if value is None and not (rationale or "").strip():
            continue
        record = {
            **fields,
            "id": f"langsmith:{row.id}",
            "value": _fitted(value, spec),
            "rationale": rationale,
            "judge_verdict": _fitted(verdict, spec),
        }
        found.append(as_feedback(record, where=f"langsmith run {run.id} feedback {row.id}"))
    return found


def to_langsmith(
    client: Client,
    run: Run | uuid.UUID | str,
    verdict: Verdict | Mapping[str, Any],
    *,
    scores: LabelScores | None = None,
    source_run_id: uuid.UUID | str | None = None,
) -> uuid.UUID:
    """Write a verdict back as feedback on the run it judged (source "model"); returns the feedback id.

    `run` is the run (as `client.list_runs` gives it: its project and start time travel along, which
    LangSmith asks of new feedback) or its id.

    A label (categorical, pairwise) is the feedback's value, with its score from `scores` if given.
    `source_run_id` is the judgment's own trace, when it was traced. The feedback's source metadata
    holds the judge, the namespace and the ids of the guidelines and episodes the verdict used.
    """
    label: Any = verdict.get("value", verdict["score"] if isinstance(verdict["score"], str) else None)
    score = scores.get(label) if scores is not None and label is not None else verdict.get("score")
    metadata = verdict.get("metadata") or {}
    run_id: uuid.UUID | str = run if isinstance(run, (uuid.UUID, str)) else run.id
    created = client.create_feedback(
        run_id,
        verdict["key"],
        session_id=getattr(run, "session_id", None),
        start_time=getattr(run, "start_time", None),
        score=None if isinstance(score, str) else score,
        value=label,
        comment=verdict.get("comment"),
        source_run_id=source_run_id,
        feedback_source_type=MODEL_SOURCE,
        source_info={name: metadata.get(name) for name in ("judge", "namespace", "guideline_ids", "episode_ids")},
    )
    return created.id


def _fitted(value: Any, spec: JudgeSpec | None) -> Any:
    """A thumbs up/down (score 1 or 0) as the true/false a boolean judge takes; anything else as it is."""
    if spec is not None and isinstance(spec.output, Boolean) and type(value) in (int, float) and value in (0, 1):
        return bool(value)
    return value


def _value(row: LangSmithFeedback) -> Any:
    return row.value if row.value is not None else row.score


def _source(row: LangSmithFeedback) -> str:
    source = row.feedback_source
    kind = getattr(source, "type", None) if source is not None else None
    return str(getattr(kind, "value", kind) or "")


def _references(client: Client, runs: Sequence[Run]) -> dict[str, Any]:
    """The outputs of the dataset examples the runs answered (their expectations), by example id."""
    ids = sorted({str(run.reference_example_id) for run in runs if run.reference_example_id})
    found = {}
    for batch in _batches(ids):
        for example in client.list_examples(example_ids=batch):
            found[str(example.id)] = example.outputs
    return found


def _batches(ids: Iterable[Any]) -> Iterable[list[Any]]:
    listed = list(ids)
    for start in range(0, len(listed), BATCH):
        yield listed[start : start + BATCH]
