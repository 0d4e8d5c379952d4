"""openevals few-shot examples as feedback: `score` is the expert's value, `reasoning` the rationale."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from memalign_graph.errors import InvalidValueError
from memalign_graph.feedback import Feedback
from memalign_graph.records import as_feedback


def from_openevals(examples: Iterable[Mapping[str, Any]]) -> list[Feedback]:
    """Feedback from openevals `FewShotExample`s (`{inputs, outputs, score, reasoning}`).

    They carry no id, so each gets the judged example's hash: the same example imported again changes
    nothing, and the same example with another score replaces the old one.
    """
    feedback = []
    for index, example in enumerate(examples):
        where = f"openevals example {index}"
        if not isinstance(example, Mapping) or "inputs" not in example:
            raise InvalidValueError(
                f"{where}: not a few-shot example; give dicts like "
                "{'inputs': ..., 'outputs': ..., 'score': ..., 'reasoning': ...}."
            )
        unknown = sorted(set(example) - {"inputs", "outputs", "score", "reasoning"})
        if unknown:
            raise InvalidValueError(
                f"{where}: unknown keys {unknown}; a few-shot example has inputs, outputs, score and reasoning."
            )
        record = {
            "inputs": example["inputs"],
            "outputs": example.get("outputs"),
            "value": example.get("score"),
            "rationale": example.get("reasoning"),
        }
        feedback.append(as_feedback(record, where=where))
    return feedback
