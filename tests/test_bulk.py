"""Aligning in chunks and judging many: idempotent re-runs, pending feedback retried, order kept."""

from __future__ import annotations

from langgraph.checkpoint.memory import InMemorySaver

from fakes import BagOfWordsEmbeddings, ScriptedChatModel
from memalign_graph import Boolean, Feedback, JudgeSpec, MemAlignJudge, QdrantEpisodicStore
from memalign_graph.bulk import align_in_chunks, judge_examples

SPEC = JudgeSpec(name="tone", instructions="Is the reply appropriate?", output=Boolean())
FEEDBACK = [
    Feedback(id=f"fb{i}", inputs=f"message {i}", outputs=f"reply {i}", value=i % 2 == 0, rationale=f"Rule {i}.")
    for i in range(5)
]


def open_judge(model: ScriptedChatModel) -> MemAlignJudge:
    return MemAlignJudge(
        SPEC,
        model,
        embeddings=BagOfWordsEmbeddings(),
        episodic_store=QdrantEpisodicStore(),
        checkpointer=InMemorySaver(),
    )


def test_chunks_become_versions_and_a_rerun_changes_nothing() -> None:
    model = ScriptedChatModel()
    with open_judge(model) as judge:
        done: list[int] = []
        report = align_in_chunks(judge, FEEDBACK, chunk_size=2, on_done=done.append)
        assert report["added"] == [f"fb{i}" for i in range(5)] and sum(done) == 5
        assert len(judge.history()) == 3 and len(model.calls_of("distilled_guidelines")) == 3
        again = align_in_chunks(judge, FEEDBACK, chunk_size=2)
        assert again["unchanged"] == [f"fb{i}" for i in range(5)] and not again["added"]
        assert len(judge.history()) == 3 and len(model.calls_of("distilled_guidelines")) == 3
        corrected = [FEEDBACK[0].model_copy(update={"value": False}), *FEEDBACK[1:]]
        assert align_in_chunks(judge, corrected)["updated"] == ["fb0"]


def test_pending_feedback_is_retried_on_the_next_run() -> None:
    failing = [RuntimeError("provider down")] * 3  # every attempt of the first run fails
    model = ScriptedChatModel(distill=[*failing, {"guidelines": [{"text": "Be kind.", "feedback_ids": ["fb0"]}]}])
    with open_judge(model) as judge:
        first = align_in_chunks(judge, FEEDBACK[:1])
        assert first["pending"] == ["fb0"] and "provider down" in first["failed_batches"][0]["error"]
        second = align_in_chunks(judge, FEEDBACK[:1])  # nothing new, but the pending item is distilled
        assert second["unchanged"] == ["fb0"] and second["distilled"] == ["fb0"] and not second["pending"]
        assert "fb0" in judge.memory.ledger() and not judge.memory.pending()
        assert [g["text"] for g in judge.guidelines()] == ["Be kind."]


def test_judging_many_keeps_order_and_returns_failures_in_place() -> None:
    model = ScriptedChatModel(judge=lambda system, user: {"rationale": "ok", "value": "x" if "oops" in user else True})
    with open_judge(model) as judge:
        examples = [
            {"inputs": "fine", "outputs": "a"},
            {"inputs": "oops", "outputs": "b"},
            {"inputs": "ok", "outputs": "c"},
        ]
        verdicts = judge_examples(judge, examples, max_concurrency=2)
    assert verdicts[0]["score"] is True and isinstance(verdicts[1], Exception) and verdicts[2]["score"] is True
