"""A verdict as the evaluation tools take it: a LangSmith / openevals evaluator result, and a comparison.

A verdict's `score` is the judge's typed value: a label for categorical and pairwise judges. LangSmith
takes only a bool, a number or None as a score (an `EvaluationResult` with a string score is refused),
so the evaluator result moves a label to `value` and gives `score` only from a label -> score map the
user chose (`scores=`); nothing is guessed. Evaluators read `reference_outputs` (what LangSmith and
openevals pass) as the judge's `expectations`, when the judge reads expectations.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, NotRequired, Protocol, TypedDict, cast

from langsmith.run_helpers import get_tracing_context, tracing_context

from memalign_graph.errors import InvalidValueError
from memalign_graph.records import Verdict, VerdictMetadata
from memalign_graph.spec import PAIRWISE_CHOICES, Boolean, Categorical, JudgeSpec, Pairwise

ScoreValue = bool | int | float
LabelScores = Mapping[str, ScoreValue]
# The score a comparison gives each run: the preferred one 1, the other 0, a tie half each.
COMPARISON_SCORES = {"A": (1, 0), "B": (0, 1), "tie": (0.5, 0.5)}
_SWAPPED = {"A": "B", "B": "A", "tie": "tie"}


class EvaluatorResult(TypedDict):
    """A LangSmith `EvaluationResult` (and openevals result) as a dict: valid for every output type."""

    key: str
    score: ScoreValue | None
    value: NotRequired[str]
    comment: str
    metadata: VerdictMetadata


class ComparisonResult(TypedDict):
    """A LangSmith `ComparisonEvaluationResult` as a dict: a score per run, and the rationale."""

    key: str
    scores: dict[Any, float | int | None]
    comment: str


class Judging(Protocol):
    """What an evaluator needs of a judge (`MemAlignJudge` has it)."""

    spec: JudgeSpec

    def judge(self, *, inputs: Any, outputs: Any = None, expectations: Any = None) -> Verdict: ...

    async def ajudge(self, *, inputs: Any, outputs: Any = None, expectations: Any = None) -> Verdict: ...

    def batch(
        self, examples: Sequence[dict[str, Any]], *, max_concurrency: int | None = None, return_exceptions: bool = False
    ) -> list[Verdict | Exception]: ...


Evaluator = Callable[..., EvaluatorResult]
AsyncEvaluator = Callable[..., Awaitable[EvaluatorResult]]
ComparativeEvaluator = Callable[..., ComparisonResult]


def check_scores(spec: JudgeSpec, scores: LabelScores | None) -> dict[str, ScoreValue] | None:
    """The label -> score map, checked: only for labelled judges, every label mapped, every score a number."""
    if scores is None:
        return None
    output = spec.output
    if not isinstance(output, (Categorical, Pairwise)):
        raise InvalidValueError(
            f"scores: judge {spec.name!r} gives a {output.kind} verdict, already a score; "
            "scores= maps the labels of categorical and pairwise judges."
        )
    labels = output.labels if isinstance(output, Categorical) else PAIRWISE_CHOICES
    unknown = sorted(set(scores) - set(labels))
    missing = [label for label in labels if label not in scores]
    if unknown or missing:
        raise InvalidValueError(
            f"scores: map every label of judge {spec.name!r} {list(labels)} to a number"
            + (f"; unknown {unknown}" if unknown else "")
            + (f"; missing {missing}" if missing else "")
            + f", e.g. scores={{{labels[0]!r}: 1, {labels[1]!r}: 0}}."
        )
    wrong = [label for label, score in scores.items() if not isinstance(score, (bool, int, float))]
    if wrong:
        raise InvalidValueError(f"scores: the scores of {wrong} are not numbers; give a bool, int or float.")
    return dict(scores)


def evaluator_result(verdict: Verdict, spec: JudgeSpec, scores: LabelScores | None = None) -> EvaluatorResult:
    """A verdict as an evaluator result: a label goes to `value`, its score (if mapped) to `score`."""
    result = EvaluatorResult(key=verdict["key"], score=None, comment=verdict["comment"], metadata=verdict["metadata"])
    if isinstance(spec.output, (Categorical, Pairwise)):
        result["value"] = verdict["score"]
        result["score"] = scores[verdict["score"]] if scores is not None else None
    else:
        result["score"] = bool(verdict["score"]) if isinstance(spec.output, Boolean) else verdict["score"]
    return result


def judged_example(spec: JudgeSpec, inputs: Any, outputs: Any, reference_outputs: Any) -> dict[str, Any]:
    """The judged example from an evaluator's arguments; the reference is expectations if the judge reads them."""
    return {
        "inputs": inputs,
        "outputs": outputs,
        "expectations": reference_outputs if "expectations" in spec.fields else None,
    }


def offline_when_local() -> AbstractContextManager[Any]:
    """No tracing of the judgment when LangSmith traces locally (`evaluate(..., upload_results=False)`).

    langchain-core takes LangSmith's "local" tracing mode for "on" and uploads the judging graph's runs
    through the evaluation's client; a judgment inside an evaluation that uploads nothing must not either.
    """
    if get_tracing_context()["enabled"] == "local":
        return tracing_context(enabled=False)
    return nullcontext()


def make_evaluator(judge: Judging, *, scores: LabelScores | None = None) -> Evaluator:
    """An evaluator with the openevals / LangSmith signature over this judge."""
    spec, mapped = judge.spec, check_scores(judge.spec, scores)

    def memalign_evaluator(
        *, inputs: Any, outputs: Any = None, reference_outputs: Any = None, **kwargs: Any
    ) -> EvaluatorResult:
        with offline_when_local():
            verdict = judge.judge(**judged_example(spec, inputs, outputs, reference_outputs))
        return evaluator_result(verdict, spec, mapped)

    memalign_evaluator.__name__ = memalign_evaluator.__qualname__ = spec.name
    return memalign_evaluator


def make_async_evaluator(judge: Judging, *, scores: LabelScores | None = None) -> AsyncEvaluator:
    """`make_evaluator` for `langsmith.aevaluate` and async openevals code."""
    spec, mapped = judge.spec, check_scores(judge.spec, scores)

    async def memalign_evaluator(
        *, inputs: Any, outputs: Any = None, reference_outputs: Any = None, **kwargs: Any
    ) -> EvaluatorResult:
        with offline_when_local():
            verdict = await judge.ajudge(**judged_example(spec, inputs, outputs, reference_outputs))
        return evaluator_result(verdict, spec, mapped)

    memalign_evaluator.__name__ = memalign_evaluator.__qualname__ = spec.name
    return memalign_evaluator


def make_comparative_evaluator(
    judge: Judging, *, both_orders: bool = False, output_key: str | None = None
) -> ComparativeEvaluator:
    """A comparative evaluator (`langsmith.evaluate_comparative`) over a pairwise judge.

    It takes the two runs (and the dataset example), judges `[first, second]`, and scores the preferred
    run 1 and the other 0 (a tie 0.5 each). `both_orders=True` judges `[second, first]` too and reports a
    preference only when both orders agree; a position-dependent verdict scores both runs None.
    `output_key` picks one key of each run's outputs (default: the whole outputs).
    """
    spec = judge.spec
    if not isinstance(spec.output, Pairwise):
        raise InvalidValueError(
            f"comparative evaluator: judge {spec.name!r} gives a {spec.output.kind} verdict; "
            "a comparison needs a pairwise judge (output=Pairwise())."
        )

    def response(run: Any) -> Any:
        outputs = getattr(run, "outputs", None) or {}
        if output_key is None:
            return outputs
        if output_key not in outputs:
            raise InvalidValueError(
                f"comparative evaluator: run {run.id} has no output {output_key!r} (it has {sorted(outputs)}); "
                "set output_key= to one of them, or None for the whole outputs."
            )
        return outputs[output_key]

    def memalign_comparison(runs: Sequence[Any], example: Any = None) -> ComparisonResult:
        if len(runs) != 2:
            raise InvalidValueError(
                f"comparative evaluator: a pairwise judge compares two runs, got {len(runs)}; compare two experiments."
            )
        first, second = runs
        inputs = getattr(example, "inputs", None) or first.inputs
        reference = getattr(example, "outputs", None)
        a, b = response(first), response(second)
        examples = [judged_example(spec, inputs, [a, b], reference)]
        if both_orders:
            examples.append(judged_example(spec, inputs, [b, a], reference))
        with offline_when_local():
            verdicts = judge.batch(examples)
        forward = cast(Verdict, verdicts[0])  # without return_exceptions, never an exception
        choice: str | None = forward["score"]
        comment = forward["comment"]
        if both_orders:
            backward = cast(Verdict, verdicts[1])
            swapped = _SWAPPED[backward["score"]]
            comment = f"{comment}\n[order swapped] {backward['comment']}"
            if swapped != choice:
                choice = None
                comment = f"position-dependent: {forward['score']!r} in order, {backward['score']!r} swapped\n{comment}"
        score_first, score_second = COMPARISON_SCORES[choice] if choice is not None else (None, None)
        return ComparisonResult(key=spec.name, scores={first.id: score_first, second.id: score_second}, comment=comment)

    memalign_comparison.__name__ = memalign_comparison.__qualname__ = spec.name
    return memalign_comparison
