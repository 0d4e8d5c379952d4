"""Purge means gone: after `forget(..., purge=True)` returns, no byte of the feedback's text is under the home,
while the judge is still open: not in the write-ahead log, not in the feedback graph's review threads,
not in a guideline that took its words. And a purge can always be run again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from langgraph.types import Command

from fakes import BagOfWordsEmbeddings, ScriptedChatModel
from memalign_graph import Feedback, MemAlignJudge

SECRET = "Zanzibar-patient-4471"
# Two rationales that differ only in the secret: the second merges into the first's guideline (their
# embeddings are near-identical), which keeps the first's wording, secret included.
SHARED = "answer false when the text mentions billed and keep every invoice question short polite and exact " * 3
PRIVATE_RATIONALE = f"{SHARED}never repeat {SECRET}"
PUBLIC_RATIONALE = f"{SHARED}never repeat it"


def copies_on_disk(home: Path, text: str) -> list[str]:
    """Every file under the home whose bytes contain `text` (checkpoints, their logs, Qdrant, anything)."""
    needle = text.encode("utf-8")
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and needle in p.read_bytes())


def open_judge(home: Path, tone_spec) -> MemAlignJudge:
    return MemAlignJudge(tone_spec, ScriptedChatModel(), embeddings=BagOfWordsEmbeddings(), home=home)


def seed(judge: MemAlignJudge) -> None:
    judge.align(
        [
            Feedback(
                id="private",
                inputs=f"My record is {SECRET}, why was I billed?",
                value=False,
                outputs="Paid.",
                rationale=PRIVATE_RATIONALE,
            )
        ]
    )
    judge.align(
        [
            Feedback(
                id="public", inputs="Why was I billed twice?", outputs="Paid.", value=False, rationale=PUBLIC_RATIONALE
            )
        ]
    )
    # An expert's review of the private example, left on a thread of its own in the same file.
    config = {"configurable": {"thread_id": "review-private"}}
    judge.feedback_graph.invoke({"inputs": f"My record is {SECRET}, why was I billed?", "outputs": "Paid."}, config)
    judge.feedback_graph.invoke(Command(resume={"action": "accept"}), config)


@pytest.mark.parametrize("engine", ["local", "edge"])
def test_purge_erases_the_text_everywhere_while_the_judge_stays_open(
    tmp_path: Path, tone_spec, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the text stayed in semantic.sqlite-wal, in the review thread, and in the merged guideline.
    On Qdrant's embedded engine, episodes stay in its segments and write-ahead log until it is rewritten."""
    if engine == "edge":
        pytest.importorskip("qdrant_edge", reason="the edge extra is not installed")
    monkeypatch.setenv("MEMALIGN_EPISODIC_ENGINE", engine)
    monkeypatch.delenv("MEMALIGN_QDRANT_URL", raising=False)
    with open_judge(tmp_path, tone_spec) as judge:
        seed(judge)
        [merged] = judge.guidelines()
        assert SECRET in merged["text"] and merged["feedback_ids"] == ["private", "public"]
        asyncio.run(judge.ajudge(inputs="Why was I billed?", outputs="Paid."))  # an async reader is open too
        assert copies_on_disk(tmp_path, SECRET)

        report = judge.forget(["private"], purge=True)

        assert report["forgotten"] == ["private"]
        assert report["guidelines_redistilled"] == [merged["id"]] and merged["id"] in report["guidelines_removed"]
        assert report["distilled"] == ["public"]  # the guideline's other feedback is distilled again
        assert [g["text"] for g in judge.guidelines()] == [PUBLIC_RATIONALE.strip()]
        assert copies_on_disk(tmp_path, SECRET) == []  # the judge is still open
        assert judge.verify().ok and len(judge.history()) == 1
        assert judge.memory.ledger().keys() == {"public"}
        assert judge.judge(inputs="Why was I billed?", outputs="Paid.")["score"] is False  # memory still works
    with open_judge(tmp_path, tone_spec) as reopened:
        assert reopened.memory.ledger().keys() == {"public"}
        assert reopened.episodic_store.feedback_ids("support_tone", "default") == {"public"}


def test_forget_without_purge_keeps_what_a_rollback_needs(tmp_path: Path, tone_spec) -> None:
    with open_judge(tmp_path, tone_spec) as judge:
        seed(judge)
        report = judge.forget(["private"])
        assert report["guidelines_redistilled"] == []
        assert judge.episodic_store.feedback_ids("support_tone", "default") == {"public"}
        assert len(judge.history()) == 3
    assert "semantic.sqlite" in copies_on_disk(tmp_path, SECRET)  # earlier versions still hold it


def test_a_purge_of_an_id_already_forgotten_runs_again(tmp_path: Path, tone_spec) -> None:
    """Before: an interrupted purge could not be finished, the id being already gone from memory."""
    with open_judge(tmp_path, tone_spec) as judge:
        seed(judge)
        judge.forget(["private"])  # forgotten, but history (and the review thread) still hold the text
        assert copies_on_disk(tmp_path, SECRET)
        report = judge.forget(["private"], purge=True)
        assert report["forgotten"] == [] and copies_on_disk(tmp_path, SECRET) == []
        assert judge.memory.ledger().keys() == {"public"} and judge.verify().ok
