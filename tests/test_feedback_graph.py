"""The feedback graph: an expert accepts or corrects a verdict through an interrupt, and the judge learns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from langgraph.types import Command
from pydantic import ValidationError

from fakes import BagOfWordsEmbeddings, ScriptedChatModel
from memalign_graph import MemAlignJudge
from memalign_graph.context import FeedbackContext

EXAMPLE = {"inputs": "Where is my parcel?", "outputs": "Sorry for the wait, it ships today."}
CORRECTION = {"action": "correct", "value": True, "rationale": "Answer true when the text mentions sorry."}


def start(judge: MemAlignJudge, thread: str, **context: object):
    config = {"configurable": {"thread_id": thread}}
    result = judge.feedback_graph.invoke(EXAMPLE, config, context=FeedbackContext(**context))
    return config, result


def test_interrupt_shows_the_verdict_and_the_memory_it_used(make_judge, tone_spec) -> None:
    judge = make_judge(tone_spec)
    judge.align(
        [
            {
                "id": "seed",
                "inputs": "Where is my order?",
                "outputs": "It ships.",
                "value": False,
                "rationale": "Answer false when the text mentions nothing.",
            }
        ]
    )
    config, result = start(judge, "t1")
    [pending] = result["__interrupt__"]
    assert pending.value["verdict"]["score"] is False
    assert [e["feedback_id"] for e in pending.value["memory_used"]["episodes"]] == ["seed"]
    assert pending.value["memory_used"]["guidelines"][0]["text"] == "Answer false when the text mentions nothing."
    assert pending.response_schema["properties"]["action"]["enum"] == ["accept", "correct"]


def test_a_correction_aligns_and_the_judge_changes_its_mind(make_judge, tone_spec) -> None:
    judge = make_judge(tone_spec)
    config, first = start(judge, "t2")
    assert first["verdict"]["score"] is False
    result = judge.feedback_graph.invoke(Command(resume=CORRECTION), config, context=FeedbackContext())
    assert result["updated_verdict"]["score"] is True
    assert len(result["alignment"]["added"]) == 1
    assert [g["text"] for g in judge.guidelines()] == [CORRECTION["rationale"]]
    assert judge.judge(**EXAMPLE)["score"] is True  # the facade sees the same memory


def test_accepting_records_nothing_unless_configured(make_judge, tone_spec) -> None:
    judge = make_judge(tone_spec)
    config, _ = start(judge, "t3")
    result = judge.feedback_graph.invoke(Command(resume={"action": "accept"}), config, context=FeedbackContext())
    assert result["review"]["action"] == "accept" and "alignment" not in result
    assert judge.episodic_store.count("support_tone", "default") == 0

    config, _ = start(judge, "t4", keep_confirmed_verdicts=True)
    context = FeedbackContext(keep_confirmed_verdicts=True)
    result = judge.feedback_graph.invoke(Command(resume={"action": "accept"}), config, context=context)
    assert result["alignment"]["added"] and judge.episodic_store.count("support_tone", "default") == 1
    [hit] = judge.episodic_store.search("support_tone", "default", judge.embeddings.embed_query("parcel"), 1)
    assert hit["value"] is False and hit["judge_was_wrong"] is False


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"action": "correct"}, "a correction needs value"),
        ({"action": "correct", "value": "maybe"}, "value: expected true or false"),
        ({"action": "approve"}, "action"),
        ({"action": "accept", "extra": 1}, "extra"),
    ],
)
def test_a_malformed_resume_is_refused_and_the_thread_keeps_waiting(make_judge, tone_spec, payload, message) -> None:
    judge = make_judge(tone_spec)
    config, _ = start(judge, "t5")
    with pytest.raises(ValidationError, match=message):
        judge.feedback_graph.invoke(Command(resume=payload), config, context=FeedbackContext())
    state = judge.feedback_graph.get_state(config)
    assert state.next == ("review",) and state.interrupts
    result = judge.feedback_graph.invoke(Command(resume=CORRECTION), config, context=FeedbackContext())
    assert result["updated_verdict"]["score"] is True


SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
from fakes import BagOfWordsEmbeddings, ScriptedChatModel
from langgraph.types import Command
from memalign_graph import Boolean, JudgeSpec, MemAlignJudge
spec = JudgeSpec(name="support_tone", instructions="ok?", output=Boolean())
config = {{"configurable": {{"thread_id": "review-1"}}}}
with MemAlignJudge(spec, ScriptedChatModel(), embeddings=BagOfWordsEmbeddings(), home={home!r}) as judge:
    if sys.argv[1] == "start":
        result = judge.feedback_graph.invoke({example!r}, config)
        print(json.dumps({{"waiting": bool(result.get("__interrupt__")), "score": result["verdict"]["score"]}}))
    else:
        result = judge.feedback_graph.invoke(Command(resume={correction!r}), config)
        print(json.dumps({{"score": result["updated_verdict"]["score"], "guidelines": len(judge.guidelines())}}))
"""


def test_the_expert_may_answer_after_a_process_restart(tmp_path: Path) -> None:
    script = SCRIPT.format(tests=str(Path(__file__).parent), home=str(tmp_path), example=EXAMPLE, correction=CORRECTION)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def run(step: str) -> dict:
        done = subprocess.run([sys.executable, "-c", script, step], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    assert run("start") == {"waiting": True, "score": False}
    assert run("resume") == {"score": True, "guidelines": 1}


def test_the_graph_is_served_as_a_plain_factory_output(tone_spec, tmp_path) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    from memalign_graph import QdrantEpisodicStore
    from memalign_graph.feedback_graph import create_feedback_graph

    saver = InMemorySaver()
    with QdrantEpisodicStore() as store:
        graph = create_feedback_graph(
            ScriptedChatModel(),
            spec=tone_spec,
            embeddings=BagOfWordsEmbeddings(),
            episodic_store=store,
            checkpointer=saver,
        )
        config = {"configurable": {"thread_id": "x"}}
        graph.invoke(EXAMPLE, config)
        result = graph.invoke(Command(resume=CORRECTION), config)
    assert result["updated_verdict"]["score"] is True  # memory read and written through the run's checkpointer


class FailingEmbeddings(BagOfWordsEmbeddings):
    """Embeds until told to fail: a crash inside an alignment, after its ledger changes, before its writes."""

    fail = False

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.fail:
            raise ConnectionError("embedding service went away")
        return super().embed_documents(texts)


def test_a_correction_goes_through_the_memory_owner(tmp_path: Path, tone_spec, monkeypatch) -> None:
    """Before: the feedback graph aligned on its own, without the cross-process lock the facade takes and
    without first finishing an alignment a crash had left: that alignment's feedback was never finished."""
    from memalign_graph.memory import locks

    held: list[Path] = []
    real_lock = locks.file_lock

    def recording_lock(path: Path):
        held.append(path)
        return real_lock(path)

    monkeypatch.setattr(locks, "file_lock", recording_lock)
    embeddings = FailingEmbeddings()
    with MemAlignJudge(tone_spec, ScriptedChatModel(), embeddings=embeddings, home=tmp_path) as judge:
        embeddings.fail = True
        with pytest.raises(ConnectionError):
            judge.align([{"id": "left", "inputs": "q", "outputs": "a", "value": True, "rationale": "Be brief."}])
        assert judge.verify().unfinished_run
        embeddings.fail = False
        held.clear()
        config, _ = start(judge, "review-after-crash")
        result = judge.feedback_graph.invoke(Command(resume=CORRECTION), config)
        assert held == [tmp_path / "locks" / f"{judge.thread_id}.lock"]  # the lock other processes respect
        assert result["updated_verdict"]["score"] is True
        assert "left" in judge.memory.ledger() and judge.verify().ok  # the crashed alignment was finished first
        assert judge.episodic_store.count("support_tone", "default") == 2
