"""Feedback from where experts leave it: MLflow assessments (a real SQLite tracking store), LangSmith
feedback (the real client against a loopback double of its API), openevals few-shot examples; and
verdicts written back to LangSmith. Importing twice changes nothing; a correction replaces its verdict.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langsmith import Client
from openevals.types import FewShotExample

import mlflow_store
from fakes import CountingEmbeddings, ScriptedChatModel
from langsmith_server import langsmith_double
from memalign_graph import Boolean, Categorical, InvalidValueError, JudgeSpec, MemAlignJudge, QdrantEpisodicStore
from memalign_graph.sources import from_langsmith, from_mlflow, from_openevals, to_langsmith

RULE = "Answer false when the text mentions cold."
POLITE = JudgeSpec(name="polite", instructions="Is the reply polite?", output=Boolean())
GROUNDED = JudgeSpec(
    name="grounded",
    instructions="Is the answer supported by the reference?",
    output=Categorical(labels=("yes", "no")),
    fields=("inputs", "outputs", "expectations"),
)


@pytest.fixture
def backend() -> Iterator[dict[str, Any]]:
    """Memory only: these tests are about the sources; the stores are tested elsewhere."""
    store = QdrantEpisodicStore()
    yield {"episodic_store": store, "checkpointer": InMemorySaver()}
    store.close()


# -- openevals -----------------------------------------------------------------------------------


def test_openevals_few_shot_examples_align_a_judge(make_judge) -> None:
    examples = [
        FewShotExample(inputs="refund?", outputs="Done. Cold reply.", score=False, reasoning=RULE),
        FewShotExample(inputs="parcel?", outputs="So sorry, it ships today!", score=True, reasoning=None),
    ]
    judge = make_judge(POLITE)
    first = judge.align(from_openevals(examples))
    assert len(first["added"]) == 2 and [g["text"] for g in judge.guidelines()] == [RULE]
    again = judge.align(from_openevals(examples))
    assert again["added"] == [] and sorted(again["unchanged"]) == sorted(first["added"])
    assert judge.judge(inputs="refund?", outputs="a cold answer")["score"] is False


def test_a_malformed_few_shot_example_is_one_line() -> None:
    with pytest.raises(InvalidValueError, match=r"openevals example 1: unknown keys \['label'\]"):
        from_openevals([{"inputs": "q", "score": True}, {"inputs": "q", "label": True}])


# -- MLflow ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(previous)


def experiment() -> str:
    return mlflow.create_experiment(f"support-{uuid.uuid4().hex[:8]}")


def test_mlflow_human_assessments_become_feedback(tracking_uri: str) -> None:
    exp = experiment()
    cold = mlflow_store.log_trace(exp, "refund?", "Done. Cold reply.")
    warm = mlflow_store.log_trace(exp, "parcel?", "So sorry!")
    mine = mlflow_store.log_feedback(cold, "polite", False, RULE, mlflow_store.human())
    mlflow_store.log_feedback(cold, "polite", True, "looks fine", mlflow_store.llm_judge())
    mlflow_store.log_feedback(warm, "polite", "yes", None, mlflow_store.human("bob"))
    mlflow_store.log_feedback(warm, "tone", "no", "another judge's", mlflow_store.human())
    mlflow.log_expectation(trace_id=warm, name="expected_response", value="Sorry, shipping today.")

    feedback = {f.id: f for f in from_mlflow(experiment_ids=[exp], assessment_name="polite", tracking_uri=tracking_uri)}
    assert (
        set(feedback) == {f"mlflow:{mine}", next(k for k in feedback if k != f"mlflow:{mine}")} and len(feedback) == 2
    )
    first = feedback[f"mlflow:{mine}"]
    assert (first.inputs, first.outputs, first.value, first.rationale) == (
        {"question": "refund?"},
        "Done. Cold reply.",
        False,
        RULE,
    )
    assert first.judge_verdict is True  # the LLM judge's assessment of the same name
    second = next(f for f in feedback.values() if f is not first)
    assert second.value == "yes" and second.expectations == {"expected_response": "Sorry, shipping today."}
    assert from_mlflow(experiment_ids=exp, assessment_name="polite", spec=POLITE)[1].expectations is None


def test_mlflow_feedback_aligns_and_a_correction_replaces_its_verdict(make_judge, tracking_uri: str) -> None:
    exp = experiment()
    trace = mlflow_store.log_trace(exp, "refund?", "Done. Cold reply.")
    first = mlflow_store.log_feedback(trace, "polite", True, None, mlflow_store.human())
    judge = make_judge(POLITE)

    def imported() -> list[Any]:
        return from_mlflow(experiment_ids=[exp], assessment_name="polite", tracking_uri=tracking_uri, spec=POLITE)

    assert judge.align(imported())["added"] == [f"mlflow:{first}"]
    assert judge.align(imported())["unchanged"] == [f"mlflow:{first}"]  # importing twice changes nothing
    versions = len(judge.history())
    mlflow.override_feedback(
        trace_id=trace, assessment_id=first, value=False, rationale=RULE, source=mlflow_store.human()
    )
    report = judge.align(imported())
    assert report["updated"] == [f"mlflow:{first}"] and len(judge.history()) == versions + 1
    assert judge.memory.ledger()[f"mlflow:{first}"]["value"] is False


# -- LangSmith -------------------------------------------------------------------------------------


def seeded_project(double: Any) -> dict[str, str]:
    project = double.add_project("support-bot")
    cold = double.add_run(project, {"question": "refund?"}, {"answer": "Done. Cold reply."})
    warm = double.add_run(project, {"question": "parcel?"}, {"answer": "So sorry!"})
    silent = double.add_run(project, {"question": "hi"}, {"answer": "hello"})
    ids = {
        "human": double.add_feedback(cold, "polite", source="app", score=0, comment=RULE),
        "judge": double.add_feedback(cold, "polite", source="model", score=1, comment="fine"),
        "corrected": double.add_feedback(
            warm, "polite", source="model", score=0, comment="curt", correction={"score": 1, "comment": "warm enough"}
        ),
        "uncorrected": double.add_feedback(silent, "polite", source="model", score=1),
        "other key": double.add_feedback(silent, "tone", source="app", score=1),
    }
    return {**ids, "cold run": cold, "warm run": warm}


def test_langsmith_feedback_and_corrections_become_feedback(make_judge) -> None:
    with langsmith_double() as double:
        ids = seeded_project(double)
        client = Client(api_url=double.url, api_key="unused")
        feedback = {f.id: f for f in from_langsmith(client, project_name="support-bot", feedback_key="polite")}
        fitted = from_langsmith(client, project_name="support-bot", feedback_key="polite", spec=POLITE)
        assert set(feedback) == {f"langsmith:{ids['human']}", f"langsmith:{ids['corrected']}"}
        human, corrected = feedback[f"langsmith:{ids['human']}"], feedback[f"langsmith:{ids['corrected']}"]
        assert (human.inputs, human.value, human.rationale, human.judge_verdict) == (
            {"question": "refund?"},
            0,
            RULE,
            1,
        )
        assert (corrected.value, corrected.rationale, corrected.judge_verdict) == (1, "warm enough", 0)

        judge = make_judge(POLITE)
        with pytest.raises(InvalidValueError, match="expected true or false"):  # 1/0 is no boolean by itself
            judge.align(feedback.values())
        assert {(f.value, f.judge_verdict) for f in fitted} == {(False, True), (True, False)}
        report = judge.align(fitted)
        assert len(report["added"]) == 2 and judge.memory.ledger()[human.id]["judge_was_wrong"] is True
        again = from_langsmith(client, project_name="support-bot", feedback_key="polite", spec=POLITE)
        assert judge.align(again)["added"] == []  # importing twice changes nothing

        verdict = judge.judge(inputs={"question": "refund?"}, outputs={"answer": "Done. Cold reply."})
        source_run = uuid.uuid4()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            [run] = client.list_runs(project_name="support-bot", run_ids=[ids["cold run"]])
        written = to_langsmith(client, run, verdict, source_run_id=source_run)
        stored = double.feedback[str(written)]
    assert stored["key"] == "polite" and stored["score"] is False and stored["comment"] == verdict["comment"]
    assert stored["feedback_source"]["type"] == "model" and stored["session_id"] == run.session_id.__str__()
    assert stored["feedback_source"]["metadata"]["__run"] == {"run_id": str(source_run)}  # langsmith's source_run_id
    assert stored["feedback_source"]["metadata"]["guideline_ids"] == verdict["metadata"]["guideline_ids"] != []


def test_langsmith_dataset_experiments_bring_their_reference_outputs(make_judge) -> None:
    with langsmith_double() as double:
        dataset = double.add_dataset("capitals")
        experiment_project = double.add_project("capitals-v1", dataset_id=dataset)
        example = double.add_example(dataset, {"question": "capital of France?"}, {"answer": "Paris"})
        run = double.add_run(
            experiment_project, {"question": "capital of France?"}, {"answer": "Lyon"}, example_id=example
        )
        double.add_feedback(run, "grounded", source="app", value="no", comment="contradicts the reference")
        client = Client(api_url=double.url, api_key="unused")
        [feedback] = from_langsmith(client, dataset_name="capitals", feedback_key="grounded")
        assert feedback.expectations == {"answer": "Paris"} and feedback.value == "no"
        verdict = make_judge(GROUNDED, model=ScriptedChatModel(judge=lambda s, u: {"rationale": "r", "value": "no"}))
        written = to_langsmith(
            client, run, verdict.judge(inputs="q", outputs="a", expectations="e"), scores={"yes": 1, "no": 0}
        )
        assert (double.feedback[str(written)]["value"], double.feedback[str(written)]["score"]) == ("no", 0)


def test_langsmith_needs_a_project_or_a_dataset() -> None:
    with langsmith_double() as double, pytest.raises(InvalidValueError, match="project_name= .* or dataset_name="):
        from_langsmith(Client(api_url=double.url, api_key="unused"), feedback_key="polite")


def test_the_mlflow_source_says_which_extra_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib.util

    from memalign_graph.errors import ConfigurationError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(ConfigurationError, match=r"pip install 'memalign-graph\[mlflow\]'"):
        from_mlflow(experiment_ids=["1"], assessment_name="polite", tracking_uri=f"sqlite:///{tmp_path}/x.db")
    assert MemAlignJudge  # the facade itself needs neither extra


# -- round trips: import -> align -> judge ---------------------------------------------------------


def test_round_trips_of_import_align_judge(make_judge, tracking_uri: str) -> None:
    """What each path costs in calls: the numbers the README gives (4 feedback, 2 with a rationale)."""
    examples = [
        FewShotExample(inputs=f"q{i}", outputs="a cold reply" if i % 2 else "sorry!", score=not i % 2, reasoning=None)
        for i in range(4)
    ]
    examples[1]["reasoning"], examples[3]["reasoning"] = RULE, "Answer true when the text mentions sorry."
    counts = {}
    for source in ("openevals", "langsmith", "mlflow"):
        model, embeddings = ScriptedChatModel(), CountingEmbeddings()
        judge = make_judge(POLITE.model_copy(update={"name": f"polite-{source}"}), model=model, embeddings=embeddings)
        requests = 0
        if source == "openevals":
            feedback = from_openevals(examples)
        elif source == "langsmith":
            with langsmith_double() as double:
                project = double.add_project("bot")
                for example in examples:
                    run = double.add_run(project, {"q": example["inputs"]}, {"a": example["outputs"]})
                    double.add_feedback(run, "polite", score=int(example["score"]), comment=example["reasoning"])
                client = Client(api_url=double.url, api_key="unused")
                feedback = from_langsmith(client, project_name="bot", feedback_key="polite", spec=POLITE)
                requests = sum(1 for _, path in double.requests if path != "/info")
        else:
            exp = experiment()
            for example in examples:
                trace = mlflow_store.log_trace(exp, str(example["inputs"]), str(example["outputs"]))
                source_of = mlflow_store.human()
                mlflow_store.log_feedback(trace, "polite", example["score"], example["reasoning"], source_of)
            feedback = from_mlflow(experiment_ids=[exp], assessment_name="polite", tracking_uri=tracking_uri)
        report = judge.align(feedback)
        aligned = (len(model.calls), embeddings.calls)
        judge.judge(inputs="q9", outputs="a cold reply")
        counts[source] = {
            "import requests": requests,
            "align": aligned,
            "judge": (len(model.calls) - aligned[0], embeddings.calls - aligned[1]),
        }
        assert len(report["added"]) == 4 and len(judge.guidelines()) == 2
    # align: 1 distillation call (one batch of 4) and 1 evidence check of its drafts, 1 embedding call for
    # the episodes, 1 for the 2 guidelines; judge: 1 model call, 1 query embedding; LangSmith: read project,
    # runs, feedback (and no examples to read)
    expected = {"align": (2, 2), "judge": (1, 1)}
    assert counts == {
        "openevals": {"import requests": 0, **expected},
        "langsmith": {"import requests": 3, **expected},
        "mlflow": {"import requests": 0, **expected},
    }
