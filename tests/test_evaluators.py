"""The judge in the evaluation tools: real `langsmith.evaluate` / `aevaluate` / `evaluate_comparative`
and openevals, offline, for all four output types.

Before: a categorical or pairwise verdict put its label in `score`, which LangSmith's `EvaluationResult`
refuses, and `reference_outputs` was silently dropped.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langsmith import Client, aevaluate, evaluate
from langsmith.evaluation import evaluate_comparative
from langsmith.evaluation.evaluator import ComparisonEvaluationResult, EvaluationResult
from langsmith.schemas import Example
from openevals.exact import exact_match

from fakes import ScriptedChatModel
from langsmith_server import langsmith_double
from memalign_graph import (
    Boolean,
    Categorical,
    InvalidValueError,
    JudgeSpec,
    Pairwise,
    QdrantEpisodicStore,
    Score,
    create_memalign_evaluator,
)

SPECS = {
    "boolean": JudgeSpec(name="polite", instructions="Is the reply polite?", output=Boolean()),
    "categorical": JudgeSpec(
        name="grounded",
        instructions="Is the answer supported by the reference?",
        output=Categorical(labels=("yes", "no")),
        fields=("inputs", "outputs", "expectations"),
    ),
    "score": JudgeSpec(name="helpful", instructions="How helpful is the reply?", output=Score(low=1, high=5)),
    "pairwise": JudgeSpec(name="better", instructions="Which reply is better?", output=Pairwise()),
}
VALUES = {"boolean": True, "categorical": "yes", "score": 4, "pairwise": "B"}


def answering(value: Any) -> ScriptedChatModel:
    return ScriptedChatModel(judge=lambda system, user: {"rationale": f"because {value}", "value": value})


@pytest.fixture
def backend() -> Iterator[dict[str, Any]]:
    """Memory only: these tests are about the evaluation tools, and the stores are tested elsewhere."""
    store = QdrantEpisodicStore()
    yield {"episodic_store": store, "checkpointer": InMemorySaver()}
    store.close()


@pytest.fixture(autouse=True)
def no_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def dataset(kind: str, n: int = 3) -> list[Example]:
    dataset_id = uuid.uuid4()
    reference = {"answer": "Paris is the capital."} if kind == "categorical" else None
    return [
        Example(id=uuid.uuid4(), dataset_id=dataset_id, inputs={"question": f"q{i}"}, outputs=reference)
        for i in range(n)
    ]


def target_for(kind: str):
    if kind == "pairwise":
        return lambda inputs: {"A": "short", "B": "a longer, kinder reply"}
    return lambda inputs: {"answer": f"about {inputs['question']}"}


@pytest.mark.parametrize("kind", list(SPECS))
def test_langsmith_evaluate_takes_every_output_type_offline(make_judge, kind: str) -> None:
    judge = make_judge(SPECS[kind], model=answering(VALUES[kind]))
    scores = {"categorical": {"yes": 1, "no": 0}}.get(kind)
    with langsmith_double() as double:
        client = Client(api_url=double.url, api_key="unused")
        results = evaluate(
            target_for(kind),
            data=dataset(kind),
            evaluators=[judge.as_evaluator(scores=scores)],
            upload_results=False,
            client=client,
        )
        rows = list(results)
        client.flush()  # what langsmith would upload in the background is sent now, to be seen
        assert {method for method, _ in double.requests} <= {"GET"}, double.requests  # nothing was written
    assert len(rows) == 3
    for row in rows:
        [result] = row["evaluation_results"]["results"]
        assert isinstance(result, EvaluationResult) and result.key == SPECS[kind].name
        assert result.comment == f"because {VALUES[kind]}"
        assert set(result.metadata or {}) >= {"guideline_ids", "episode_ids", "namespace"}
        expected_score = {"boolean": True, "categorical": 1, "score": 4, "pairwise": None}[kind]
        assert result.score == expected_score and type(result.score) is type(expected_score)
        assert result.value == (VALUES[kind] if kind in ("categorical", "pairwise") else None)


def test_a_label_in_score_is_what_langsmith_refuses(make_judge) -> None:
    """Why the evaluator moves labels to `value`: the verdict's own shape is not an EvaluationResult."""
    judge = make_judge(SPECS["pairwise"], model=answering("A"))
    verdict = judge.judge(inputs="q", outputs=["a", "b"])
    with pytest.raises(ValueError, match="score"):
        EvaluationResult(**verdict)
    assert EvaluationResult(**judge.as_evaluator()(inputs="q", outputs=["a", "b"])).value == "A"


def test_reference_outputs_reach_the_judge_as_expectations(make_judge) -> None:
    model = answering("yes")
    judge = make_judge(SPECS["categorical"], model=model)
    evaluator = judge.as_evaluator()
    evaluator(inputs={"question": "capital?"}, outputs={"answer": "Paris"}, reference_outputs={"ref": "Paris-1889"})
    assert "Paris-1889" in model.calls_of("verdict")[-1]["user"]
    # a judge that does not read expectations ignores the reference instead of failing on it
    plain = make_judge(SPECS["boolean"], model=answering(True)).as_evaluator()
    assert plain(inputs="q", outputs="a", reference_outputs={"ref": "x"})["score"] is True


def test_aevaluate_runs_the_async_evaluator(make_judge) -> None:
    judge = make_judge(SPECS["score"], model=answering(2))

    async def target(inputs: dict[str, Any]) -> dict[str, Any]:
        return {"answer": "ok"}

    async def run() -> list[Any]:
        with langsmith_double() as double:
            client = Client(api_url=double.url, api_key="unused")
            results = await aevaluate(
                target,
                data=dataset("score"),
                evaluators=[judge.as_async_evaluator()],
                upload_results=False,
                client=client,
            )
            return [row async for row in results]

    rows = asyncio.run(run())
    assert [row["evaluation_results"]["results"][0].score for row in rows] == [2, 2, 2]


def test_beside_openevals_evaluators_in_one_run(make_judge) -> None:
    """Our result has the shape openevals' own evaluators return, side by side in one experiment."""
    judge = make_judge(SPECS["boolean"], model=answering(False))
    data = [Example(id=uuid.uuid4(), dataset_id=uuid.uuid4(), inputs={"question": "q"}, outputs={"answer": "about q"})]
    with langsmith_double() as double:
        results = evaluate(
            target_for("boolean"),
            data=data,
            evaluators=[exact_match, judge.as_evaluator()],
            upload_results=False,
            client=Client(api_url=double.url, api_key="unused"),
        )
        [row] = list(results)
    by_key = {result.key: result for result in row["evaluation_results"]["results"]}
    assert by_key["exact_match"].score is True and by_key["polite"].score is False
    ours = judge.as_evaluator()(inputs={"question": "q"}, outputs={"answer": "about q"})
    theirs = exact_match(outputs={"a": 1}, reference_outputs={"a": 1})
    assert {"key", "score", "comment", "metadata"} <= set(ours) and set(theirs) <= set(ours) | {"source_run_id"}


def test_scores_must_map_every_label(make_judge) -> None:
    judge = make_judge(SPECS["categorical"], model=answering("yes"))
    with pytest.raises(InvalidValueError, match=r"map every label .* missing \['no'\]"):
        judge.as_evaluator(scores={"yes": 1})
    with pytest.raises(InvalidValueError, match="already a score"):
        make_judge(SPECS["score"]).as_evaluator(scores={"yes": 1})


def test_the_factory_opens_the_judge_from_configuration(tmp_path, embeddings) -> None:
    evaluator = create_memalign_evaluator(
        SPECS["pairwise"], answering("tie"), embeddings=embeddings, home=tmp_path, scores={"A": 1, "B": 0, "tie": 0.5}
    )
    result = evaluator(inputs="q", outputs={"A": "x", "B": "y"})
    assert result["value"] == "tie" and result["score"] == 0.5
    assert (tmp_path / "semantic.sqlite").exists()


# -- comparative ---------------------------------------------------------------------------------


def seeded_experiments(double: Any) -> tuple[str, str, dict[str, str]]:
    dataset_id = double.add_dataset("replies")
    first = double.add_project("prompt-v1", dataset_id=dataset_id)
    second = double.add_project("prompt-v2", dataset_id=dataset_id)
    runs = {}
    for question in ("refund?", "parcel?"):
        example = double.add_example(dataset_id, {"question": question}, {"answer": "reference"})
        runs[f"{question}:v1"] = double.add_run(first, {"question": question}, {"answer": "No."}, example_id=example)
        runs[f"{question}:v2"] = double.add_run(
            second, {"question": question}, {"answer": "Sorry! Done."}, example_id=example
        )
    return first, second, runs


def prefers_sorry(system: str, user: str) -> dict[str, Any]:
    """Prefers the reply that says sorry, wherever it is shown: a position-consistent judge."""
    before_apology = user.split("Judge this example:")[-1].split("Sorry! Done.")[0]
    return {"rationale": "the apology wins", "value": "B" if "No." in before_apology else "A"}


def test_evaluate_comparative_with_both_orders(make_judge) -> None:
    model = ScriptedChatModel(judge=prefers_sorry)
    judge = make_judge(SPECS["pairwise"], model=model)
    with langsmith_double() as double:
        first, second, runs = seeded_experiments(double)
        client = Client(api_url=double.url, api_key="unused")
        results = evaluate_comparative(
            (first, second),
            evaluators=[judge.as_comparative_evaluator(both_orders=True, output_key="answer")],
            client=client,
            max_concurrency=0,
        )
        rows = list(results)
        posted = {f["run_id"]: f for f in double.feedback.values() if f.get("comparative_experiment_id")}
    assert len(rows) == 2 and len(model.calls_of("verdict")) == 4  # two orders per example
    for question in ("refund?", "parcel?"):
        assert posted[runs[f"{question}:v2"]]["score"] == 1 and posted[runs[f"{question}:v1"]]["score"] == 0
        assert posted[runs[f"{question}:v2"]]["key"] == "better"


def test_a_position_dependent_verdict_scores_no_run(make_judge) -> None:
    judge = make_judge(SPECS["pairwise"], model=answering("A"))  # always the first shown: position bias
    evaluator = judge.as_comparative_evaluator(both_orders=True)
    example = Example(id=uuid.uuid4(), dataset_id=uuid.uuid4(), inputs={"question": "q"}, outputs={})
    runs = [_Run(outputs={"answer": "x"}), _Run(outputs={"answer": "y"})]
    result = ComparisonEvaluationResult(**evaluator(runs, example))
    assert set(result.scores.values()) == {None} and str(result.comment).startswith("position-dependent")
    one_order = judge.as_comparative_evaluator()(runs, example)
    assert list(one_order["scores"].values()) == [1, 0]


class _Run:
    def __init__(self, outputs: dict[str, Any]) -> None:
        self.id, self.inputs, self.outputs = uuid.uuid4(), {"question": "q"}, outputs
