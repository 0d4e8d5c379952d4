"""An expert's feedback on one judged example, and its stable id.

The id is derived from the judged example (inputs, outputs, expectations), not from the expert's
answer: a corrected verdict on the same example gets the same id and so overwrites the old one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from memalign_graph.errors import InvalidValueError


class Feedback(BaseModel):
    """What an expert said about one example: a value, a rationale, or both.

    `judge_verdict` is the judge's own earlier value for the example, when known: an episode where
    it differs from the expert's value is marked as a mistake the judge made.
    """

    model_config = ConfigDict(frozen=True)

    inputs: Any
    outputs: Any = None
    expectations: Any = None
    value: Any = None
    rationale: str | None = None
    id: str | None = Field(default=None, min_length=1, max_length=200)
    judge_verdict: Any = None

    @model_validator(mode="after")
    def _says_something(self) -> Feedback:
        rationale = (self.rationale or "").strip()
        if self.value is None and not rationale:
            raise ValueError(
                "Feedback needs a value, a rationale, or both: set value= (the expert's verdict) "
                "and/or rationale= (why)."
            )
        return self

    @property
    def feedback_id(self) -> str:
        return self.id or example_id(plain_data(self.inputs), plain_data(self.outputs), plain_data(self.expectations))

    def as_input(self) -> dict[str, Any]:
        """The feedback as the alignment graph's input: plain JSON-like data, messages as role/content dicts."""
        return {name: plain_data(getattr(self, name)) for name in type(self).model_fields}


def check_text(value: Any, *, field: str) -> None:
    """Refuse what no store can keep faithfully: NUL characters, lone surrogates (invalid UTF-8), bytes,
    integers past 64 bits."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidValueError(f"{field}: contains a NUL character at {value.index(chr(0))}; remove it.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidValueError(
                f"{field}: not valid Unicode at character {error.start} (a lone surrogate, often from a bad "
                "UTF-8 decode); decode the source with errors='replace' or fix it."
            ) from None
    elif isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        raise InvalidValueError(
            f"{field}: a whole number this large cannot be stored (checkpoints hold 64-bit integers); "
            "give it as text, e.g. a string of its digits."
        )
    elif isinstance(value, (bytes, bytearray)):
        raise InvalidValueError(f"{field}: bytes are not text; decode them (e.g. value.decode('utf-8')) first.")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_text(key, field=f"{field}.{key}")
            check_text(item, field=f"{field}.{key}")
    elif isinstance(value, Sequence):
        for index, item in enumerate(value):
            check_text(item, field=f"{field}[{index}]")


def plain_data(value: Any) -> Any:
    """LangChain messages become role/content dicts, so records stay JSON for checkpoints and Qdrant."""
    from langchain_core.messages import BaseMessage, convert_to_openai_messages  # loaded once, when first used

    if isinstance(value, BaseMessage):
        return convert_to_openai_messages(value)
    if isinstance(value, Sequence) and not isinstance(value, str) and any(isinstance(v, BaseMessage) for v in value):
        return convert_to_openai_messages(list(value))
    return value


def example_id(inputs: Any, outputs: Any, expectations: Any) -> str:
    """A deterministic id for a judged example, stable across processes and machines."""
    canonical = json.dumps(
        {"inputs": inputs, "outputs": outputs, "expectations": expectations},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return "fb-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]
