"""`python -m benchmarks.local_asearch`: should local mode's `asearch` run inline or in a worker thread?

qdrant-client's local mode is synchronous numpy work, so an async search either runs it inline on the
event loop (blocking the loop for the search's few milliseconds) or hands it to `asyncio.to_thread`
(the loop stays free, but every search pays a thread hop and competes for the GIL). This measures both
on the judging path's shape: tasks that await a model call (a sleep) and then search, many in flight.

Reports wall time, the search's own latency as its caller sees it, and event-loop lag (how late a
10 ms ticker wakes up: what every other coroutine on the loop waits). Not part of `python -m benchmarks`:
it answers one design question, whose numbers are in `QdrantEpisodicStore.asearch`'s docstring.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from benchmarks.workload import random_unit_vectors, synthetic_records
from memalign_graph import QdrantEpisodicStore
from memalign_graph.records import Episode

Search = Callable[[list[float]], Awaitable[list[Episode]]]
TICK = 0.01


def strategies(store: QdrantEpisodicStore, k: int) -> dict[str, Search]:
    async def inline(vector: list[float]) -> list[Episode]:
        return store.search("judge", "bench", vector, k)

    async def to_thread(vector: list[float]) -> list[Episode]:
        return await asyncio.to_thread(store.search, "judge", "bench", vector, k)

    return {"inline": inline, "to_thread": to_thread}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def workload(search: Search, queries: list[list[float]], *, in_flight: int, model_s: float) -> dict[str, float]:
    """Each task awaits a model call, then searches; at most `in_flight` tasks at once."""
    lags: list[float] = []
    latencies: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            asked = time.perf_counter()
            await asyncio.sleep(TICK)
            lags.append(time.perf_counter() - asked - TICK)

    gate = asyncio.Semaphore(in_flight)

    async def judgment(vector: list[float]) -> None:
        async with gate:
            await asyncio.sleep(model_s)
            began = time.perf_counter()
            await search(vector)
            latencies.append(time.perf_counter() - began)

    watcher = asyncio.create_task(ticker())
    began = time.perf_counter()
    await asyncio.gather(*(judgment(vector) for vector in queries))
    wall = time.perf_counter() - began
    done.set()
    await watcher
    return {
        "wall_s": wall,
        "search_p50_ms": 1000 * statistics.median(latencies),
        "search_p99_ms": 1000 * percentile(latencies, 0.99),
        "lag_p50_ms": 1000 * statistics.median(lags),
        "lag_p99_ms": 1000 * percentile(lags, 0.99),
        "lag_max_ms": 1000 * max(lags),
    }


def fill(store: QdrantEpisodicStore, points: int, dimensions: int) -> None:
    vectors = random_unit_vectors(points, dimensions, seed=1)
    records = list(synthetic_records(0, points))
    for start in range(0, points, 1000):
        chunk = records[start : start + 1000]
        store.upsert(
            "judge",
            "bench",
            chunk,
            [record["inputs"] for record in chunk],
            vectors[start : start + 1000].tolist(),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.local_asearch", description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--dimensions", type=int, default=384)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each strategy, interleaved; best wall kept")
    args = parser.parse_args(argv)

    scenarios = [  # (name, tasks, in flight, model seconds)
        ("burst: 200 at once, 0.3 s model", 200, 200, 0.3),
        ("steady: 1000 tasks, 64 in flight, 0.3 s model", 1000, 64, 0.3),
        ("search only: 1000 tasks, 64 in flight", 1000, 64, 0.0),
    ]
    with tempfile.TemporaryDirectory() as home, QdrantEpisodicStore(path=Path(home) / "q") as store:
        began = time.perf_counter()
        fill(store, args.points, args.dimensions)
        print(f"filled {store.count('judge', 'bench')} points in {time.perf_counter() - began:.1f} s")
        queries = random_unit_vectors(1000, args.dimensions, seed=2).tolist()
        serial = []
        for vector in queries[:200]:
            began = time.perf_counter()
            store.search("judge", "bench", vector, args.k)
            serial.append(time.perf_counter() - began)
        print(f"one search, serial: p50 {1000 * statistics.median(serial):.2f} ms\n")
        searches = strategies(store, args.k)
        print("| scenario | strategy | wall s | search p50 ms | search p99 ms | lag p50 ms | lag p99 ms | lag max ms |")
        print("|---|---|---|---|---|---|---|---|")
        for name, tasks, in_flight, model_s in scenarios:
            runs: dict[str, list[dict[str, float]]] = {strategy: [] for strategy in searches}
            for _ in range(args.repeats):
                for strategy, search in searches.items():
                    result = asyncio.run(workload(search, queries[:tasks], in_flight=in_flight, model_s=model_s))
                    runs[strategy].append(result)
            for strategy, results in runs.items():
                best = min(results, key=lambda result: result["wall_s"])
                cells = " | ".join(
                    f"{best[key]:.2f}"
                    for key in ("wall_s", "search_p50_ms", "search_p99_ms", "lag_p50_ms", "lag_p99_ms", "lag_max_ms")
                )
                print(f"| {name} | {strategy} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
