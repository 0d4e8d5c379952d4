"""Scenario `edge`: large local memories on Qdrant's embedded engine (`qdrant-edge-py`) next to Qdrant local mode.

Both hold the same 100k synthetic episodes (random 384-d unit vectors: search cost depends on how many
points a search scans, not on what they mean). Reopen time, RSS and search times are measured in a fresh
subprocess. Random vectors say nothing about an approximate index's recall, so recall@5 is measured
apart, on real all-MiniLM-L6-v2 embeddings of real English (docstrings of the installed Python
packages), against exact search: as many as embed in a few minutes on 2 cores, not 100k.
"""

from __future__ import annotations

import ast
import json
import statistics
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import scale
from benchmarks.context import RunContext
from benchmarks.corpus import CHUNK, DIMENSIONS
from benchmarks.report import ScenarioResult, Target
from benchmarks.workload import JUDGE_NAME, random_unit_vectors, synthetic_records
from memalign_graph.context import DEFAULT_NAMESPACE
from memalign_graph.rendering import retrieval_text

OTHER_JUDGE = "other_judge"  # a second tenant in the shard, so the filter has something to leave out

COLUMNS = [
    ("backend", "engine"),
    ("points", "episodes"),
    ("insert_rate", "insert points/s (store.upsert)"),
    ("index_s", "index build s"),
    ("disk_mb", "disk MB"),
    ("reopen_s", "reopen s"),
    ("reopen_rss_mb", "RSS after reopen MB"),
    ("queried_rss_mb", "RSS after queries MB"),
    ("search_ms", "store.search top-5 p50 ms"),
    ("search_p95_ms", "p95 ms"),
    ("filtered_ms", "raw top-5 with payload filter ms"),
    ("recall_at_5", "recall@5 (real MiniLM)"),
    ("recall_points", "recall measured on"),
]

_REOPEN_SCRIPT = scale.RSS_MB_FUNCTION + textwrap.dedent(
    """
    import json, statistics, sys, time
    import numpy as np
    from qdrant_edge import FieldCondition, Filter, MatchValue, Query, QueryRequest, SearchParams
    from memalign_graph.memory.edge_store import EdgeEpisodicStore

    path, judge, namespace, samples = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    before = rss_mb()
    started = time.perf_counter()
    store = EdgeEpisodicStore(path=path)
    count = store.count(judge, namespace)
    reopen_s = time.perf_counter() - started
    after = rss_mb()
    vectors = np.random.default_rng(7).standard_normal((samples + 1, 384)).astype(np.float32).tolist()
    store.search(judge, namespace, vectors[-1], 5)
    found = []
    for vector in vectors[:-1]:
        began = time.perf_counter()
        store.search(judge, namespace, vector, 5)
        found.append((time.perf_counter() - began) * 1000)
    where = Filter(must=[FieldCondition("metadata.judge", match=MatchValue(judge))])
    exact = []
    for vector in vectors[: min(samples, 20)]:
        began = time.perf_counter()
        store._shared.shard.query(QueryRequest(limit=5, query=Query.Nearest(vector), filter=where,
                                               params=SearchParams(exact=True), with_payload=True))
        exact.append((time.perf_counter() - began) * 1000)
    store.close()
    found.sort()
    print(json.dumps({"count": count, "reopen_s": reopen_s, "rss_before_mb": before, "rss_after_mb": after,
                      "rss_queried_mb": rss_mb(), "search_ms": statistics.median(found),
                      "search_p95_ms": found[int(len(found) * 0.95) - 1], "exact_ms": statistics.median(exact)}))
    """
)


def run(context: RunContext) -> ScenarioResult:
    sizes = context.sizes
    result = ScenarioResult(name="edge", title="Large local memories: Qdrant's embedded engine", columns=COLUMNS)
    local = dict(context.shared.get("scale_local_row") or scale.local_row(context, result))
    edge, exact_ms = _edge(context, result)
    recall = _recall(context, result)
    local.update(
        backend="Qdrant local mode (path)",
        search_ms=local.get("query_ms"),  # its judge's own collection: no filter needed
        filtered_ms=local.get("filtered_query_ms"),
        index_s=None,
        recall_at_5=recall.get("local"),
        recall_points=recall.get("points"),
    )
    edge.update(recall_at_5=recall.get("edge"), recall_points=recall.get("points"))
    result.rows += [local, edge]
    n = f"{edge['points']:,}"
    result.targets += [
        Target(f"reopen at {n} episodes", "<= 1 s", f"{edge['reopen_s']:.2f} s", edge["reopen_s"] <= 1.0),
        Target(
            f"RSS at {n} episodes",
            "<= 600 MB",
            f"{edge['queried_rss_mb']:,.0f} MB after reopen and {sizes.edge_query_samples} searches",
            edge["queried_rss_mb"] <= 600,
        ),
        Target(
            f"top-5 p50, filtered to the judge, at {n} episodes",
            "<= 3 ms",
            f"{edge['search_ms']:.2f} ms through store.search (exact search: {exact_ms:.1f} ms)",
            edge["search_ms"] <= 3.0,
        ),
        Target(
            "recall@5 against exact search on real MiniLM embeddings",
            ">= 0.99",
            "not measured (no MiniLM in this preset)"
            if recall.get("edge") is None
            else f"{recall['edge']:.3f} over {recall['queries']} queries on {recall['points']:,} episodes",
            None if recall.get("edge") is None else recall["edge"] >= 0.99,
        ),
    ]
    return result


def _edge(context: RunContext, result: ScenarioResult) -> tuple[dict[str, Any], float]:
    from memalign_graph.memory.edge_store import EdgeEpisodicStore

    sizes = context.sizes
    path = context.folder("edge") / "episodes-edge"
    store = EdgeEpisodicStore(path=path, index_after=1 << 62)  # indexed once below, and timed
    upsert_s = 0.0
    try:
        for judge, total in ((JUDGE_NAME, sizes.edge_points), (OTHER_JUDGE, sizes.edge_points // 20)):
            for start in range(0, total, CHUNK):
                count = min(CHUNK, total - start)
                records = list(synthetic_records(start, count))
                texts = [retrieval_text(record, max_tokens=1000) for record in records]
                vectors = random_unit_vectors(count, DIMENSIONS, seed=start + (judge == OTHER_JUDGE)).tolist()
                began = time.perf_counter()
                store.upsert(judge, DEFAULT_NAMESPACE, records, texts, vectors)
                upsert_s += time.perf_counter() - began
        began = time.perf_counter()
        store.optimize()
        index_s = time.perf_counter() - began
    finally:
        store.close()
    written = sizes.edge_points + sizes.edge_points // 20
    found = _median_of_fresh_processes(path, sizes.edge_query_samples)
    disk = sum(file.stat().st_size for file in path.rglob("*") if file.is_file())
    result.notes += [
        f"Embedded engine: {sizes.edge_points:,} episodes of the judge and {sizes.edge_points // 20:,} of another "
        f"judge in one shard, written through EdgeEpisodicStore.upsert in chunks of {CHUNK:,} ({written:,} points in "
        f"{upsert_s:.1f} s), then indexed once (HNSW, {index_s:.1f} s, blocking; in use a write indexes when "
        "10,000 points wait). Searches go through store.search, filtered to the judge by the tenant payload "
        f"indexes; RSS before opening: {found['rss_before_mb']:.0f} MB (Python and the package imported). "
        f"Reopen, RSS and search figures are medians of {FRESH_PROCESSES} fresh processes (each one's p50 and "
        f"p95 over {sizes.edge_query_samples} searches; search p50 per process: "
        + ", ".join(f"{value:.2f}" for value in found["search_ms_each"])
        + " ms).",
        "Local mode: the corpus of the `scale` scenario (a collection per judge, so its search needs no filter; "
        "with a payload filter it scans, as the last column shows).",
    ]
    row = {
        "backend": "Qdrant embedded engine (qdrant-edge-py)",
        "points": found["count"],
        "insert_rate": written / upsert_s if upsert_s else None,
        "index_s": index_s,
        "disk_mb": disk / 1e6,
        "reopen_s": found["reopen_s"],
        "reopen_rss_mb": found["rss_after_mb"],
        "queried_rss_mb": found["rss_queried_mb"],
        "search_ms": found["search_ms"],
        "search_p95_ms": found["search_p95_ms"],
        "filtered_ms": found["search_ms"],
    }
    return row, found["exact_ms"]


FRESH_PROCESSES = 3


def _median_of_fresh_processes(path: Path, samples: int) -> dict[str, Any]:
    """The reopen script in a few fresh processes, each figure's median: one process's timings swing with
    whatever else the machine does at that moment."""
    runs = []
    for _ in range(FRESH_PROCESSES):
        measured = subprocess.run(
            [sys.executable, "-c", _REOPEN_SCRIPT, str(path), JUDGE_NAME, DEFAULT_NAMESPACE, str(samples)],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        runs.append(json.loads(measured.stdout.strip().splitlines()[-1]))
    found: dict[str, Any] = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    found["search_ms_each"] = [run["search_ms"] for run in runs]
    return found


def _recall(context: RunContext, result: ScenarioResult) -> dict[str, Any]:
    """recall@5 of both engines against exact (numpy) search, on real MiniLM embeddings of real text."""
    from memalign_graph import QdrantEpisodicStore
    from memalign_graph.memory.edge_store import EdgeEpisodicStore

    sizes = context.sizes
    model = context.minilm()
    if model is None or sizes.recall_points <= 0:
        result.notes.append("Recall: not measured in this preset (no MiniLM).")
        return {}
    texts = real_texts(sizes.recall_points + sizes.recall_queries)
    began = time.perf_counter()
    vectors = np.asarray(model.embed_documents(texts), dtype=np.float32)
    embed_s = time.perf_counter() - began
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    stored, queries = vectors[: sizes.recall_points], vectors[sizes.recall_points :]
    records = list(synthetic_records(0, len(stored)))
    found: dict[str, Any] = {"points": len(stored), "queries": len(queries)}
    edge = EdgeEpisodicStore(path=context.folder("recall") / "episodes-edge", index_after=1 << 62)
    local = QdrantEpisodicStore()
    try:
        for store in (edge, local):
            for start in range(0, len(stored), CHUNK):
                chunk = records[start : start + CHUNK]
                store.upsert(
                    JUDGE_NAME, DEFAULT_NAMESPACE, chunk, [""] * len(chunk), stored[start : start + CHUNK].tolist()
                )
        edge.optimize()
        shard = edge._shared.shard
        indexed = shard.info().indexed_vectors_count if shard is not None else 0
        ids = {record["id"]: index for index, record in enumerate(records)}
        for name, store in (("edge", edge), ("local", local)):
            hits = 0.0
            for query in queries:
                scores = stored @ query
                fifth = np.sort(scores)[-5]
                got = store.search(JUDGE_NAME, DEFAULT_NAMESPACE, query.tolist(), 5)
                # A hit scoring at least the exact fifth best is a true neighbour (ties count either way).
                hits += sum(scores[ids[episode["feedback_id"]]] >= fifth - 1e-6 for episode in got) / 5
            found[name] = hits / len(queries)
    finally:
        edge.close()
        local.close()
    result.notes.append(
        f"Recall: {len(stored):,} real all-MiniLM-L6-v2 embeddings (first paragraphs of docstrings of the installed "
        f"Python packages, {len(texts):,} texts embedded in {embed_s:.0f} s), {len(queries)} other texts as "
        f"queries; the embedded engine's HNSW index covered {indexed:,} of them. Exact search (numpy) is the "
        "reference; local mode searches exactly. The 100k timing rows use random vectors, not these."
    )
    return found


def real_texts(count: int) -> list[str]:
    """`count` distinct English paragraphs: the first paragraph of docstrings in the standard library and the
    installed packages, in a fixed order (no download, the same on every run of one environment)."""
    seen: set[str] = set()
    texts: list[str] = []
    for root in dict.fromkeys((sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"])):
        for path in sorted(Path(root).rglob("*.py")):
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (SyntaxError, UnicodeDecodeError, OSError, ValueError):
                continue
            for node in ast.walk(tree):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
                    continue
                doc = ast.get_docstring(node)
                paragraph = " ".join((doc or "").split("\n\n")[0].split())
                if 60 <= len(paragraph) <= 240 and paragraph not in seen:
                    seen.add(paragraph)
                    texts.append(paragraph)
                    if len(texts) == count:
                        return texts
    return texts
