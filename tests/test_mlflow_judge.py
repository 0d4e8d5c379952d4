"""A judge aligned by MLflow's own MemAlignOptimizer (against a loopback OpenAI-compatible mock, through
LiteLLM and DSPy as MLflow runs it) moves into a judge's memory here: its guidelines with their provenance,
its examples as episodes; nothing is distilled again, and importing twice changes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import mlflow
import pytest
from langgraph.checkpoint.memory import InMemorySaver
from mlflow.genai.judges import make_judge
from mlflow.genai.judges.optimizers import MemAlignOptimizer
from mlflow.genai.judges.optimizers.memalign.utils import Guideline as MlflowGuideline

import mlflow_store
from fakes import CountingEmbeddings, ScriptedChatModel
from memalign_graph import Boolean, JudgeSpec, QdrantEpisodicStore
from memalign_graph.sources import from_mlflow, import_mlflow_judge
from openai_server import openai_compatible_server, scripted_policy

POLITE = JudgeSpec(name="polite", instructions="Is the reply polite?", output=Boolean())
COLD = "Answer false when the text mentions cold."
SORRY = "Answer true when the text mentions sorry."
RECORD = re.compile(r'"id": (\d+),(.*?)\n\}', re.DOTALL)


def mlflow_distiller(kind: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """MLflow's distillation prompt answered as a model would: each example's rationale, cited by its id."""
    if kind != "Guidelines":
        return scripted_policy(kind, messages)
    prompt = str(messages[-1]["content"])
    guidelines = []
    for ref, record in RECORD.findall(prompt):
        rationale = re.search(r'"rationale": "(.*)",', record)
        if rationale and rationale.group(1):
            guidelines.append({"guideline_text": rationale.group(1), "source_trace_ids": [int(ref)]})
    return {"guidelines": guidelines}


@pytest.fixture
def backend() -> Iterator[dict[str, Any]]:
    store = QdrantEpisodicStore()
    yield {"episodic_store": store, "checkpointer": InMemorySaver()}
    store.close()


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(previous)


@pytest.fixture
def mock_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    import dspy

    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)  # every call reaches the mock
    with openai_compatible_server(mlflow_distiller) as (url, requests):
        for name in ("OPENAI_BASE_URL", "OPENAI_API_BASE"):
            monkeypatch.setenv(name, url)
        monkeypatch.setenv("OPENAI_API_KEY", "unused")
        yield requests


def aligned_mlflow_judge(tracking_uri: str) -> tuple[Any, str, list[str]]:
    """Two traces with an expert's verdict each, aligned by MLflow's MemAlignOptimizer."""
    experiment = mlflow.create_experiment("support")
    traces = {
        mlflow_store.log_trace(experiment, "refund?", "Done. Cold reply."): (False, COLD),
        mlflow_store.log_trace(experiment, "parcel?", "So sorry, it ships today!"): (True, SORRY),
    }
    assessments = [
        mlflow_store.log_feedback(trace, "polite", value, rationale, mlflow_store.human())
        for trace, (value, rationale) in traces.items()
    ]
    judge = make_judge(
        name="polite",
        instructions="Is the reply in {{ outputs }} polite, given {{ inputs }}?",
        feedback_value_type=bool,
        model="openai:/mock-judge",
    )
    optimizer = MemAlignOptimizer(reflection_lm="openai:/mock-judge", embedding_model="openai:/text-embedding-3-small")
    found = mlflow.search_traces(locations=[experiment], return_type="list")
    return judge.align(traces=found, optimizer=optimizer), experiment, assessments


def test_a_judge_aligned_by_mlflow_memalign_moves_here(make_judge, tracking_uri, mock_model) -> None:
    mlflow_judge, experiment, assessments = aligned_mlflow_judge(tracking_uri)
    mlflow_calls = {kind: sum(1 for r in mock_model if kind in r) for kind in ("messages", "input")}
    assert sorted(g.guideline_text for g in mlflow_judge._semantic_memory) == [COLD, SORRY]
    mlflow_judge._semantic_memory.append(MlflowGuideline(guideline_text="Be brief.", source_trace_ids=None))

    model, embeddings = ScriptedChatModel(), CountingEmbeddings()
    judge = make_judge(POLITE, model=model, embeddings=embeddings)
    imported = import_mlflow_judge(judge, mlflow_judge, tracking_uri=tracking_uri)

    ids = [f"mlflow:{a}" for a in assessments]
    assert sorted(imported["alignment"]["added"]) == sorted(ids) and imported["missing_traces"] == []
    guidelines = {g["text"]: g["feedback_ids"] for g in judge.guidelines()}
    assert guidelines == {COLD: [ids[0]], SORRY: [ids[1]]}  # provenance: trace ids -> the feedback ids here
    assert imported["skipped_guidelines"] == [{"text": "Be brief.", "reason": "MLflow keeps it without source traces"}]
    assert judge.memory.pending() == []  # MLflow distilled them: nothing is owed to our distillation
    # round trips of the import: no model call; one embedding call for the episodes, one for the guidelines
    assert (len(model.calls), embeddings.calls) == (0, 2)
    assert mlflow_calls == {"messages": 1, "input": 1}  # MLflow's own alignment: 1 distillation, 1 embedding

    versions = len(judge.history())
    again = import_mlflow_judge(judge, mlflow_judge, tracking_uri=tracking_uri)
    assert again["alignment"]["added"] == [] and len(judge.history()) == versions  # twice changes nothing
    # the same experts' feedback read straight from the traces has the same ids: nothing new either
    direct = from_mlflow(experiment_ids=[experiment], assessment_name="polite", tracking_uri=tracking_uri, spec=POLITE)
    assert judge.align(direct)["added"] == [] and len(judge.history()) == versions

    verdict = judge.judge(inputs={"question": "refund?"}, outputs="A cold answer.")
    assert verdict["score"] is False and verdict["metadata"]["guideline_ids"]  # the imported guideline decided
    assert len(model.calls) == 1 and embeddings.calls == 3  # a judgment: one model call, one query embedding


def test_an_unaligned_object_is_refused_in_one_line(make_judge) -> None:
    from memalign_graph import InvalidValueError

    with pytest.raises(InvalidValueError, match="is not an aligned MLflow judge; pass the MemoryAugmentedJudge"):
        import_mlflow_judge(make_judge(POLITE), json.loads("{}"))
