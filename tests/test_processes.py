"""Several processes on one judge's memory in the scale-out stack: Postgres for semantic memory and a Qdrant
server (the REST double here) for episodes. They start together at a barrier, so their work overlaps.

Before: the cross-process lock existed only for the SQLite home: two processes aligning one judge on
Postgres lost each other's feedback and both reported success; two first-time processes on a fresh
database raced in the saver's table setup, one dying with a UniqueViolation.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import postgres_schema

from fakes import BagOfWordsEmbeddings, ScriptedChatModel
from memalign_graph import MemAlignJudge, QdrantEpisodicStore
from qdrant_rest import running_qdrant_rest

TESTS = str(Path(__file__).parent)

ALIGN = """
import json, sys
sys.path.insert(0, {tests!r})
from fakes import BagOfWordsEmbeddings, ScriptedChatModel
from memalign_graph import AlignmentContext, Boolean, Feedback, JudgeSpec, MemAlignJudge
prefix, count = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()  # the barrier: every process starts when the test says so
spec = JudgeSpec(name="support_tone", instructions="ok?", output=Boolean())
feedback = [Feedback(id=f"{{prefix}}-{{n}}", inputs=f"q {{prefix}} {{n}}", outputs="a", value=True,
                     rationale=f"Mind {{prefix}}x{{n}}a {{prefix}}x{{n}}b.") for n in range(count)]
with MemAlignJudge(spec, ScriptedChatModel(latency_s=0.05), embeddings=BagOfWordsEmbeddings(),
                   postgres_url={postgres!r}, qdrant_url={qdrant!r}, max_concurrency=2,
                   alignment_context=AlignmentContext(batch_size=2)) as judge:
    for start in range(0, count, 4):
        judge.align(feedback[start:start + 4])
    print(json.dumps(len(judge.memory.ledger())), flush=True)
"""


def run_together(script: str, jobs: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Start one process per job, wait until each is at the barrier, then release them all at once."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        for args in jobs
    ]
    for process in processes:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    results = []
    for process, args in zip(processes, jobs, strict=True):
        out, err = process.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(args, process.returncode, out, err))
    return results


def test_processes_aligning_one_judge_on_postgres_and_a_qdrant_server_lose_nothing(tone_spec) -> None:
    with postgres_schema() as postgres, running_qdrant_rest() as qdrant:
        script = ALIGN.format(tests=TESTS, postgres=postgres, qdrant=qdrant)
        done = run_together(script, [["a", "12"], ["b", "12"], ["c", "12"]])
        assert [result.returncode for result in done] == [0, 0, 0], [result.stderr[-2000:] for result in done]
        expected = {f"{prefix}-{n}" for prefix in "abc" for n in range(12)}
        with (
            QdrantEpisodicStore(url=qdrant) as store,
            MemAlignJudge(
                tone_spec,
                ScriptedChatModel(),
                embeddings=BagOfWordsEmbeddings(),
                postgres_url=postgres,
                episodic_store=store,
            ) as judge,
        ):
            assert set(judge.memory.ledger()) == expected  # no process lost another's feedback
            assert store.feedback_ids("support_tone", "default") == expected
            assert judge.verify().ok
            assert sorted(version["feedback"] for version in judge.history()) == list(range(4, 37, 4))


SETUP = """
import sys
sys.path.insert(0, {tests!r})
from memalign_graph.memory.savers import open_postgres_checkpointer
print("ready", flush=True)
sys.stdin.readline()
saver, close = open_postgres_checkpointer({postgres!r})
close()
"""


def test_first_time_processes_set_up_a_fresh_database_together() -> None:
    with postgres_schema() as postgres:
        done = run_together(SETUP.format(tests=TESTS, postgres=postgres), [[] for _ in range(4)])
    assert [result.returncode for result in done] == [0, 0, 0, 0], [result.stderr[-2000:] for result in done]
