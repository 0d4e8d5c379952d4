"""What every scenario shares: sizes, the LLM latency, a scratch folder, embeddings, the episode corpus.

Sizes come in presets so one code path serves the full run, `--quick`, and the smoke test (`tiny`).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from benchmarks.corpus import EpisodeCorpus
from memalign_graph.fake_model import FakeEmbeddings
from memalign_graph.memory.episodic import EpisodicStore
from memalign_graph.records import Episode


@dataclass(frozen=True)
class Sizes:
    """How big each scenario runs. The default preset is the issue's; the others shrink it."""

    latency_s: float = 0.3
    align_ns: tuple[int, ...] = (10, 50, 200, 1000)
    align_minilm_ns: tuple[int, ...] = (10, 50, 200)
    align_setting: tuple[int, int] = (64, 16)  # (max_concurrency, batch_size) for the N series
    align_sweep_n: int = 1000
    # (16, 32) is the facade's default (DEFAULT_MAX_CONCURRENCY, AlignmentContext.batch_size).
    align_sweep: tuple[tuple[int, int], ...] = ((4, 8), (16, 8), (16, 32), (64, 16), (128, 8), (16, 64))
    incremental_rounds: int = 10
    incremental_per_round: int = 100
    kill_trials: int = 20
    episode_counts: tuple[int, ...] = (1_000, 10_000, 100_000)
    judge_samples: int = 100
    minilm_samples: int = 30
    token_steps: tuple[int, ...] = (0, 10, 50, 100, 200, 500, 1000)
    token_judgments: int = 20
    batch_judgments: int = 1000
    batch_runs: tuple[tuple[str, int], ...] = (
        ("batch", 16),
        ("batch", 32),
        ("batch", 64),
        ("abatch", 16),
        ("abatch", 32),
        ("abatch", 64),
    )
    scale_points: int = 100_000
    query_samples: int = 20
    edge_points: int = 100_000
    edge_query_samples: int = 200
    recall_points: int = 10_000
    recall_queries: int = 200
    vs_mlflow_n: int = 1000
    vs_mlflow_small: int = 50
    vs_mlflow_added: int = 10
    vs_mlflow_runs: int = 3
    vs_mlflow_judgments: int = 5
    minilm: bool = True
    startup_runs: int = 5


PRESETS: dict[str, Sizes] = {
    "default": Sizes(),
    "full": Sizes(
        align_minilm_ns=(10, 50, 200, 1000),
    ),
    "quick": Sizes(
        align_ns=(10, 50, 200),
        align_minilm_ns=(50,),
        align_sweep_n=200,
        align_sweep=((4, 8), (64, 16)),
        incremental_rounds=3,
        episode_counts=(1_000, 10_000),
        judge_samples=40,
        minilm_samples=10,
        token_steps=(0, 10, 50, 200),
        token_judgments=10,
        batch_judgments=200,
        batch_runs=(("batch", 16), ("abatch", 16)),
        scale_points=10_000,
        query_samples=10,
        edge_points=10_000,
        edge_query_samples=50,
        recall_points=2_000,
        recall_queries=50,
        vs_mlflow_n=200,
        vs_mlflow_runs=1,
        kill_trials=4,
        startup_runs=2,
    ),
    "tiny": Sizes(
        latency_s=0.01,
        align_ns=(6,),
        align_minilm_ns=(),
        align_setting=(4, 4),
        align_sweep_n=12,
        align_sweep=((4, 4),),
        incremental_rounds=2,
        incremental_per_round=5,
        kill_trials=0,
        episode_counts=(300,),
        judge_samples=4,
        minilm_samples=0,
        token_steps=(0, 5),
        token_judgments=2,
        batch_judgments=8,
        batch_runs=(("batch", 4), ("abatch", 4)),
        scale_points=300,
        query_samples=2,
        edge_points=300,
        edge_query_samples=5,
        recall_points=0,
        recall_queries=0,
        vs_mlflow_n=12,
        vs_mlflow_small=4,
        vs_mlflow_added=2,
        vs_mlflow_runs=1,
        vs_mlflow_judgments=1,
        minilm=False,
        startup_runs=1,
    ),
}


@dataclass
class RunContext:
    """One benchmark run: its sizes, scratch folder, the shared corpus and lazily loaded embeddings."""

    sizes: Sizes
    workdir: Path
    qdrant_url: str | None = None
    _minilm: Embeddings | None = None
    minilm_load_s: float | None = None
    _corpus: EpisodeCorpus | None = None
    shared: dict[str, Any] = field(default_factory=dict)  # figures one scenario hands another
    _cleanup: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def create(cls, sizes: Sizes, *, qdrant_url: str | None = None, workdir: Path | None = None) -> RunContext:
        """A context over a new scratch folder (removed by `close`), outside the repository on purpose:
        `langgraph dev` reloads on file changes under the project."""
        folder = workdir or Path(tempfile.mkdtemp(prefix="memalign-bench-"))
        context = cls(sizes=sizes, workdir=folder, qdrant_url=qdrant_url)
        if workdir is None:
            context._cleanup.append(lambda: shutil.rmtree(folder, ignore_errors=True))
        return context

    def folder(self, name: str) -> Path:
        path = self.workdir / f"{name}-{len(list(self.workdir.iterdir()))}"
        path.mkdir(parents=True)
        return path

    def fast_embeddings(self) -> Embeddings:
        """The package's hashed bag-of-words fake: ~0.2 ms a text, no model."""
        return FakeEmbeddings()

    def minilm(self) -> Embeddings | None:
        """The real all-MiniLM-L6-v2 (loaded once; its load time is reported), or None when disabled."""
        if not self.sizes.minilm:
            return None
        if self._minilm is None:
            from memalign_graph.config import local_minilm_embeddings

            started = time.perf_counter()
            model = local_minilm_embeddings()
            model.embed_query("warm up")
            self.minilm_load_s = time.perf_counter() - started
            self._minilm = model
        return self._minilm

    def corpus(self) -> EpisodeCorpus:
        """The memory folder with synthetic episodes shared by judge_overhead and scale."""
        if self._corpus is None:
            self._corpus = EpisodeCorpus(home=self.folder("corpus"))
        return self._corpus

    def close(self) -> None:
        while self._cleanup:
            self._cleanup.pop()()


class TimedEpisodicStore:
    """Wraps an episodic store to time its writes and searches (the graphs see the same protocol).

    Methods it does not time are forwarded as they are, so the wrapper keeps up with the protocol.
    """

    def __init__(self, inner: EpisodicStore) -> None:
        self.inner = inner
        self.upserted = 0
        self.upsert_s = 0.0
        self.searches = 0
        self.search_s = 0.0
        self.last_search_s = 0.0

    def upsert(
        self,
        judge: str,
        namespace: str,
        records: Any,
        texts: Any,
        vectors: Any,
    ) -> None:
        started = time.perf_counter()
        self.inner.upsert(judge, namespace, records, texts, vectors)
        self.upsert_s += time.perf_counter() - started
        self.upserted += len(records)

    def delete(self, judge: str, namespace: str, feedback_ids: Any) -> None:
        self.inner.delete(judge, namespace, feedback_ids)

    def search(self, judge: str, namespace: str, vector: list[float], k: int) -> list[Episode]:
        started = time.perf_counter()
        found = self.inner.search(judge, namespace, vector, k)
        self.last_search_s = time.perf_counter() - started
        self.search_s += self.last_search_s
        self.searches += 1
        return found

    def feedback_ids(self, judge: str, namespace: str) -> set[str]:
        return self.inner.feedback_ids(judge, namespace)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def reset(self) -> None:
        self.upserted = self.searches = 0
        self.upsert_s = self.search_s = 0.0
