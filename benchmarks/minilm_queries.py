"""Scenario `minilm_queries`: the real local embedding on the judging path, when judgments run together.

A batch of judgments (`judge.batch`, 8 in flight, fake model at 0 ms, 1k episodes on disk) is timed
three ways, in this order and then again in reverse, medians per way:
- each judgment's thread runs the model itself (how the local MiniLM ran before it had a thread);
- every pass on the model's own thread, one query per pass;
- every pass on the model's thread, the queries that wait sharing one pass (the product's default).

Then the vectors: a grouped query is padded next to others, so its vector may differ from the one it
gets alone by float rounding. Neighbour agreement@5 compares the top 5 of real texts (first paragraphs
of installed packages' docstrings) among real documents, with each query embedded alone and grouped.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from benchmarks.context import RunContext
from benchmarks.corpus import EpisodeCorpus
from benchmarks.edge import real_texts
from benchmarks.fakes import LatencyChatModel
from benchmarks.judge_overhead import learn_guidelines
from benchmarks.report import ScenarioResult, Target
from benchmarks.workload import judge_spec, judged_example
from memalign_graph import MemAlignJudge, QdrantEpisodicStore
from memalign_graph.local_embeddings import LocalMiniLM
from memalign_graph.query_groups import QueryGroups

COLUMNS = [
    ("way", "how queries reach the model"),
    ("judgments", "judgments"),
    ("in_flight", "in flight"),
    ("wall_s", "wall s (median of runs)"),
    ("ms_per_judgment", "ms per judgment"),
    ("passes", "model passes"),
    ("queries_per_pass", "queries per pass"),
]
EPISODES = 1_000
IN_FLIGHT = 8
JUDGMENTS = 64
AGREEMENT_DOCUMENTS = 1_000
AGREEMENT_QUERIES = 200


class CallerThreadMiniLM(Embeddings):
    """The local MiniLM as it ran before its own thread: each caller runs the loaded model itself."""

    def __init__(self, minilm: LocalMiniLM) -> None:
        self.model = minilm.loaded_model()
        self.passes = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.passes += 1
        return self.model.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        self.passes += 1
        return self.model.embed_query(text)


class ThroughModelThread(Embeddings):
    """Texts through a model thread's passes, without the local MiniLM's memory of recent query texts."""

    def __init__(self, groups: QueryGroups) -> None:
        self.groups = groups

    @property
    def passes(self) -> int:
        return self.groups.passes

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.groups.embed_many(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.groups.embed(text)


def run(context: RunContext) -> ScenarioResult:
    result = ScenarioResult(
        name="minilm_queries", title="The local MiniLM when judgments run together", columns=COLUMNS
    )
    minilm = context.minilm()
    if not isinstance(minilm, LocalMiniLM):
        result.notes.append("Skipped: no local MiniLM in this preset.")
        return result
    corpus = EpisodeCorpus(home=context.folder("minilm-queries"))
    corpus.grow_to(EPISODES)
    ways: dict[str, Embeddings] = {
        "each judgment's thread runs the model (before)": CallerThreadMiniLM(minilm),
        "model thread, one query per pass": ThroughModelThread(
            QueryGroups(minilm.loaded_model().embed_documents, max_group=1, name="benchmark-ungrouped")
        ),
        "model thread, waiting queries share a pass (now)": ThroughModelThread(minilm.passes),
    }
    timings: dict[str, list[tuple[float, int]]] = {way: [] for way in ways}
    store = QdrantEpisodicStore(path=corpus.episodes_path)
    try:
        learn_guidelines(corpus, store, context)
        offset = 0
        for order in (list(ways), list(reversed(ways))):
            for way in order:
                offset += JUDGMENTS
                timings[way].append(_batch(corpus, store, ways[way], offset))
    finally:
        store.close()
    for way, runs in timings.items():
        wall = statistics.median(seconds for seconds, _ in runs)
        passes = statistics.median(count for _, count in runs)
        result.rows.append(
            {
                "way": way,
                "judgments": JUDGMENTS,
                "in_flight": IN_FLIGHT,
                "wall_s": wall,
                "ms_per_judgment": wall / JUDGMENTS * 1000,
                "passes": passes,
                "queries_per_pass": JUDGMENTS / passes if passes else None,
            }
        )
    before, now = result.rows[0], result.rows[-1]
    agreement = _agreement(minilm)
    result.targets.append(
        Target(
            name="queries of judgments run together",
            goal="grouping keeps each query's neighbours (agreement@5 >= 0.99) and costs less per judgment",
            measured=(
                f"{now['ms_per_judgment']:.1f} ms per judgment ({before['ms_per_judgment']:.1f} before), "
                f"{now['queries_per_pass']:.1f} queries per pass; neighbour agreement@5 {agreement:.3f}"
            ),
            met=agreement >= 0.99 and now["ms_per_judgment"] < before["ms_per_judgment"],
        )
    )
    result.notes += [
        f"{JUDGMENTS} judgments per run through judge.batch, max_concurrency {IN_FLIGHT}, fake model at 0 ms, "
        f"{EPISODES:,} synthetic episodes in Qdrant local mode, k = 5; each run judges texts no earlier run did. "
        "Two runs per way (in one order, then the reverse), medians.",
        f"Neighbour agreement@5: {AGREEMENT_QUERIES} query texts, each embedded alone and again {IN_FLIGHT} at "
        f"a time through the model thread, ranked against {AGREEMENT_DOCUMENTS:,} document texts (the first "
        "paragraphs of the installed packages' docstrings); the share of each query's top 5 the two agree on.",
    ]
    return result


def _batch(corpus: EpisodeCorpus, store: QdrantEpisodicStore, embeddings: Any, offset: int) -> tuple[float, int]:
    examples = [judged_example(200_000 + offset + index) for index in range(JUDGMENTS)]
    with MemAlignJudge(
        judge_spec(), LatencyChatModel(), embeddings=embeddings, episodic_store=store, home=corpus.home
    ) as judge:
        judge.judge(**judged_example(300_000 + offset))  # warm the semantic-memory cache
        passes_before = embeddings.passes
        started = time.perf_counter()
        verdicts = judge.batch(examples, max_concurrency=IN_FLIGHT)
        seconds = time.perf_counter() - started
    if any(isinstance(verdict, Exception) for verdict in verdicts):
        raise RuntimeError("a judgment failed in the minilm_queries benchmark")
    return seconds, embeddings.passes - passes_before


def _agreement(minilm: LocalMiniLM) -> float:
    texts = real_texts(AGREEMENT_DOCUMENTS + AGREEMENT_QUERIES)
    documents = np.array(minilm.embed_documents(texts[:AGREEMENT_DOCUMENTS]))
    queries = texts[AGREEMENT_DOCUMENTS:]
    alone = np.array([minilm.passes.embed(text) for text in queries])
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        grouped = np.array(list(pool.map(minilm.passes.embed, queries)))
    shared = [
        len(set(np.argsort(-(documents @ a))[:5]) & set(np.argsort(-(documents @ g))[:5])) / 5
        for a, g in zip(alone, grouped, strict=True)
    ]
    return float(np.mean(shared))
