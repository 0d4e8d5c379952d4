"""Forgetting, overwriting and rolling back: memory derived from a record follows the record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memalign_graph import Boolean, Feedback, InvalidValueError, JudgeSpec, MemAlignJudge

RULE_SORRY = "Answer true when the text mentions sorry."
RULE_REFUND = "Answer false when the text mentions refund."


def seeded(make_judge, spec):
    judge = make_judge(spec)
    judge.align(
        [
            Feedback(id="a", inputs="charged twice", outputs="Sorry, refunded.", value=True, rationale=RULE_SORRY),
            Feedback(id="b", inputs="late parcel", outputs="Sorry, shipping now.", value=True, rationale=RULE_SORRY),
            Feedback(id="c", inputs="refund?", outputs="Refund denied.", value=False, rationale=RULE_REFUND),
        ]
    )
    return judge


def texts(judge: MemAlignJudge) -> dict[str, list[str]]:
    return {g["text"]: g["feedback_ids"] for g in judge.guidelines()}


def test_forget_removes_episode_and_provenance_and_orphans(make_judge, tone_spec) -> None:
    judge = seeded(make_judge, tone_spec)
    assert texts(judge) == {RULE_SORRY: ["a", "b"], RULE_REFUND: ["c"]}
    report = judge.forget(["a", "c", "never-seen"])
    assert report["forgotten"] == ["a", "c"]
    assert texts(judge) == {RULE_SORRY: ["b"]}
    assert (
        report["guidelines_removed"] == [next(iter(report["guidelines_removed"]))]
        and len(report["guidelines_removed"]) == 1
    )
    assert judge.episodic_store.feedback_ids("support_tone", "default") == {"b"}
    verdict = judge.judge(inputs="refund?", outputs="Refund denied.")
    assert "c" not in verdict["metadata"]["episode_ids"]


def test_forget_is_idempotent(make_judge, tone_spec) -> None:
    judge = seeded(make_judge, tone_spec)
    judge.forget(["c"])
    again = judge.forget(["c"])
    assert again["forgotten"] == [] and texts(judge) == {RULE_SORRY: ["a", "b"]}


def test_overwrite_replaces_the_episode_and_the_guidance_it_gave(make_judge, tone_spec) -> None:
    judge = seeded(make_judge, tone_spec)
    report = judge.align(
        [
            Feedback(
                id="c",
                inputs="refund?",
                outputs="Refund denied.",
                value=True,
                rationale="Answer true when the text mentions denied.",
            )
        ]
    )
    assert report["updated"] == ["c"] and report["added"] == []
    assert texts(judge) == {RULE_SORRY: ["a", "b"], "Answer true when the text mentions denied.": ["c"]}
    [episode] = [
        e
        for e in judge.episodic_store.search(
            "support_tone", "default", judge.embeddings.embed_query("refund?\n\nRefund denied."), 3
        )
        if e["feedback_id"] == "c"
    ]
    assert episode["value"] is True
    assert judge.episodic_store.count("support_tone", "default") == 3


def test_delete_a_guideline_by_id(make_judge, tone_spec) -> None:
    judge = seeded(make_judge, tone_spec)
    target = next(g["id"] for g in judge.guidelines() if g["text"] == RULE_REFUND)
    report = judge.forget_guidelines([target])
    assert report["guidelines_removed"] == [target] and texts(judge) == {RULE_SORRY: ["a", "b"]}
    assert judge.episodic_store.count("support_tone", "default") == 3  # episodes are untouched


def test_history_and_rollback_restore_both_memories(make_judge, tone_spec) -> None:
    judge = seeded(make_judge, tone_spec)
    before_forget = judge.history()[0]["checkpoint_id"]
    judge.forget(["c"])
    judge.align(
        [Feedback(id="d", inputs="hello", outputs="hi", value=True, rationale="Answer true when the text mentions hi.")]
    )
    assert [v["guidelines"] for v in judge.history()] == [2, 1, 2]
    judge.rollback(before_forget)
    assert texts(judge) == {RULE_SORRY: ["a", "b"], RULE_REFUND: ["c"]}
    assert judge.episodic_store.feedback_ids("support_tone", "default") == {"a", "b", "c"}
    assert len(judge.history()) == 4  # the rollback is a version of its own; nothing is erased
    assert judge.align(
        [Feedback(id="c", inputs="refund?", outputs="Refund denied.", value=False, rationale=RULE_REFUND)]
    )["unchanged"] == ["c"]


def test_two_judges_and_two_namespaces_share_stores_without_crossing(make_judge) -> None:
    spec_a = JudgeSpec(name="judge_a", instructions="A?", output=Boolean())
    spec_b = JudgeSpec(name="judge_b", instructions="B?", output=Boolean())
    judges = {
        ("judge_a", "team1"): make_judge(spec_a, namespace="team1"),
        ("judge_a", "team2"): make_judge(spec_a, namespace="team2"),
        ("judge_b", "team1"): make_judge(spec_b, namespace="team1"),
    }
    for (name, namespace), judge in judges.items():
        judge.align(
            [
                Feedback(
                    id="same-id",
                    inputs="shared question",
                    outputs="shared answer",
                    value=True,
                    rationale=f"Answer true when the text mentions {name}{namespace}.",
                )
            ]
        )
    for (name, namespace), judge in judges.items():
        [guideline] = judge.guidelines()
        assert guideline["text"] == f"Answer true when the text mentions {name}{namespace}."
        verdict = judge.judge(inputs="shared question", outputs="shared answer")
        assert verdict["metadata"]["namespace"] == namespace and verdict["metadata"]["episode_ids"] == ["same-id"]
    judges[("judge_a", "team1")].forget(["same-id"])
    assert judges[("judge_a", "team1")].guidelines() == []
    for key in [("judge_a", "team2"), ("judge_b", "team1")]:
        assert len(judges[key].guidelines()) == 1
        assert judges[key].episodic_store.feedback_ids(*key) == {"same-id"}


REOPEN = """
import json, sys
sys.path.insert(0, {tests!r})
from fakes import BagOfWordsEmbeddings, ScriptedChatModel
from memalign_graph import Boolean, Feedback, InvalidValueError, JudgeSpec, MemAlignJudge
spec = JudgeSpec(name="support_tone", instructions="ok?", output=Boolean())
with MemAlignJudge(spec, ScriptedChatModel(), embeddings=BagOfWordsEmbeddings(), home={home!r}) as judge:
    if sys.argv[1] == "align":
        judge.align([Feedback(id="a", inputs="q", outputs="sorry", value=True, rationale={rule!r})])
    print(json.dumps({{
        "guidelines": judge.guidelines(),
        "episodes": sorted(judge.episodic_store.feedback_ids("support_tone", "default")),
        "count": judge.episodic_store.count("support_tone", "default"),
        "versions": len(judge.history()),
        "verdict": judge.judge(inputs="q2", outputs="so sorry")["score"],
    }}))
"""


def test_reopening_the_same_paths_in_a_new_process_restores_exactly(tmp_path: Path) -> None:
    script = REOPEN.format(tests=str(Path(__file__).parent), home=str(tmp_path / "home"), rule=RULE_SORRY)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def run(mode: str) -> dict:
        done = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    first = run("align")
    second = run("read")
    third = run("align")  # the same feedback again: nothing duplicates, no version is written
    assert first["guidelines"] == second["guidelines"] == third["guidelines"]
    assert first["episodes"] == second["episodes"] == third["episodes"] == ["a"]
    assert third["count"] == 1 and first["verdict"] is second["verdict"] is True
    assert (first["versions"], second["versions"], third["versions"]) == (1, 1, 1)  # known feedback: no new version


def test_one_id_as_a_string_is_one_id_and_an_absent_id_is_a_no_op_that_says_so(tmp_path) -> None:
    """`forget("fb-1")` once iterated the characters and forgot nothing; the served graph's {"forget": "id"}
    did the same."""
    from langgraph.checkpoint.memory import InMemorySaver

    from memalign_graph import Boolean, Feedback, JudgeSpec, MemAlignJudge, memory_thread_id
    from memalign_graph.alignment.plan import request_ids

    spec = JudgeSpec(name="tone", instructions="ok?", output=Boolean())
    feedback = [Feedback(id=f"fb-{n}", inputs=f"q{n}", outputs="a", value=True, rationale="Be kind.") for n in (1, 2)]
    with MemAlignJudge(spec, "fake", embeddings="fake", home=tmp_path) as judge:
        judge.align(feedback)
        report = judge.forget("fb-1")
        assert report["forgotten"] == ["fb-1"] and report["not_found"] == []
        versions = len(judge.history())
        again = judge.forget(["fb-1", "fb-9"])
        assert again["forgotten"] == [] and again["not_found"] == ["fb-1", "fb-9"]
        assert len(judge.history()) == versions  # nothing changed, no version written
        assert sorted(judge.memory.ledger()) == ["fb-2"]

        served = judge.alignment_graph.copy(update={"checkpointer": InMemorySaver()})
        thread = {"configurable": {"thread_id": memory_thread_id("tone", "default")}}
        served.invoke({"feedback": [feedback[1].as_input()]}, thread)
        assert served.invoke({"forget": "fb-2"}, thread)["report"]["forgotten"] == ["fb-2"]
    with pytest.raises(InvalidValueError, match="forget: 3 is not an id or a list of ids"):
        request_ids(3, field="forget")
