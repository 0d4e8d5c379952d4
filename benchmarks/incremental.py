"""Scenario `incremental`: rounds of new feedback into one judge; each round must cost the same.

What would make it quadratic: re-embedding or re-upserting earlier episodes, or per-round work that
grows with the ledger (checkpointing the whole state, re-reading it). We count the texts embedded
(episode texts, recognised by the synthetic inputs' marker, separately from guideline texts) and the
points upserted in each round, and time each round.
"""

from __future__ import annotations

import math
import sqlite3
import statistics
import time
from contextlib import closing
from pathlib import Path

from benchmarks.context import RunContext, TimedEpisodicStore
from benchmarks.fakes import CountingEmbeddings, LatencyChatModel
from benchmarks.report import ScenarioResult, Target
from benchmarks.workload import INPUT_MARKER, feedback_batch, judge_spec
from memalign_graph import AlignmentContext, MemAlignJudge, QdrantEpisodicStore

COLUMNS = [
    ("round", "round"),
    ("records_before", "feedback before"),
    ("new", "new"),
    ("latency_ms", "LLM ms"),
    ("wall_s", "wall s"),
    ("round_trips", "round-trips"),
    ("episode_texts_embedded", "episode texts embedded"),
    ("guideline_texts_embedded", "guideline texts embedded"),
    ("points_upserted", "points upserted"),
    ("qdrant_write_s", "Qdrant write s"),
    ("distill_calls", "distill calls"),
    ("close_calls", "close-call calls"),
    ("close_in_flight", "close-call max in flight"),
    ("consolidation_calls", "consolidation calls"),
    ("other_s", "rest s"),
    ("guidelines", "guidelines"),
    ("checkpoint_mb_written", "checkpoint MB written"),
    ("checkpoint_mb", "checkpoint history MB"),
]


def run(context: RunContext) -> ScenarioResult:
    sizes = context.sizes
    result = ScenarioResult(name="incremental", title="Incremental alignment: rounds of new feedback", columns=COLUMNS)
    concurrency, batch = sizes.align_setting
    per_round = sizes.incremental_per_round
    home = context.folder("incremental")
    model = LatencyChatModel(latency_s=sizes.latency_s)
    embeddings = CountingEmbeddings(context.fast_embeddings(), label="fast fake")
    embeddings.marker = INPUT_MARKER
    store = TimedEpisodicStore(QdrantEpisodicStore(path=home / "episodes"))
    try:
        with MemAlignJudge(
            judge_spec(),
            model,
            embeddings=embeddings,
            episodic_store=store,
            home=home,
            max_concurrency=concurrency,
            alignment_context=AlignmentContext(batch_size=batch),
        ) as judge:
            history = 0
            for round_index in range(sizes.incremental_rounds):
                model.reset()
                embeddings.reset()
                store.reset()
                feedback = feedback_batch(round_index * per_round, per_round)
                started = time.perf_counter()
                report = judge.align(feedback)
                wall = time.perf_counter() - started
                distill = model.stats("distilled_guidelines")
                close = model.stats("guideline_comparison")
                consolidation = model.stats("consolidated_guidelines")
                waves = math.ceil(distill.calls / concurrency) + math.ceil(close.calls / concurrency)
                waited = sizes.latency_s * (waves + consolidation.calls)
                embed_s = embeddings.document_seconds + embeddings.query_seconds
                written = checkpoint_bytes(home / "semantic.sqlite") - history
                history += written
                result.rows.append(
                    {
                        "round": round_index + 1,
                        "records_before": round_index * per_round,
                        "new": len(report["added"]),
                        "latency_ms": round(sizes.latency_s * 1000),
                        "wall_s": wall,
                        "round_trips": wall / sizes.latency_s if sizes.latency_s else None,
                        "episode_texts_embedded": embeddings.marked_texts,
                        "guideline_texts_embedded": embeddings.document_texts
                        - embeddings.marked_texts
                        + embeddings.query_texts,
                        "points_upserted": store.upserted,
                        "qdrant_write_s": store.upsert_s,
                        "distill_calls": distill.calls,
                        "close_calls": close.calls,
                        "close_in_flight": close.max_in_flight,
                        "consolidation_calls": consolidation.calls,
                        "other_s": max(0.0, wall - waited - embed_s - store.upsert_s),
                        "guidelines": len(judge.guidelines()),
                        "checkpoint_mb_written": written / 1e6,
                        "checkpoint_mb": history / 1e6,
                    }
                )
    finally:
        store.close()

    rows = result.rows
    only_new = all(row["episode_texts_embedded"] == per_round and row["points_upserted"] == per_round for row in rows)
    result.targets.append(
        Target(
            name="embed only the new records",
            goal=f"each round embeds and upserts its {per_round} records only",
            measured="episode texts embedded per round: "
            + ", ".join(str(row["episode_texts_embedded"]) for row in rows)
            + "; points upserted: "
            + ", ".join(str(row["points_upserted"]) for row in rows),
            met=only_new,
        )
    )
    later = rows[1:] or rows
    walls = [row["wall_s"] for row in later]
    rests = [row["other_s"] for row in later]
    flat = max(walls) <= 1.25 * statistics.median(walls)
    result.targets.append(
        Target(
            name="flat rounds",
            goal="wall time of rounds 2.. stays within 25% of their median",
            measured=(
                f"rounds 2..{len(rows)}: {min(walls):.2f}-{max(walls):.2f} s "
                f"(median {statistics.median(walls):.2f} s); "
                f"rest (non-LLM) {min(rests):.2f}-{max(rests):.2f} s"
            ),
            met=flat,
        )
    )
    result.notes += [
        f"One judge, memory on disk, max_concurrency / batch_size {concurrency} / {batch}, fast fake embedding, "
        f"LLM {round(sizes.latency_s * 1000)} ms a call. Round 1 starts from empty memory: close calls are "
        "asked only against guidelines memory already holds, so from round 2 on each near-duplicate draft is one "
        "(asked in parallel).",
        "guideline texts embedded = drafts compared in dedupe plus rewritten guidelines (not episodes).",
        "checkpoint MB written = bytes of checkpoints and pending writes the round added to the SQLite "
        "checkpointer (its history is kept for rollback).",
    ]
    return result


def checkpoint_bytes(path: Path) -> int:
    """Bytes of every checkpoint and pending write in a SqliteSaver database (WAL included, read-only)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        stored = connection.execute(
            "SELECT COALESCE(SUM(LENGTH(checkpoint) + LENGTH(metadata)), 0) FROM checkpoints"
        ).fetchone()[0]
        pending = connection.execute("SELECT COALESCE(SUM(LENGTH(value)), 0) FROM writes").fetchone()[0]
    return int(stored) + int(pending)
