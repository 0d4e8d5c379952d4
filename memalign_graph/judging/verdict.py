"""The verdict a judgment asks for, and the only way an answer becomes one: held to the judge's type.

A bad answer is never turned into a verdict: it is sent back to the model with the reason, until the
attempts run out, and then reported with every raw answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memalign_graph.errors import InvalidValueError, VerdictParseError
from memalign_graph.judging.state import JudgeState
from memalign_graph.prompts import JUSTIFICATION_FIELD
from memalign_graph.records import Verdict
from memalign_graph.spec import JudgeSpec


def verdict_schema(spec: JudgeSpec) -> dict[str, Any]:
    """The JSON schema of a verdict: rationale first, so the model reasons before it decides."""
    return {
        "title": "verdict",
        "description": f"The verdict of judge {spec.name}.",
        "type": "object",
        "properties": {
            "rationale": {"type": "string", "description": JUSTIFICATION_FIELD},
            "value": {**spec.output.json_schema(), "description": spec.output.describe()},
        },
        "required": ["rationale", "value"],
        "additionalProperties": False,
    }


def parse_verdict(spec: JudgeSpec, state: JudgeState, *, namespace: str, max_attempts: int) -> dict[str, Any]:
    """The state update of `parse`: a verdict, or the problem to retry with; raises when attempts run out."""
    error = state.get("error")
    answer: Mapping[str, Any] = state.get("answer") or {}
    value: Any = None
    if error is None:
        try:
            value = spec.output.validate_value(answer.get("value"), field="value")
        except InvalidValueError as invalid:
            error = str(invalid)
    if error is None:
        return {
            "verdict": _verdict(spec, value, answer, state, namespace),
            "error": None,
        }
    if state["attempts"] >= max_attempts:
        raise VerdictParseError(
            f"Judge {spec.name!r} gave no valid verdict in {state['attempts']} attempts; last problem: {error}",
            attempts=state["attempts"],
            raw_outputs=list(state.get("raw_outputs", [])),
        )
    return {"error": error}


def _verdict(spec: JudgeSpec, value: Any, answer: Mapping[str, Any], state: JudgeState, namespace: str) -> Verdict:
    memory = state["working_memory"]
    return Verdict(
        key=spec.name,
        score=value,
        comment=str(answer.get("rationale") or "").strip(),
        metadata={
            "judge": spec.name,
            "namespace": namespace,
            "guideline_ids": memory["guideline_ids"],
            "episode_ids": memory["episode_ids"],
            "attempts": state["attempts"],
            "structured_output": state.get("structured_output", ""),
            "in_memory": list(state.get("in_memory", [])),
            "excluded_ids": list(state.get("excluded", [])),
        },
    )
