"""An in-process embedding model's passes run on one thread, and queries that wait share a pass.

Coordinated with events and a queue that reports what it holds: no sleeps."""

from __future__ import annotations

import queue
import threading

import pytest

from memalign_graph.query_groups import QueryGroups


class ReportingQueue(queue.Queue):
    """The model thread's queue, telling the test once it holds `expected` jobs."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.expected = expected
        self.full_enough = threading.Event()

    def put(self, item, block=True, timeout=None) -> None:
        super().put(item, block, timeout)
        if self.qsize() >= self.expected:
            self.full_enough.set()


class GatedModel:
    """Vectors that name their text; the first pass waits until the test opens the gate."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.gate = threading.Event()
        self.passes: list[list[str]] = []
        self.threads: set[int] = set()
        self.fail_on = fail_on
        self.first_pass_started = threading.Event()

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.threads.add(threading.get_ident())
        self.passes.append(list(texts))
        self.first_pass_started.set()
        self.gate.wait(timeout=60)
        if self.fail_on in texts:
            raise ValueError(f"cannot embed {self.fail_on!r}")
        return [[float(ord(text[0])), float(len(text))] for text in texts]


def run_at_once(groups: QueryGroups, model: GatedModel, texts: list[str]) -> dict[str, object]:
    """The first text starts a pass that waits; the rest queue behind it; then the gate opens."""
    waiting = ReportingQueue(expected=len(texts) - 1)
    groups._jobs = waiting  # type: ignore[assignment]
    answers: dict[str, object] = {}

    def ask(text: str) -> None:
        try:
            answers[text] = groups.embed(text)
        except ValueError as error:
            answers[text] = error

    first = threading.Thread(target=ask, args=(texts[0],))
    first.start()
    assert model.first_pass_started.wait(timeout=60)
    others = [threading.Thread(target=ask, args=(text,)) for text in texts[1:]]
    for thread in others:
        thread.start()
    assert waiting.full_enough.wait(timeout=60)
    model.gate.set()
    for thread in [first, *others]:
        thread.join(timeout=60)
    return answers


def test_queries_that_wait_share_the_next_pass_and_each_gets_its_own_vector() -> None:
    model = GatedModel()
    groups = QueryGroups(model)
    answers = run_at_once(groups, model, ["alpha", "beta", "gamma", "delta"])
    assert model.passes[0] == ["alpha"]
    assert sorted(model.passes[1]) == ["beta", "delta", "gamma"]
    assert len(model.passes) == 2
    assert answers == {text: [float(ord(text[0])), float(len(text))] for text in answers}
    assert len(model.threads) == 1 and threading.get_ident() not in model.threads


def test_a_failed_pass_fails_each_of_its_queries_and_the_next_pass_runs() -> None:
    model = GatedModel(fail_on="gamma")
    groups = QueryGroups(model)
    answers = run_at_once(groups, model, ["alpha", "beta", "gamma"])
    assert answers["alpha"] == [97.0, 5.0]
    assert all(isinstance(answers[text], ValueError) for text in ("beta", "gamma"))
    assert groups.embed("delta") == [100.0, 5.0]


def test_documents_take_a_pass_of_their_own_on_the_model_thread() -> None:
    model = GatedModel()
    model.gate.set()
    groups = QueryGroups(model)
    assert groups.embed_many(["one", "two"]) == [[111.0, 3.0], [116.0, 3.0]]
    assert groups.embed("three") == [116.0, 5.0]
    assert groups.embed_many([]) == []
    assert model.passes == [["one", "two"], ["three"]]
    assert len(model.threads) == 1


def test_a_model_that_answers_the_wrong_count_is_an_error() -> None:
    groups = QueryGroups(lambda texts: [])
    with pytest.raises(RuntimeError, match="returned 0 vectors for 1 texts"):
        groups.embed("x")
