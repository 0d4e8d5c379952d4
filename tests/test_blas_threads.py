"""Local mode's searches run numpy on one BLAS thread while a model runs in this process, and concurrent
searches share the limit: it holds until the last leaves, and what was there before comes back."""

from __future__ import annotations

import threading

import numpy as np  # noqa: F401  (loads the BLAS that threadpoolctl finds)
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from memalign_graph import QdrantEpisodicStore
from memalign_graph.memory import blas_threads, qdrant_store
from memalign_graph.records import FeedbackRecord


def blas_threads_now() -> int:
    return min(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")


@pytest.fixture
def two_blas_threads():
    if not any(info["user_api"] == "blas" for info in threadpool_info()):
        pytest.skip("numpy has no BLAS threadpoolctl can see")
    with threadpool_limits(limits=2, user_api="blas"):
        yield


def test_concurrent_searches_hold_one_limit_until_the_last_leaves(two_blas_threads) -> None:
    first_inside, second_inside, first_left = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, int] = {}

    def first() -> None:
        with blas_threads.one_blas_thread():
            first_inside.set()
            second_inside.wait()
        first_left.set()

    def second() -> None:
        first_inside.wait()
        with blas_threads.one_blas_thread():
            second_inside.set()
            first_left.wait()
            seen["after the first left"] = blas_threads_now()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert seen == {"after the first left": 1}
    assert blas_threads_now() == 2


def test_a_local_search_takes_the_limit_only_when_a_model_runs_here(two_blas_threads, monkeypatch) -> None:
    seen: list[int] = []
    real_query = qdrant_store.QdrantClient.query_points

    def query_points(self, *args, **kwargs):
        seen.append(blas_threads_now())
        return real_query(self, *args, **kwargs)

    monkeypatch.setattr(qdrant_store.QdrantClient, "query_points", query_points)
    store = QdrantEpisodicStore()
    record = FeedbackRecord(
        id="a",
        inputs="x",
        outputs="y",
        expectations=None,
        value=True,
        rationale=None,
        judge_verdict=False,
        judge_was_wrong=True,
        content_hash="h-a",
        created_at="2026-01-01T00:00:00+00:00",
        updated_at="2026-01-01T00:00:00+00:00",
    )
    store.upsert("judge", "default", [record], ["x"], [[1.0, 0.0, 0.0]])
    for model_here in (False, True):
        monkeypatch.setattr(qdrant_store, "model_in_process", lambda here=model_here: here)
        assert [episode["feedback_id"] for episode in store.search("judge", "default", [1.0, 0.1, 0.0], 1)] == ["a"]
    store.close()
    assert seen == [2, 1]
    assert blas_threads_now() == 2
