"""Scenario `kills`: SIGKILL a process in the middle of an alignment, a purge or a rollback, at random
moments, then count what the next process finds lost.

Each trial seeds a fresh home (SQLite + Qdrant local mode), starts a worker process that runs the
operation with a slow fake model (so the operation takes long enough to be hit), kills it at a moment
drawn uniformly over the operation's measured duration, and reopens the home the way a user would: open
the judge, `repair()`, and for a purge run it again. Lost = feedback that was in memory before the
operation (and that the operation was not told to forget) missing afterwards, or an inconsistency
`verify()` still finds. The tests (tests/test_crash_points.py) stop each operation at every single
write; this scenario adds real process death at arbitrary instructions.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.context import RunContext
from benchmarks.report import ScenarioResult, Target

OPERATIONS = ("alignment", "purge", "rollback")
SEED_FEEDBACK = 60

COLUMNS = [
    ("operation", "operation"),
    ("kills", "kills"),
    ("mid_operation", "killed mid-operation"),
    ("operation_s", "operation s"),
    ("records_before", "feedback before"),
    ("lost", "records lost"),
    ("inconsistent", "inconsistent after recovery"),
    ("finished", "finished by recovery"),
]


def run(context: RunContext) -> ScenarioResult:
    kills = context.sizes.kill_trials
    result = ScenarioResult(
        name="kills", title="Processes killed mid-operation: what the next one finds", columns=COLUMNS
    )
    rng = random.Random(20261204)
    for operation in OPERATIONS if kills else ():
        duration = _timed(context.folder(f"kills-{operation}-timing"), operation)
        row: dict[str, Any] = {"operation": operation, "kills": kills, "operation_s": round(duration, 2)}
        row.update(mid_operation=0, lost=0, inconsistent=0, finished=0, records_before=SEED_FEEDBACK)
        for _ in range(kills):
            home = context.folder(f"kills-{operation}")
            _worker(home, "seed", operation)
            killed = _kill_during(home, operation, rng.uniform(0, duration))
            outcome = _recover(home, operation)
            row["mid_operation"] += killed
            row["lost"] += outcome["lost"]
            row["inconsistent"] += not outcome["consistent"]
            row["finished"] += outcome["finished"]
        result.rows.append(row)
    lost = sum(row["lost"] for row in result.rows)
    broken = sum(row["inconsistent"] for row in result.rows)
    result.targets.append(
        Target(
            name="nothing lost",
            goal=f"{kills} random SIGKILLs during each of alignment, purge and rollback lose 0 records",
            measured=f"{lost} records lost, {broken} homes inconsistent after recovery",
            met=lost == 0 and broken == 0,
        )
    )
    result.notes.append(
        f"Home: SQLite + Qdrant local mode, {SEED_FEEDBACK} feedback before the operation; the alignment adds 40, "
        "the purge erases one, the rollback returns to the first of two versions. Fake model at 0.1 s a call."
    )
    return result


def _timed(home: Path, operation: str) -> float:
    _worker(home, "seed", operation)
    started = time.perf_counter()
    out = _worker(home, "run", operation)
    return float(out.strip().splitlines()[-1]) if out.strip() else time.perf_counter() - started


def _kill_during(home: Path, operation: str, after_s: float) -> bool:
    """Start the operation, SIGKILL it `after_s` after it began; whether it was still running."""
    process = _spawn(home, "run", operation)
    assert process.stdout is not None
    ready = process.stdout.readline().strip()
    if ready != "started":
        process.wait()
        raise RuntimeError(f"kills worker failed to start: {process.stderr.read() if process.stderr else ''}")
    deadline = time.monotonic() + after_s
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    running = process.poll() is None
    if running:
        process.send_signal(signal.SIGKILL)
    process.wait()
    return running


def _recover(home: Path, operation: str) -> dict[str, Any]:
    out = _worker(home, "recover", operation)
    lost, consistent, finished = out.strip().splitlines()[-1].split()
    return {"lost": int(lost), "consistent": consistent == "ok", "finished": finished == "done"}


def _spawn(home: Path, step: str, operation: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.kills", step, operation, str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def _worker(home: Path, step: str, operation: str) -> str:
    process = _spawn(home, step, operation)
    out, err = process.communicate(timeout=600)
    if process.returncode != 0:
        raise RuntimeError(f"kills worker {step} {operation} failed: {err[-2000:]}")
    return out


# -- the worker process ----------------------------------------------------------------------------


def _feedback(prefix: str, count: int, *, value: bool = True) -> list[Any]:
    from memalign_graph import Feedback

    return [
        Feedback(
            id=f"{prefix}-{n}",
            inputs=f"Ticket {prefix} {n}: where is my parcel number {n}?",
            outputs=f"It ships soon, parcel {n}.",
            value=value,
            rationale=f"Answer {str(value).lower()} when the text mentions parcel{n % 9}.",
        )
        for n in range(count)
    ]


def _open(home: Path) -> Any:
    from benchmarks.fakes import LatencyChatModel
    from benchmarks.workload import judge_spec
    from memalign_graph import AlignmentContext, MemAlignJudge
    from memalign_graph.fake_model import FakeEmbeddings

    return MemAlignJudge(
        judge_spec(),
        LatencyChatModel(latency_s=0.1),
        embeddings=FakeEmbeddings(),
        home=home,
        max_concurrency=2,
        alignment_context=AlignmentContext(batch_size=4),
    )


def main(step: str, operation: str, home: Path) -> None:
    with _open(home) as judge:
        if step == "seed":
            judge.align(_feedback("r", SEED_FEEDBACK // 2))
            judge.align(_feedback("s", SEED_FEEDBACK // 2))
            (home / "expected").write_text("\n".join(sorted(judge.memory.ledger())))
            (home / "first-version").write_text(judge.history()[-1]["checkpoint_id"])
        elif step == "run":
            print("started", flush=True)
            started = time.perf_counter()
            if operation == "alignment":
                judge.align(_feedback("new", 40))
            elif operation == "purge":
                judge.forget(["r-0"], purge=True)
            else:
                judge.rollback((home / "first-version").read_text())
            print(time.perf_counter() - started, flush=True)
        else:
            expected = set((home / "expected").read_text().split())
            if operation == "purge":
                expected.discard("r-0")
                judge.forget(["r-0"], purge=True)  # a purge is finished by running it again
            judge.repair()
            if operation == "rollback" and _rolled(judge):  # else it is the version before the rollback
                expected = {key for key in expected if key.startswith("r-")}
            held = set(judge.memory.ledger())
            consistent = judge.verify().ok and judge.episodic_store.feedback_ids("support_tone", "default") == held
            finished = {"alignment": any(k.startswith("new-") for k in held), "purge": True, "rollback": _rolled(judge)}
            print(len(expected - held), "ok" if consistent else "broken", "done" if finished[operation] else "-")


def _rolled(judge: Any) -> bool:
    return not any(key.startswith("s-") for key in judge.memory.ledger())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
