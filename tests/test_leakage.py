"""The leakage guard: an example memory holds is noticed (by id or content), and can be judged around it.

Before: `memalign judge` on the rows a judge was aligned on reported agreement 1.000, because every row
retrieved itself as its first episode, and nothing said so.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes import in_memory_judge
from memalign_graph import Categorical, Feedback, InvalidValueError, JudgeContext, JudgeSpec, MemAlignJudge
from memalign_graph.cli import main
from memalign_graph.judging.leakage import SelfCheck, content_id

ROOT = Path(__file__).resolve().parent.parent
HALUEVAL = ROOT / "examples" / "data" / "halueval_sample.jsonl"
HALUEVAL_SPEC = ROOT / "examples" / "judges" / "halueval.yaml"
SPEC = JudgeSpec(name="halu", instructions="Does it hallucinate?", output=Categorical(labels=("yes", "no")))
# The fake judge copies the expert's verdict of the nearest past example; with no example it says "yes".
ROWS = [
    ("row-1", "What is the capital of France?", "Paris is the capital of France.", "no"),
    ("row-2", "Who wrote Hamlet?", "Hamlet was written by Charles Dickens in 1850.", "yes"),
    ("row-3", "How tall is Everest?", "Everest is 8,849 metres tall.", "no"),
]


@pytest.fixture
def judge() -> Iterator[MemAlignJudge]:
    with in_memory_judge(SPEC) as opened:
        # value only: the fake distils rationales into guidelines; these tests are about episodes first
        opened.align([Feedback(id=i, inputs=q, outputs=a, value=v) for i, q, a, v in ROWS])
        yield opened


def test_an_example_in_memory_says_so_by_content_and_by_id(judge: MemAlignJudge) -> None:
    _, question, answer, _ = ROWS[0]
    by_content = judge.judge(inputs=question, outputs=answer)
    assert by_content["metadata"]["in_memory"] == ["row-1"]
    assert by_content["metadata"]["episode_ids"][0] == "row-1"  # it saw its own record: the leak
    by_id = judge.judge(inputs=question, outputs=answer, example_id="row-1")
    assert by_id["metadata"]["in_memory"] == ["row-1"]
    new = judge.judge(inputs="Who painted the Mona Lisa?", outputs="Leonardo da Vinci.", example_id="row-9")
    assert new["metadata"]["in_memory"] == [] and new["metadata"]["excluded_ids"] == []


def test_exclude_self_retrieves_around_the_example(judge: MemAlignJudge) -> None:
    _, question, answer, expert = ROWS[1]
    leaked = judge.judge(inputs=question, outputs=answer)
    assert leaked["score"] == expert  # copied from its own record
    guarded = judge.judge(inputs=question, outputs=answer, exclude_self=True)
    assert "row-2" not in guarded["metadata"]["episode_ids"]
    assert len(guarded["metadata"]["episode_ids"]) == 2  # the other two: k is filled around it
    assert guarded["metadata"]["in_memory"] == ["row-2"] and guarded["metadata"]["excluded_ids"] == ["row-2"]
    assert guarded["score"] == "no"  # what the rest of memory suggests, not the expert's own answer


def test_the_same_content_under_another_id_is_excluded_too(judge: MemAlignJudge) -> None:
    _, question, answer, _ = ROWS[0]
    verdict = judge.judge(inputs=question, outputs=answer, example_id="another-id", exclude_self=True)
    assert "row-1" not in verdict["metadata"]["episode_ids"]
    assert verdict["metadata"]["in_memory"] == ["row-1"]


def test_exclude_ids_leaves_out_any_record_and_guidelines_only_it_supports() -> None:
    with in_memory_judge(SPEC) as judge:
        judge.align([Feedback(id=i, inputs=q, outputs=a, value=v, rationale=f"Rule of {i}.") for i, q, a, v in ROWS])
        assert len(judge.guidelines()) == 3
        verdict = judge.judge(inputs="Who painted the Mona Lisa?", outputs="Leonardo.", exclude_ids=["row-3"])
        assert "row-3" not in verdict["metadata"]["episode_ids"]
        assert len(verdict["metadata"]["episode_ids"]) == 2
        shown = {g["id"] for g in judge.guidelines() if g["feedback_ids"] != ["row-3"]}
        assert set(verdict["metadata"]["guideline_ids"]) == shown
        assert verdict["metadata"]["excluded_ids"] == ["row-3"]


def test_batch_and_async_judging_take_the_guard(judge: MemAlignJudge) -> None:
    examples: list[dict[str, Any]] = [
        {"inputs": q, "outputs": a, "example_id": i, "exclude_self": True} for i, q, a, _ in ROWS
    ]
    verdicts = judge.batch(examples)
    for (row_id, *_), verdict in zip(ROWS, verdicts, strict=True):
        assert isinstance(verdict, dict)
        assert row_id not in verdict["metadata"]["episode_ids"] and verdict["metadata"]["in_memory"] == [row_id]
    _, question, answer, _ = ROWS[2]
    verdict = asyncio.run(judge.ajudge(inputs=question, outputs=answer, exclude_self=True))
    assert "row-3" not in verdict["metadata"]["episode_ids"]


def test_one_batch_takes_one_exclude_self(judge: MemAlignJudge) -> None:
    examples = [{"inputs": "q", "outputs": "a", "exclude_self": True}, {"inputs": "q", "outputs": "b"}]
    judge.batch(examples)  # unset means the run's setting
    with pytest.raises(InvalidValueError, match="exclude_self differs between examples"):
        judge.batch([*examples, {"inputs": "q", "outputs": "c", "exclude_self": False}])


def test_a_run_wide_setting_excludes_self_for_every_judgment() -> None:
    with in_memory_judge(SPEC, judge_context=JudgeContext(exclude_self=True)) as judge:
        judge.align([Feedback(id=i, inputs=q, outputs=a, value=v) for i, q, a, v in ROWS])
        verdict = judge.judge(inputs=ROWS[0][1], outputs=ROWS[0][2])
        assert verdict["metadata"]["excluded_ids"] == ["row-1"]
        assert judge.judge(inputs=ROWS[0][1], outputs=ROWS[0][2], exclude_self=False)["metadata"]["excluded_ids"] == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"exclude_ids": "row-1"}, "exclude_ids: 'row-1' must be a list"),
        ({"example_id": 7}, "example_id: 7 is not an id"),
        ({"exclude_self": "yes"}, "exclude_self: 'yes' must be true or false"),
    ],
)
def test_bad_guard_options_name_the_option(judge: MemAlignJudge, options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        judge.judge(inputs="q", outputs="a", **options)


def test_the_search_widens_until_k_remain_after_exclusion() -> None:
    episodes = [_episode(f"fb-{n}", f"text {n}") for n in range(10)]
    limits: list[int] = []

    def search(limit: int) -> list[Any]:
        limits.append(limit)
        return episodes[:limit]

    guard = SelfCheck.of({"inputs": "x"}, given_id=None, exclude_ids=[f"fb-{n}" for n in range(6)], exclude_self=True)
    kept, _ = guard.search(search, 3)
    assert [e["feedback_id"] for e in kept] == ["fb-6", "fb-7", "fb-8"]
    assert limits == [11]
    guard = SelfCheck.of({"inputs": "x"}, given_id=None, exclude_ids=[], exclude_self=False)
    kept, _ = guard.search(search, 3)
    assert limits[-1] == 3 and len(kept) == 3  # nothing excluded: the plain top-k, no wider search


def test_content_id_matches_the_id_feedback_gets_from_its_content() -> None:
    feedback = Feedback(inputs="q", outputs="a", value="yes")
    assert content_id({"inputs": "q", "outputs": "a"}) == feedback.feedback_id


def _episode(feedback_id: str, text: str) -> Any:
    return {
        "feedback_id": feedback_id,
        "inputs": text,
        "outputs": None,
        "expectations": None,
        "value": "yes",
        "rationale": None,
        "judge_verdict": None,
        "judge_was_wrong": None,
        "similarity": 1.0,
    }


def test_the_command_warns_of_rows_in_memory_and_judges_around_them(tmp_path: Path, capsys) -> None:
    home = ["--home", str(tmp_path / "home"), "--model", "fake", "--embeddings", "fake", "--no-progress"]
    assert main(["align", str(HALUEVAL), "--spec", str(HALUEVAL_SPEC), *home]) == 0
    capsys.readouterr()
    assert (
        main(["judge", str(HALUEVAL), "--judge", "halueval_hallucination", "-o", str(tmp_path / "v.jsonl"), *home]) == 0
    )
    err = capsys.readouterr().err
    assert "exact_match 1.000" in err  # every row copied its own expert verdict ...
    assert "warning: 40 of 40 rows are in judge halueval_hallucination's memory by id or content" in err  # ... said
    rows = [json.loads(line) for line in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert all(row["verdict"]["metadata"]["in_memory"] == [row["id"]] for row in rows)

    out = tmp_path / "v2.jsonl"
    assert (
        main(["judge", str(HALUEVAL), "--judge", "halueval_hallucination", "-o", str(out), "--exclude-self", *home])
        == 0
    )
    err = capsys.readouterr().err
    assert "warning" not in err and "--exclude-self judged them around their own records" in err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(row["id"] not in row["verdict"]["metadata"]["episode_ids"] for row in rows)
    assert "exact_match 1.000" not in err
