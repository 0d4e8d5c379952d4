"""Move a judge aligned by MLflow's MemAlign (`MemoryAugmentedJudge`) into a judge's memory here.

MLflow's judge runs the same algorithm: guidelines distilled from experts' feedback (semantic memory,
each with the traces it came from), and the feedback examples themselves (episodic memory, kept as
trace ids and rebuilt from the traces). The import reads the examples from their traces (the tracking
store must hold them, as MLflow's own judge needs it to), aligns them as episodes without distilling
again, and writes MLflow's guidelines as they are, their provenance mapped from trace ids to the
imported feedback ids. Importing the same judge again changes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypedDict

from memalign_graph.errors import InvalidValueError
from memalign_graph.feedback import Feedback
from memalign_graph.judge import MemAlignJudge
from memalign_graph.memory.guidelines import guideline_id
from memalign_graph.memory.ledger import NOTHING_OUTSTANDING, Outstanding, pack_vector
from memalign_graph.records import AlignmentReport, Dropped, Guideline
from memalign_graph.sources.mlflow_traces import require, trace_feedback


class MlflowJudgeImport(TypedDict):
    """What an import did: the alignment of the examples, the guidelines written, what was left out."""

    alignment: AlignmentReport
    guidelines: list[str]
    skipped_guidelines: list[Dropped]
    missing_traces: list[str]


def import_mlflow_judge(
    judge: MemAlignJudge, mlflow_judge: Any, *, tracking_uri: str | None = None
) -> MlflowJudgeImport:
    """Import an MLflow `MemoryAugmentedJudge`'s examples and guidelines into `judge`'s memory.

    Examples come from the judge's traces (HUMAN assessments named like the MLflow judge; when the MLflow
    judge holds its examples, exactly those assessments), with ids `mlflow:<assessment id>` as
    `from_mlflow` gives them. A guideline whose source traces gave no example here (or that MLflow keeps
    without sources) is skipped and reported: every guideline here is backed by feedback it can forget.
    """
    require("mlflow", "mlflow")
    from mlflow import MlflowClient

    trace_ids = list(dict.fromkeys(getattr(mlflow_judge, "_episodic_trace_ids", None) or []))
    semantic = getattr(mlflow_judge, "_semantic_memory", None)
    if semantic is None:
        raise InvalidValueError(
            f"import_mlflow_judge: {type(mlflow_judge).__name__} is not an aligned MLflow judge; pass the "
            "MemoryAugmentedJudge that judge.align(traces, MemAlignOptimizer()) returned (or Scorer.get())."
        )
    held = {getattr(example, "_assessment_id", None) for example in getattr(mlflow_judge, "_episodic_memory", [])}
    assessment_ids = {value for value in held if value} or None
    client = MlflowClient(tracking_uri=tracking_uri)
    by_trace: dict[str, list[Feedback]] = {}
    missing = []
    for trace_id in trace_ids:
        trace = _trace(client, trace_id)
        if trace is None:
            missing.append(trace_id)
            continue
        by_trace[trace_id] = trace_feedback(trace, mlflow_judge.name, spec=judge.spec, assessment_ids=assessment_ids)
    feedback = [item for items in by_trace.values() for item in items]
    with judge.memory.exclusive(judge.alignment_context):
        # Episodes only: MLflow distilled these examples already; its guidelines are written below.
        context = replace(judge.alignment_context, distill=False)
        report = judge.memory.align({"feedback": [item.as_input() for item in feedback]}, context=context)
        written, skipped = _write_guidelines(judge, semantic, by_trace, imported={f.feedback_id for f in feedback})
    return MlflowJudgeImport(alignment=report, guidelines=written, skipped_guidelines=skipped, missing_traces=missing)


def _write_guidelines(
    judge: MemAlignJudge, semantic: list[Any], by_trace: dict[str, list[Feedback]], *, imported: set[str]
) -> tuple[list[str], list[Dropped]]:
    values = judge.memory.values()
    guidelines: dict[str, Guideline] = dict(values.get("guidelines") or {})
    vectors: dict[str, str] = dict(values.get("guideline_vectors") or {})
    now = datetime.now(UTC).isoformat()
    written, skipped, new = [], [], []
    for item in semantic:
        text = str(item.guideline_text).strip()
        sources = item.source_trace_ids
        cited = sorted({f.feedback_id for t in sources or () for f in by_trace.get(str(t), [])})
        if not text or not cited:
            reason = "MLflow keeps it without source traces" if sources is None else "none of its traces gave feedback"
            skipped.append(Dropped(text=text, reason=reason))
            continue
        key = guideline_id(text)
        known = guidelines.get(key)
        if known is None:
            new.append(key)
            guidelines[key] = Guideline(id=key, text=text, feedback_ids=cited, created_at=now, updated_at=now)
        elif not set(cited) <= set(known["feedback_ids"]):
            guidelines[key] = {
                **known,
                "feedback_ids": sorted(set(known["feedback_ids"]) | set(cited)),
                "updated_at": now,
            }
        written.append(key)
    if new:
        embedded = judge.embeddings.embed_documents([guidelines[key]["text"] for key in new])
        vectors.update({key: pack_vector(vector) for key, vector in zip(new, embedded, strict=True)})
    outstanding: Outstanding = values.get("outstanding") or NOTHING_OUTSTANDING
    pending = [key for key in outstanding["distill"] if key not in imported]
    changed = guidelines != (values.get("guidelines") or {}) or pending != list(outstanding["distill"])
    if changed:
        judge.memory.write(
            {
                **values,
                "guidelines": guidelines,
                "guideline_vectors": vectors,
                "outstanding": Outstanding(distill=pending, episodes=list(outstanding["episodes"])),
            }
        )
    return written, skipped


def _trace(client: Any, trace_id: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_trace(trace_id)
    except MlflowException:
        return None
