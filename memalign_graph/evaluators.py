"""openevals-style factories: an aligned judge as an evaluator for `langsmith.evaluate`, openevals code,
or `langsmith.evaluate_comparative`, in one call.

Each opens a `MemAlignJudge` on the judge's memory (under `home`, or `MEMALIGN_HOME`) and returns its
evaluator; the judge and its stores stay open as long as the evaluator lives. To close them at a known
point, open the judge yourself: `with MemAlignJudge(spec, model) as judge: judge.as_evaluator()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel

from memalign_graph.context import DEFAULT_NAMESPACE
from memalign_graph.evaluator_results import AsyncEvaluator, ComparativeEvaluator, Evaluator, LabelScores
from memalign_graph.judge import MemAlignJudge
from memalign_graph.spec import JudgeSpec


@contextmanager
def _closed_on_error(judge: MemAlignJudge) -> Iterator[None]:
    """A refused option (a bad `scores` map) must not leave the judge's stores open and locked."""
    try:
        yield
    except BaseException:
        judge.close()
        raise


def create_memalign_evaluator(
    spec: JudgeSpec,
    model: str | BaseChatModel | None = None,
    *,
    embeddings: str | Embeddings | None = None,
    home: str | Path | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    scores: LabelScores | None = None,
    **judge_options: Any,
) -> Evaluator:
    """An evaluator `(*, inputs, outputs, reference_outputs=None, **kwargs) -> EvaluationResult dict`.

    `scores` maps a categorical or pairwise judge's labels to numbers (`{"yes": 1, "no": 0}`); without it
    the label is the result's `value` and its `score` is None. `judge_options` go to `MemAlignJudge`.
    """
    judge = MemAlignJudge(spec, model, embeddings=embeddings, home=home, namespace=namespace, **judge_options)
    with _closed_on_error(judge):
        return judge.as_evaluator(scores=scores)


def create_async_memalign_evaluator(
    spec: JudgeSpec,
    model: str | BaseChatModel | None = None,
    *,
    embeddings: str | Embeddings | None = None,
    home: str | Path | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    scores: LabelScores | None = None,
    **judge_options: Any,
) -> AsyncEvaluator:
    """`create_memalign_evaluator` for `langsmith.aevaluate` and async code."""
    judge = MemAlignJudge(spec, model, embeddings=embeddings, home=home, namespace=namespace, **judge_options)
    with _closed_on_error(judge):
        return judge.as_async_evaluator(scores=scores)


def create_comparative_memalign_evaluator(
    spec: JudgeSpec,
    model: str | BaseChatModel | None = None,
    *,
    embeddings: str | Embeddings | None = None,
    home: str | Path | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    both_orders: bool = False,
    output_key: str | None = None,
    **judge_options: Any,
) -> ComparativeEvaluator:
    """A pairwise judge as a `langsmith.evaluate_comparative` evaluator `(runs, example)`; see
    `MemAlignJudge.as_comparative_evaluator`."""
    judge = MemAlignJudge(spec, model, embeddings=embeddings, home=home, namespace=namespace, **judge_options)
    with _closed_on_error(judge):
        return judge.as_comparative_evaluator(both_orders=both_orders, output_key=output_key)
