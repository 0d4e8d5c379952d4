"""Export from the embedded stores, import into another configuration: the same working memory."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import pytest
from conftest import postgres_schema

from fakes import BagOfWordsEmbeddings, ScriptedChatModel
from memalign_graph import Boolean, Feedback, InvalidValueError, JudgeSpec, MemAlignJudge, QdrantEpisodicStore

EXAMPLE = {"inputs": "charged twice, refund?", "outputs": "Sorry! Refund sent."}


def seed(judge: MemAlignJudge) -> None:
    judge.align(
        [
            Feedback(
                id=f"f{n}",
                inputs=f"customer message {n} about refund",
                outputs=f"reply {n}",
                value=n % 2 == 0,
                judge_verdict=n % 3 == 0,
                rationale=f"Mind x{n}a x{n}b when refunds come up.",
            )
            for n in range(6)
        ]
    )


def working_memory(judge: MemAlignJudge, model: ScriptedChatModel) -> str:
    judge.judge(**EXAMPLE)
    call = model.calls_of("verdict")[-1]
    return call["system"] + "\n" + call["user"]


@pytest.mark.parametrize("target", ["sqlite", "postgres"])
def test_export_import_round_trip_keeps_working_memory_identical(tmp_path: Path, tone_spec, target: str) -> None:
    source_model = ScriptedChatModel()
    with MemAlignJudge(tone_spec, source_model, embeddings=BagOfWordsEmbeddings(), home=tmp_path / "a") as source:
        seed(source)
        before = working_memory(source, source_model)
        written = source.export_memory(tmp_path / "memory.json")
    assert written == {"guidelines": 6, "records": 6, "episodes": 6}

    def open_target(url: str | None) -> MemAlignJudge:
        return MemAlignJudge(tone_spec, target_model, embeddings=embeddings, home=tmp_path / "b", postgres_url=url)

    target_model, embeddings = ScriptedChatModel(), BagOfWordsEmbeddings()
    with ExitStack() as stack:
        url = stack.enter_context(postgres_schema()) if target == "postgres" else None
        copy = stack.enter_context(open_target(url))
        assert copy.import_memory(tmp_path / "memory.json") == written
        assert embeddings.embedded == []  # nothing re-embedded: vectors travel in the file
        assert working_memory(copy, target_model) == before
        versions = len(copy.history())
        copy.import_memory(tmp_path / "memory.json")  # idempotent
        assert len(copy.history()) == versions and copy.verify().ok
        assert copy.episodic_store.count("support_tone", "default") == 6


def test_import_refuses_another_judges_memory_and_bad_files(tmp_path: Path, tone_spec) -> None:
    with MemAlignJudge(tone_spec, ScriptedChatModel(), embeddings=BagOfWordsEmbeddings(), home=tmp_path / "a") as a:
        seed(a)
        a.export_memory(tmp_path / "memory.json")
    other = JudgeSpec(name="other", instructions="x", output=Boolean())
    with MemAlignJudge(
        other,
        ScriptedChatModel(),
        episodic_store=QdrantEpisodicStore(),
        embeddings=BagOfWordsEmbeddings(),
        home=tmp_path / "b",
    ) as b:
        with pytest.raises(InvalidValueError, match="holds judge 'support_tone'"):
            b.import_memory(tmp_path / "memory.json")
        (tmp_path / "bad.json").write_text(json.dumps({"format": "something else"}))
        with pytest.raises(InvalidValueError, match="not a memalign-graph memory export"):
            b.import_memory(tmp_path / "bad.json")
        assert b.history() == []


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda d, k: d["episodes"][k].update(vector=d["episodes"][k]["vector"][:-1]), "numbers where the others have"),
        (lambda d, k: d["episodes"][k].update(vector=[float("nan")] * 3), "holds a number that is not finite"),
        (lambda d, k: d["records"][k].update(value="maybe"), "value: expected true or false"),
        (lambda d, k: d["records"][k].update(inputs=""), "inputs: required by judge 'support_tone' but empty"),
        (lambda d, k: next(iter(d["guidelines"].values())).update(feedback_ids=["nobody"]), "cites feedback the file"),
        (lambda d, k: d["episodes"].update(stray={"text": "x", "vector": [1.0]}), "an episode without its feedback"),
    ],
)
def test_import_checks_what_it_imports_before_writing_anything(tmp_path: Path, tone_spec, damage, problem) -> None:
    """`memory import` validated nothing: one bad vector fixed the new collection's size wrongly and
    blocked every later alignment."""
    with MemAlignJudge(tone_spec, ScriptedChatModel(), embeddings=BagOfWordsEmbeddings(), home=tmp_path / "a") as a:
        seed(a)
        a.export_memory(tmp_path / "memory.json")
    document = json.loads((tmp_path / "memory.json").read_text())
    damage(document, sorted(document["episodes"])[0])
    (tmp_path / "damaged.json").write_text(json.dumps(document))
    with MemAlignJudge(tone_spec, ScriptedChatModel(), embeddings=BagOfWordsEmbeddings(), home=tmp_path / "b") as b:
        with pytest.raises(InvalidValueError, match=problem):
            b.import_memory(tmp_path / "damaged.json")
        assert b.history() == [] and b.episodic_store.count("support_tone", "default") == 0
        b.import_memory(tmp_path / "memory.json")  # the undamaged file still goes in
        assert b.verify().ok
