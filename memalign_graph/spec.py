"""What a judge is: its criterion, the fields it reads, and the type of its verdicts.

Validation of a value against the output type lives here and only here, so an expert's
feedback and the model's verdict are held to exactly the same rules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from memalign_graph.errors import InvalidValueError
from memalign_graph.feedback import check_text, plain_data

JudgeField = Literal["inputs", "outputs", "expectations"]
PAIRWISE_CHOICES = ("A", "B", "tie")
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class _OutputType(BaseModel):
    model_config = ConfigDict(frozen=True)

    def validate_value(self, value: Any, *, field: str = "value") -> Any:
        """Return the canonical form of `value`, or raise `InvalidValueError` naming `field`."""
        raise NotImplementedError

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of one value, for structured output."""
        raise NotImplementedError

    def describe(self) -> str:
        """How the value must be written, in words the model reads."""
        raise NotImplementedError


class Boolean(_OutputType):
    """A pass/fail verdict: `True` or `False`."""

    kind: Literal["boolean"] = "boolean"

    def validate_value(self, value: Any, *, field: str = "value") -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            word = value.strip().lower()
            if word in {"true", "yes", "pass"}:
                return True
            if word in {"false", "no", "fail"}:
                return False
        raise InvalidValueError(f"{field}: expected true or false for a boolean judge, got {value!r}.")

    def json_schema(self) -> dict[str, Any]:
        return {"type": "boolean"}

    def describe(self) -> str:
        return "true or false"


class Categorical(_OutputType):
    """One label out of a fixed list; labels are kept exactly as given, case included."""

    kind: Literal["categorical"] = "categorical"
    labels: tuple[str, ...] = Field(min_length=2)

    @field_validator("labels")
    @classmethod
    def _labels_are_distinct(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        if any(not label.strip() for label in labels):
            raise ValueError("labels: every label needs visible text.")
        if len(set(labels)) != len(labels):
            raise ValueError(f"labels: duplicates in {list(labels)}; list each label once.")
        return labels

    def validate_value(self, value: Any, *, field: str = "value") -> str:
        if isinstance(value, str):
            if value in self.labels:
                return value
            # An answer that differs only in case or spacing maps to the one label it can mean.
            folded = [label for label in self.labels if label.casefold() == value.strip().casefold()]
            if len(folded) == 1:
                return folded[0]
        raise InvalidValueError(f"{field}: {value!r} is not one of the judge's labels {list(self.labels)}.")

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.labels)}

    def describe(self) -> str:
        return "exactly one of " + ", ".join(repr(label) for label in self.labels)


class Score(_OutputType):
    """A number on a closed scale such as 1-5; `integer=True` admits whole numbers only."""

    kind: Literal["score"] = "score"
    low: float = 1
    high: float = 5
    integer: bool = True

    @model_validator(mode="after")
    def _range_is_ordered(self) -> Score:
        if not self.low < self.high:
            raise ValueError(f"Score: low ({self.low}) must be below high ({self.high}).")
        return self

    def validate_value(self, value: Any, *, field: str = "value") -> float | int:
        number: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if number is None or math.isnan(number):
            raise InvalidValueError(f"{field}: expected a number from {self._bounds()}, got {value!r}.")
        if not self.low <= number <= self.high:
            raise InvalidValueError(f"{field}: {value!r} is outside the judge's scale {self._bounds()}.")
        if self.integer:
            if not number.is_integer():
                raise InvalidValueError(
                    f"{field}: {value!r} is not a whole number; the scale {self._bounds()} takes whole numbers "
                    "(use Score(integer=False) for fractional scores)."
                )
            return int(number)
        return int(number) if number.is_integer() else number

    def json_schema(self) -> dict[str, Any]:
        low, high = (int(b) if float(b).is_integer() else b for b in (self.low, self.high))
        return {"type": "integer" if self.integer else "number", "minimum": low, "maximum": high}

    def describe(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        return f"{kind} from {self._bounds()}"

    def _bounds(self) -> str:
        schema = self.json_schema()
        return f"{schema['minimum']} to {schema['maximum']}"


class Pairwise(_OutputType):
    """Which of two responses is better: 'A', 'B' or 'tie'. The judged outputs are the pair."""

    kind: Literal["pairwise"] = "pairwise"

    def validate_value(self, value: Any, *, field: str = "value") -> str:
        if isinstance(value, str):
            word = value.strip()
            for choice in PAIRWISE_CHOICES:
                if word.casefold() == choice.casefold():
                    return choice
        raise InvalidValueError(f"{field}: expected 'A', 'B' or 'tie' for a pairwise judge, got {value!r}.")

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(PAIRWISE_CHOICES)}

    def describe(self) -> str:
        return "'A' if response A is better, 'B' if response B is better, 'tie' if neither is"


OutputType = Boolean | Categorical | Score | Pairwise


class JudgeSpec(BaseModel):
    """A judge: a name, its criterion in plain words, the fields it reads and its output type.

    `fields` are the fields every record carries; `optional_fields` may be absent from a record.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    instructions: str
    output: OutputType = Field(discriminator="kind")
    fields: tuple[JudgeField, ...] = ("inputs", "outputs")
    optional_fields: tuple[JudgeField, ...] = ()

    @field_validator("name")
    @classmethod
    def _name_is_an_identifier(cls, name: str) -> str:
        return check_identifier(name, field="name")

    @field_validator("instructions")
    @classmethod
    def _instructions_are_present(cls, instructions: str) -> str:
        if not instructions.strip():
            raise ValueError("instructions: say in plain words what the judge decides.")
        return instructions.strip()

    @model_validator(mode="after")
    def _fields_are_consistent(self) -> JudgeSpec:
        if "inputs" not in self.fields:
            raise ValueError("fields: every judge reads 'inputs'; add it to fields.")
        if isinstance(self.output, Pairwise) and "outputs" not in self.fields:
            raise ValueError("fields: a pairwise judge compares two 'outputs'; add 'outputs' to fields.")
        stray = [name for name in self.optional_fields if name not in self.fields]
        if stray:
            raise ValueError(f"optional_fields: {stray} must also be listed in fields.")
        if "inputs" in self.optional_fields:
            raise ValueError("optional_fields: 'inputs' is always required.")
        return self

    @property
    def required_fields(self) -> tuple[JudgeField, ...]:
        return tuple(name for name in self.fields if name not in self.optional_fields)

    def validate_record(self, record: Mapping[str, Any], *, where: str) -> dict[str, Any]:
        """Check a record's judged fields against this spec and return them in canonical form.

        `where` prefixes every error (for example ``feedback[3]``) so the user finds the bad record.
        """
        fields: dict[str, Any] = {}
        for name in ("inputs", "outputs", "expectations"):
            value = record.get(name)
            if name not in self.fields:
                if not _is_empty(value):
                    raise InvalidValueError(
                        f"{where}.{name}: judge {self.name!r} does not read {name!r}; "
                        f"drop it or add it to JudgeSpec.fields."
                    )
                continue
            if _is_empty(value):
                if name in self.optional_fields:
                    continue
                raise InvalidValueError(
                    f"{where}.{name}: required by judge {self.name!r} but empty; "
                    f"give it a value or list it in JudgeSpec.optional_fields."
                )
            check_text(value, field=f"{where}.{name}")
            fields[name] = plain_data(value)
        if isinstance(self.output, Pairwise):
            fields["outputs"] = _as_pair(fields["outputs"], where=f"{where}.outputs")
        return fields


def check_identifier(value: str, *, field: str) -> str:
    """Judge names and namespaces name memory (threads, collections): keep them to a safe alphabet."""
    if not isinstance(value, str) or not _NAME_PATTERN.match(value):
        raise InvalidValueError(
            f"{field}: {value!r} must be 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit "
            "(it names the judge's memory)."
        )
    return value


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (Mapping, Sequence)):
        return len(value) == 0
    return False


def _as_pair(outputs: Any, *, where: str) -> dict[str, Any]:
    """A pairwise judge's outputs as ``{"A": ..., "B": ...}``, from a mapping or a two-item sequence."""
    if isinstance(outputs, Mapping) and set(outputs) == {"A", "B"}:
        return {"A": outputs["A"], "B": outputs["B"]}
    if isinstance(outputs, Sequence) and not isinstance(outputs, str) and len(outputs) == 2:
        return {"A": outputs[0], "B": outputs[1]}
    raise InvalidValueError(
        f"{where}: a pairwise judge needs two responses, as [response_a, response_b] or {{'A': ..., 'B': ...}}."
    )
