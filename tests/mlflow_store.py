"""Traces and assessments in a real MLflow tracking store for the tests: a SQLite file, no server.

conftest.py switches off MLflow's telemetry and asynchronous trace export (an assessment needs its trace
in the store) before any test module imports mlflow.
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.entities import AssessmentSource, AssessmentSourceType


def human(name: str = "alice@example.com") -> AssessmentSource:
    return AssessmentSource(source_type=AssessmentSourceType.HUMAN, source_id=name)


def llm_judge() -> AssessmentSource:
    return AssessmentSource(source_type=AssessmentSourceType.LLM_JUDGE, source_id="openai:/gpt-4.1-mini")


def log_trace(experiment_id: str, question: str, answer: str) -> str:
    """One traced call of an app in the experiment: the root span's inputs and outputs; its trace id."""

    @mlflow.trace(name="support_bot")
    def support_bot(question: str) -> str:
        return answer

    mlflow.set_experiment(experiment_id=experiment_id)
    support_bot(question)
    trace_id = mlflow.get_last_active_trace_id()
    assert trace_id is not None
    return trace_id


def log_feedback(trace_id: str, name: str, value: Any, rationale: str | None, source: AssessmentSource) -> str:
    return str(
        mlflow.log_feedback(trace_id=trace_id, name=name, value=value, rationale=rationale, source=source).assessment_id
    )
