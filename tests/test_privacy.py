"""Privacy deletion: forgetting removes a record everywhere, and `purge` removes it from history too."""

from __future__ import annotations

from pathlib import Path

from fakes import BagOfWordsEmbeddings, ScriptedChatModel
from memalign_graph import Feedback, MemAlignJudge

SECRET = "Zanzibar-patient-4471"


def copies_on_disk(home: Path, text: str) -> list[str]:
    """Every file under the judge's home whose bytes contain `text` (checkpoints, Qdrant, anything)."""
    needle = text.encode("utf-8")
    return sorted(
        str(path.relative_to(home)) for path in home.rglob("*") if path.is_file() and needle in path.read_bytes()
    )


def make(home: Path, tone_spec) -> MemAlignJudge:
    return MemAlignJudge(tone_spec, ScriptedChatModel(), embeddings=BagOfWordsEmbeddings(), home=home)


def seed(judge: MemAlignJudge) -> None:
    judge.align(
        [
            Feedback(
                id="private",
                inputs=f"My record is {SECRET}, why was I billed?",
                outputs="Paid.",
                value=False,
                rationale=f"Never mention {SECRET} style identifiers; answer false when the text mentions billed.",
            ),
            Feedback(
                id="public",
                inputs="Where is my parcel?",
                outputs="Sorry, it ships today.",
                value=True,
                rationale="Answer true when the text mentions sorry.",
            ),
        ]
    )


def test_forget_without_purge_keeps_history_for_rollback(tmp_path: Path, tone_spec) -> None:
    with make(tmp_path, tone_spec) as judge:
        seed(judge)
        judge.forget(["private"])
        assert SECRET not in str(judge.guidelines())
        assert judge.episodic_store.feedback_ids("support_tone", "default") == {"public"}
    assert "semantic.sqlite" in copies_on_disk(tmp_path, SECRET)  # earlier versions still hold it


def test_purge_leaves_no_copy_of_the_forgotten_text_in_the_stores(tmp_path: Path, tone_spec) -> None:
    with make(tmp_path, tone_spec) as judge:
        seed(judge)
        assert copies_on_disk(tmp_path, SECRET)
        report = judge.forget(["private"], purge=True)
        assert report["forgotten"] == ["private"]
        assert [g["text"] for g in judge.guidelines()] == ["Answer true when the text mentions sorry."]
        assert judge.verify().ok and len(judge.history()) == 1
        assert judge.judge(inputs="Where is my parcel?", outputs="sorry")["score"] is True  # memory still works
    assert copies_on_disk(tmp_path, SECRET) == []
    with make(tmp_path, tone_spec) as reopened:  # and the purge survives a reopen
        assert reopened.episodic_store.feedback_ids("support_tone", "default") == {"public"}
