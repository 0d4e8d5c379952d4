"""Scenario `scale`: 100k episodes in Qdrant local mode, and the same against a Qdrant server if given.

Local mode keeps every point in memory and re-reads them all from SQLite on open, so reopen time and
memory grow with the corpus; they are measured in a fresh subprocess (clean RSS, nothing cached).
The server variant runs only with `--qdrant-url` (or `MEMALIGN_QDRANT_URL`); it writes to a collection
of its own, namespaced by a random id, and deletes it afterwards.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import textwrap
import time
from typing import Any

from qdrant_client import models

from benchmarks.context import RunContext, TimedEpisodicStore
from benchmarks.corpus import CHUNK, DIMENSIONS
from benchmarks.fakes import LatencyChatModel
from benchmarks.report import ScenarioResult, Target
from benchmarks.workload import JUDGE_NAME, judge_spec, judged_example, random_unit_vectors, run_id, synthetic_records
from memalign_graph import MemAlignJudge, QdrantEpisodicStore
from memalign_graph.memory.qdrant_store import collection_name
from memalign_graph.rendering import retrieval_text

COLUMNS = [
    ("backend", "backend"),
    ("points", "episodes"),
    ("insert_rate", "insert points/s (store.upsert)"),
    ("disk_mb", "disk MB"),
    ("reopen_s", "reopen s"),
    ("reopen_rss_mb", "RSS after reopen MB"),
    ("query_ms", "top-5 ms"),
    ("filtered_query_ms", "top-5 with filter ms"),
    ("judge_p50_ms", "judge graph p50 ms"),
    ("status", "status"),
]

# The resident memory of a measuring subprocess, for the reopen scripts here and in `edge`.
RSS_MB_FUNCTION = textwrap.dedent(
    """
    def rss_mb():
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return None
    """
)

_REOPEN_SCRIPT = RSS_MB_FUNCTION + textwrap.dedent(
    """
    import json, statistics, sys, time
    import numpy as np
    from qdrant_client import QdrantClient, models

    path, collection, judge, samples = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    before = rss_mb()
    started = time.perf_counter()
    client = QdrantClient(path=path)
    count = client.count(collection, exact=True).count
    reopen_s = time.perf_counter() - started
    after = rss_mb()
    vectors = np.random.default_rng(7).standard_normal((samples + 1, 384)).astype(np.float32)
    where = models.Filter(must=[models.FieldCondition(key="metadata.judge", match=models.MatchValue(value=judge))])
    timings = {}
    filtered_samples = 2 if count >= 5000 else samples
    for name, query_filter, n in (("query_ms", None, samples), ("filtered_query_ms", where, filtered_samples)):
        client.query_points(collection, query=vectors[-1].tolist(), limit=5, query_filter=query_filter)
        found = []
        for vector in vectors[:n]:
            began = time.perf_counter()
            client.query_points(collection, query=vector.tolist(), limit=5, query_filter=query_filter)
            found.append((time.perf_counter() - began) * 1000)
        timings[name] = statistics.median(found)
    client.close()
    print(json.dumps({"count": count, "reopen_s": reopen_s, "rss_before_mb": before, "rss_after_mb": after, **timings}))
    """
)


def run(context: RunContext) -> ScenarioResult:
    sizes = context.sizes
    result = ScenarioResult(name="scale", title="Scale: 100k episodes", columns=COLUMNS)
    result.rows.append(local_row(context, result))
    context.shared["scale_local_row"] = result.rows[0]
    url = context.qdrant_url
    if url:
        result.rows.append(_server(context, url))
    else:
        result.rows.append(
            {
                "backend": "Qdrant server",
                "points": sizes.scale_points,
                "status": "skipped: no --qdrant-url given (and no Qdrant server on this machine)",
            }
        )
    local = result.rows[0]
    result.targets.append(
        Target(
            name=f"{sizes.scale_points:,} episodes in local mode",
            goal="insert rate, disk, reopen time and memory reported",
            measured=(
                f"{local['insert_rate']:,.0f} points/s, {local['disk_mb']:,.0f} MB, reopen {local['reopen_s']:.1f} s, "
                f"{local['reopen_rss_mb']:,.0f} MB RSS after reopen (subprocess)"
            ),
            met=True,
        )
    )
    return result


def local_row(context: RunContext, result: ScenarioResult) -> dict[str, Any]:
    """The local-mode row: the shared corpus grown to the scale size, reopened in a fresh process."""
    sizes = context.sizes
    corpus = context.corpus()
    corpus.grow_to(sizes.scale_points)
    measured = subprocess.run(
        [
            sys.executable,
            "-c",
            _REOPEN_SCRIPT,
            str(corpus.episodes_path),
            corpus.collection,
            JUDGE_NAME,
            str(sizes.query_samples),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    found = json.loads(measured.stdout.strip().splitlines()[-1])
    if found["count"] < sizes.scale_points:
        raise RuntimeError(f"reopened store holds {found['count']} points, expected {sizes.scale_points}")
    result.notes += [
        f"Local: Qdrant local mode at a path. Insert rate measured on the first {corpus.measured_points:,} points "
        "through QdrantEpisodicStore.upsert (one SQLite commit per point inside qdrant-client); the rest "
        f"({corpus.bulk_points:,}) bulk-loaded in the client's own row format in one transaction "
        f"({corpus.bulk_seconds:.1f} s), since {sizes.scale_points:,} points at the measured rate would take "
        f"{sizes.scale_points / max(corpus.insert_rate, 1):.0f} s.",
        "Reopen, RSS and queries measured in a fresh Python process (RSS before opening: "
        f"{found['rss_before_mb']:.0f} MB). Judge graph p50 (fast fake embedding): from the judge overhead "
        "scenario, when it ran.",
    ]
    judge_p50 = context.shared.get("judge_p50_ms", {}).get(found["count"])
    return {
        "backend": "local mode (path)",
        "points": found["count"],
        "insert_rate": corpus.insert_rate,
        "disk_mb": corpus.disk_bytes() / 1e6,
        "reopen_s": found["reopen_s"],
        "reopen_rss_mb": found["rss_after_mb"],
        "query_ms": found["query_ms"],
        "filtered_query_ms": found["filtered_query_ms"],
        "judge_p50_ms": judge_p50,
        "status": "measured",
    }


def _server(context: RunContext, url: str) -> dict[str, Any]:
    """The same corpus through a Qdrant server: insert rate, queries and the judge graph's p50."""
    sizes = context.sizes
    namespace = f"bench{run_id()}"
    name = collection_name(JUDGE_NAME, namespace)
    store = TimedEpisodicStore(QdrantEpisodicStore(url=url))
    try:
        for start in range(0, sizes.scale_points, CHUNK):
            count = min(CHUNK, sizes.scale_points - start)
            records = list(synthetic_records(start, count))
            texts = [retrieval_text(record, max_tokens=1000) for record in records]
            store.upsert(
                JUDGE_NAME, namespace, records, texts, random_unit_vectors(count, DIMENSIONS, seed=start).tolist()
            )
        client = store.inner.client
        vectors = random_unit_vectors(sizes.query_samples + 1, DIMENSIONS, seed=99).tolist()
        where = models.Filter(
            must=[models.FieldCondition(key="metadata.judge", match=models.MatchValue(value=JUDGE_NAME))]
        )
        timings: dict[str, float] = {}
        for key, query_filter in (("query_ms", None), ("filtered_query_ms", where)):
            client.query_points(name, query=vectors[-1], limit=5, query_filter=query_filter)
            found = []
            for vector in vectors[:-1]:
                began = time.perf_counter()
                client.query_points(name, query=vector, limit=5, query_filter=query_filter)
                found.append((time.perf_counter() - began) * 1000)
            timings[key] = statistics.median(found)
        walls = []
        with MemAlignJudge(
            judge_spec(),
            LatencyChatModel(),
            embeddings=context.fast_embeddings(),
            episodic_store=store,
            namespace=namespace,
            home=context.folder("server"),
        ) as judge:
            for index in range(sizes.query_samples + 3):
                began = time.perf_counter()
                judge.judge(**judged_example(index))
                walls.append((time.perf_counter() - began) * 1000)
        client.delete_collection(name)
        return {
            "backend": "Qdrant server",
            "points": sizes.scale_points,
            "insert_rate": store.upserted / store.upsert_s if store.upsert_s else None,
            "disk_mb": None,
            "reopen_s": None,
            "reopen_rss_mb": None,
            "judge_p50_ms": statistics.median(walls[3:]),
            "status": f"measured at {url}",
            **timings,
        }
    finally:
        store.close()
