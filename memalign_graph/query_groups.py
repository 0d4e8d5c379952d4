"""An in-process embedding model runs on one thread of its own, and waiting queries share its passes.

Judgments run together (`batch`, `abatch`, an evaluation with concurrency) each embed their own
query. On a CPU one forward pass over a group of texts costs far less per text than the same texts
one by one, and passes started from many threads only fight over the cores: each calling thread gets
its own OpenMP team in torch, and a finished team keeps spinning while the next one works. So every
pass runs on one model thread, and the queries that arrived while a pass ran go into the next one,
together.

Nothing is held back to fill a group: a query that finds the model idle is embedded at once, alone,
so a single judgment's latency is what it was plus a hand-off between threads (DSPy's batching, by
contrast, holds a query up to a fixed time).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence

EmbedMany = Callable[[list[str]], Sequence[list[float]]]


class _Job:
    __slots__ = ("texts", "done", "vectors", "error")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.done = threading.Event()
        self.vectors: list[list[float]] = []
        self.error: BaseException | None = None


class QueryGroups:
    """Embeds queries one by one from the caller's view, in groups of those waiting from the model's.

    `embed_many` also runs on the model thread, as a pass of its own (an alignment's documents).
    """

    def __init__(self, embed_many: EmbedMany, *, max_group: int = 32, name: str = "memalign-embedding") -> None:
        self._embed_many = embed_many
        self._max_group = max_group
        self._name = name
        self._jobs: queue.SimpleQueue[tuple[_Job, bool]] = queue.SimpleQueue()
        self._start_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self.passes = 0
        self.queries = 0

    def embed(self, text: str) -> list[float]:
        """One query's vector, from the next pass of the model thread."""
        return self._submit(_Job([text]), groupable=True)[0]

    def embed_many(self, texts: list[str]) -> list[list[float]]:
        """Texts embedded in a pass of their own on the model thread."""
        return self._submit(_Job(list(texts)), groupable=False) if texts else []

    def _submit(self, job: _Job, *, groupable: bool) -> list[list[float]]:
        self._ensure_worker()
        self._jobs.put((job, groupable))
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.vectors

    def _ensure_worker(self) -> None:
        with self._start_lock:
            if self._worker is None or not self._worker.is_alive():  # also after a fork: the thread stayed behind
                self._worker = threading.Thread(target=self._serve, name=self._name, daemon=True)
                self._worker.start()

    def _serve(self) -> None:
        held: tuple[_Job, bool] | None = None
        while True:
            job, groupable = held or self._jobs.get()
            held = None
            group = [job]
            while groupable and len(group) < self._max_group:
                try:
                    following, following_groupable = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if not following_groupable:
                    held = (following, following_groupable)
                    break
                group.append(following)
            self._run(group)

    def _run(self, group: list[_Job]) -> None:
        texts = [text for job in group for text in job.texts]
        try:
            vectors = list(self._embed_many(texts))
            if len(vectors) != len(texts):
                raise RuntimeError(f"the embedding model returned {len(vectors)} vectors for {len(texts)} texts")
            start = 0
            for job in group:
                job.vectors = vectors[start : start + len(job.texts)]
                start += len(job.texts)
        except BaseException as error:  # every waiting caller gets the failure; none waits forever
            for job in group:
                job.error = error
        self.passes += 1
        self.queries += len(group)
        for job in group:
            job.done.set()
