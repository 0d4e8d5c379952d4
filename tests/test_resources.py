"""Resources: nothing left open after close(), and memory stays flat over thousands of judgments."""

from __future__ import annotations

import gc
import os
import threading
from pathlib import Path

from memalign_graph import Boolean, Feedback, JudgeSpec, MemAlignJudge
from memalign_graph.fake_model import FakeChatModel, FakeEmbeddings

SPEC = JudgeSpec(name="tone", instructions="ok?", output=Boolean())


def open_files() -> set[str]:
    return {
        os.readlink(f"/proc/self/fd/{fd}")
        for fd in os.listdir("/proc/self/fd")
        if os.path.exists(f"/proc/self/fd/{fd}")
    }


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_close_leaves_no_thread_file_or_client_open(tmp_path: Path) -> None:
    threads_before, files_before = threading.active_count(), open_files()
    for round_ in range(5):
        with MemAlignJudge(SPEC, FakeChatModel(), embeddings=FakeEmbeddings(), home=tmp_path) as judge:
            judge.align([Feedback(id=f"f{round_}", inputs="q", outputs="a", value=True, rationale="Mind.")])
            judge.batch([{"inputs": "q", "outputs": "a"}] * 4)
    gc.collect()
    assert threading.active_count() <= threads_before
    leaked = {path for path in open_files() - files_before if str(tmp_path) in path}
    assert leaked == set()
    # closed for real: the local Qdrant path can be opened again by a plain client
    from qdrant_client import QdrantClient

    QdrantClient(path=str(tmp_path / "episodes")).close()


def test_memory_stays_flat_over_thousands_of_judgments(tmp_path: Path) -> None:
    with MemAlignJudge(SPEC, FakeChatModel(), embeddings=FakeEmbeddings(), home=tmp_path) as judge:
        judge.align(
            [
                Feedback(
                    id=f"f{n}",
                    inputs=f"question {n}",
                    outputs="a",
                    value=n % 2 == 0,
                    rationale=f"Answer true when the text mentions word{n}.",
                )
                for n in range(50)
            ]
        )
        for n in range(300):  # warm up caches and allocator pools
            judge.judge(inputs=f"warm {n}", outputs="a")
        gc.collect()
        before = rss_mb()
        for n in range(2000):
            judge.judge(inputs=f"question {n} word{n % 50}", outputs="a")
        gc.collect()
        grown = rss_mb() - before
    assert grown < 25, f"resident memory grew {grown:.1f} MB over 2000 judgments"
