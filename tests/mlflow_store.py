"""A real MLflow tracking store for the tests: a SQLite file, no server, nothing sent anywhere.

Import this module before mlflow: it switches off MLflow's telemetry and asynchronous trace export
(a trace must be in the store before an assessment can be logged on it), and makes LiteLLM (which
MLflow's MemAlign uses) read its bundled model price map instead of fetching one.
"""

from __future__ import annotations

import os

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from typing import Any  # noqa: E402

import mlflow  # noqa: E402
from mlflow.entities import AssessmentSource, AssessmentSourceType  # noqa: E402


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
