"""Crash safety: an alignment killed half-way is finished or redone, and both memories end consistent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fakes import BagOfWordsEmbeddings, ScriptedChatModel
from memalign_graph import AlignmentContext, Feedback, MemAlignJudge

TESTS = str(Path(__file__).parent)


def feedback(start: int, count: int) -> list[Feedback]:
    return [
        Feedback(
            id=f"fb-{n}",
            inputs=f"question {n}",
            outputs=f"answer {n}",
            value=n % 2 == 0,
            rationale=f"Mind x{n}a x{n}b x{n}c.",
        )
        for n in range(start, start + count)
    ]


class FailingEmbeddings(BagOfWordsEmbeddings):
    """Embeds until told to fail: a crash beside distillation (writing episodes), before any ledger write."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = False

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.fail:
            raise ConnectionError("embedding service went away")
        return super().embed_documents(texts)


def test_an_exception_between_distill_and_write_changes_nothing_and_the_next_align_finishes_it(
    make_judge, tone_spec
) -> None:
    embeddings = FailingEmbeddings()
    model = ScriptedChatModel()
    judge = make_judge(tone_spec, model=model, embeddings=embeddings)
    judge.align(feedback(0, 2))
    embeddings.fail = True
    with pytest.raises(ConnectionError):
        judge.align(feedback(2, 3))
    assert judge.episodic_store.feedback_ids("support_tone", "default") == {"fb-0", "fb-1"}
    report = judge.verify()
    # The step of distillation and episode writing stopped; the distillation it had finished is kept.
    assert report.unfinished_run == ("distill", "write_episodes")
    assert not report.missing_episodes and not report.orphan_episodes
    distills = len(model.calls_of("distilled_guidelines"))

    embeddings.fail = False
    judge.align([])  # finishes the interrupted run first: its feedback is not lost
    assert len(model.calls_of("distilled_guidelines")) == distills  # the distillation it had done is reused
    assert judge.episodic_store.feedback_ids("support_tone", "default") == {f"fb-{n}" for n in range(5)}
    assert judge.verify().ok and len(judge.history()) == 2  # the empty alignment itself changed nothing: no version


def test_a_refused_alignment_is_not_resumed(make_judge, tone_spec) -> None:
    judge = make_judge(tone_spec)
    with pytest.raises(ValueError):
        judge.align([{"inputs": "q", "outputs": "a", "value": "not a boolean"}])
    assert judge.verify().ok
    assert judge.align(feedback(0, 1))["added"] == ["fb-0"]


def test_verify_finds_and_repair_mends_drift_between_the_memories(make_judge, tone_spec) -> None:
    judge = make_judge(tone_spec)
    judge.align(feedback(0, 3))
    store = judge.episodic_store
    store.delete("support_tone", "default", ["fb-1"])  # an episode lost
    texts = ["stray"]
    stray = {
        **next(iter(judge.memory.ledger().values())),
        "id": "stray",
    }
    store.upsert("support_tone", "default", [stray], texts, judge.embeddings.embed_documents(texts))  # an orphan
    report = judge.verify()
    assert report.missing_episodes == ["fb-1"] and report.orphan_episodes == ["stray"] and not report.ok
    judge.repair()
    assert judge.verify().ok
    assert store.feedback_ids("support_tone", "default") == {"fb-0", "fb-1", "fb-2"}


ALIGNER = """
import sys
sys.path.insert(0, {tests!r})
from fakes import BagOfWordsEmbeddings, ScriptedChatModel, rationale_distiller
from memalign_graph import AlignmentContext, Boolean, Feedback, JudgeSpec, MemAlignJudge, QdrantEpisodicStore
prefix, pause, episodes = sys.argv[1], sys.argv[2], sys.argv[3]
calls = []

def distill(prompt):
    calls.append(1)
    if pause == f"after-{{len(calls)}}-batches":
        print("paused", flush=True)  # the test acts now; the run waits here, memory's lock held
        sys.stdin.readline()
    return rationale_distiller(prompt)

store = QdrantEpisodicStore() if episodes == "memory" else None
spec = JudgeSpec(name="support_tone", instructions="ok?", output=Boolean())
fb = [Feedback(id=f"{{prefix}}-{{n}}", inputs=f"q {{prefix}} {{n}}", outputs="a", value=True,
               rationale=f"Mind {{prefix}}x{{n}}a {{prefix}}x{{n}}b.") for n in range(8)]
with MemAlignJudge(spec, ScriptedChatModel(distill=distill), embeddings=BagOfWordsEmbeddings(), home={home!r},
                   max_concurrency=1, episodic_store=store, alignment_context=AlignmentContext(batch_size=2)) as judge:
    print("aligning", flush=True)
    if pause == "holding":
        sys.stdin.readline()
    judge.align(fb)
    print("done", flush=True)
"""


def run_aligner(home: Path, prefix: str, pause: str = "never", episodes: str = "home") -> subprocess.Popen:
    """A process aligning 8 feedback in 4 batches; `pause` stops it (after-2-batches, or holding the stores
    open before aligning) until a line arrives on its stdin."""
    script = ALIGNER.format(tests=TESTS, home=str(home))
    return subprocess.Popen(
        [sys.executable, "-c", script, prefix, pause, episodes],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def wait_for(process: subprocess.Popen, line: str) -> None:
    assert process.stdout is not None
    for seen in process.stdout:
        if seen.strip() == line:
            return
    raise AssertionError(f"the process ended before {line!r}: {process.stderr.read() if process.stderr else ''}")


def release(process: subprocess.Popen) -> None:
    assert process.stdin is not None
    process.stdin.write("go\n")
    process.stdin.flush()


def open_judge(home: Path, tone_spec) -> MemAlignJudge:
    return MemAlignJudge(
        tone_spec,
        ScriptedChatModel(),
        embeddings=BagOfWordsEmbeddings(),
        home=home,
        alignment_context=AlignmentContext(batch_size=2),
    )


def test_a_killed_alignment_process_is_finished_by_the_next_one(tmp_path: Path, tone_spec) -> None:
    process = run_aligner(tmp_path, "k", pause="after-3-batches")
    wait_for(process, "paused")  # two of four distill batches done, the third in flight, nothing written
    process.send_signal(signal.SIGKILL)
    process.wait()
    with open_judge(tmp_path, tone_spec) as judge:
        found = judge.verify()
        assert found.unfinished_run and not found.orphan_episodes and not found.missing_episodes
        judge.repair()
        assert judge.verify().ok
        ids = judge.episodic_store.feedback_ids("support_tone", "default")
        assert ids == {f"k-{n}" for n in range(8)}
        assert judge.episodic_store.count("support_tone", "default") == 8  # no duplicates
        assert sorted(i for g in judge.guidelines() for i in g["feedback_ids"]) == sorted(ids)


def test_two_processes_aligning_one_judge_are_serialized(tmp_path: Path, tone_spec) -> None:
    """Two processes share the SQLite memory (each keeps episodes in its own in-memory Qdrant). The second
    starts while the first is half-way through its alignment: the file lock makes it wait, so it starts
    from the first one's result, never interleaved."""
    first = run_aligner(tmp_path, "a", pause="after-2-batches", episodes="memory")
    wait_for(first, "paused")
    second = run_aligner(tmp_path, "b", episodes="memory")
    wait_for(second, "aligning")
    release(first)
    for process in (first, second):
        _, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors
    with open_judge(tmp_path, tone_spec) as judge:
        records = judge.memory.ledger()
        assert set(records) == {f"{prefix}-{n}" for prefix in "ab" for n in range(8)}  # no lost update
        assert [version["feedback"] for version in judge.history()] == [16, 8]


def test_a_second_process_on_the_same_local_episode_store_is_refused_clearly(tmp_path: Path) -> None:
    first = run_aligner(tmp_path, "a", pause="holding")  # holds the local store until told to go on
    wait_for(first, "aligning")
    second = run_aligner(tmp_path, "b")
    _, errors = second.communicate(timeout=120)
    release(first)
    first.communicate(timeout=120)
    assert second.returncode != 0 and "Another process holds it" in errors and str(tmp_path / "episodes") in errors
