"""Reading feedback and evaluation sets from files: JSONL, CSV, JSON arrays, and two built-in layouts.

A column mapping says which field of a row is the judged inputs, outputs and expectations, the
expert's value and rationale, and the row's id. The built-in layouts are the normalized JSONL of the
shipped samples (`{id, inputs, outputs, expectations, label, rationale, meta}`) and LLMBar's pairwise
files (`[{input, output_1, output_2, label}]`). Every row is checked against the judge before anything
runs, and a bad row is named by file and line; it is skipped only when the caller asks for that.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from memalign_graph.errors import InvalidValueError, MemAlignError
from memalign_graph.feedback import Feedback, check_text, example_id
from memalign_graph.spec import JudgeSpec, Pairwise

Column = str | tuple[str, ...]
"""A field name (dots reach into nested JSON: `inputs.user_query`), or several gathered into a list."""

FileFormat = Literal["auto", "jsonl", "csv", "json", "normalized", "llmbar"]
FILE_FORMATS: tuple[str, ...] = ("auto", "jsonl", "csv", "json", "normalized", "llmbar")
Requirement = Literal["inputs", "feedback", "value"]
MAX_CSV_CELL = 16 * 1024 * 1024
MAX_ID_CHARS = 200


class DatasetError(MemAlignError, ValueError):
    """A file or one of its rows cannot be used; the message starts with `file:line`."""


@dataclass(frozen=True)
class ColumnMapping:
    """Where each part of a record is found in a row. `None` means the file has no such column."""

    inputs: Column = "inputs"
    outputs: Column | None = "outputs"
    expectations: Column | None = "expectations"
    value: Column | None = "value"
    rationale: Column | None = "rationale"
    id: Column | None = "id"

    def with_overrides(self, overrides: Mapping[str, Column | None]) -> ColumnMapping:
        known = {item.name for item in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise DatasetError(f"column mapping: unknown fields {unknown}; map only {sorted(known)}.")
        return replace(self, **overrides)  # type: ignore[arg-type]  # keys checked just above


NORMALIZED_COLUMNS = ColumnMapping(value="label")


@dataclass(frozen=True)
class LabeledExample:
    """One row: what the judge sees (inputs, outputs, expectations) and what the expert said about it."""

    id: str
    where: str
    inputs: Any
    outputs: Any = None
    expectations: Any = None
    value: Any = None
    rationale: str | None = None

    def example(self) -> dict[str, Any]:
        """What a judge is given: the judged fields, never the expert's answer."""
        return {"inputs": self.inputs, "outputs": self.outputs, "expectations": self.expectations}

    def feedback(self, *, value: bool = True, rationale: bool = True) -> Feedback | None:
        """The row as feedback, keeping the value and/or the rationale; None when nothing is left to say."""
        kept_value = self.value if value else None
        kept_rationale = self.rationale if rationale else None
        if kept_value is None and not kept_rationale:
            return None
        return Feedback(id=self.id, **self.example(), value=kept_value, rationale=kept_rationale)


@dataclass
class Dataset:
    """The usable rows of a file, and the rows skipped on request (each as `file:line: problem`)."""

    source: str
    examples: list[LabeledExample] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def load_examples(
    path: str | Path,
    spec: JudgeSpec,
    *,
    file_format: FileFormat = "auto",
    columns: Mapping[str, Column | None] | None = None,
    require: Requirement = "value",
    skip_invalid: bool = False,
) -> Dataset:
    """Read a file into examples checked against `spec`.

    `require` is what every row must carry: `value` (an expert's verdict, for evaluation), `feedback`
    (a value or a rationale, for alignment) or just `inputs` (for judging). `columns` overrides the
    layout's default mapping. A row that breaks a rule raises `DatasetError` naming its line, unless
    `skip_invalid` is set: then it is left out and listed in `Dataset.skipped`.
    """
    path = Path(path)
    chosen = detect_format(path) if file_format == "auto" else file_format
    if chosen not in FILE_FORMATS:
        raise DatasetError(f"format: {chosen!r} is not one of {list(FILE_FORMATS[1:])}.")
    mapping = (NORMALIZED_COLUMNS if chosen in ("normalized", "llmbar") else ColumnMapping()).with_overrides(
        columns or {}
    )
    dataset = Dataset(source=str(path))
    first_seen: dict[str, str] = {}
    for where, row in read_rows(path, chosen):
        try:
            if isinstance(row, DatasetError):
                raise row
            if chosen == "normalized":
                row = _fold_rubric(row)
            example = _example(row, where, spec, mapping, require)
            if example.id in first_seen:
                raise DatasetError(
                    f"{where}: id {example.id!r} is already used at {first_seen[example.id]}; ids must be unique."
                )
        except DatasetError as error:
            if not skip_invalid:
                raise
            dataset.skipped.append(str(error))
            continue
        first_seen[example.id] = where
        dataset.examples.append(example)
    if not dataset.examples:
        raise DatasetError(
            f"{path}: no usable rows" + (f" ({len(dataset.skipped)} skipped)." if dataset.skipped else ".")
        )
    return dataset


def detect_format(path: Path) -> str:
    """The layout from the file name, and for JSON(L) from the first record's keys."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix == ".json":
        return "llmbar" if _looks_like_llmbar(path) else "json"
    if suffix in (".jsonl", ".ndjson"):
        return "normalized" if _looks_normalized(path) else "jsonl"
    raise DatasetError(
        f"{path}: cannot tell the format from the extension; pass --format ({', '.join(FILE_FORMATS[1:])})."
    )


def read_rows(path: Path, file_format: str) -> Iterator[tuple[str, dict[str, Any] | DatasetError]]:
    """Each row as `(file:line, object)`; a row that is not an object comes as a `DatasetError` in its place."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such file.")
    if file_format in ("jsonl", "normalized"):
        yield from _jsonl_rows(path)
    elif file_format == "csv":
        yield from _csv_rows(path)
    else:
        yield from _json_array_rows(path, llmbar=file_format == "llmbar")


def _jsonl_rows(path: Path) -> Iterator[tuple[str, dict[str, Any] | DatasetError]]:
    # Bytes that are not UTF-8 become lone surrogates, so a bad line is named and the rest are read.
    with path.open(encoding="utf-8", errors="surrogateescape") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            problem = _not_utf8(line)
            if problem:
                yield where, DatasetError(f"{where}: {problem}")
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                yield where, DatasetError(f"{where}: not valid JSON ({error.msg} at column {error.colno}).")
                continue
            except ValueError as error:  # e.g. a number of more digits than Python converts
                yield where, DatasetError(f"{where}: not usable JSON ({error}).")
                continue
            yield where, row if isinstance(row, dict) else DatasetError(f"{where}: expected a JSON object per line.")


def _csv_rows(path: Path) -> Iterator[tuple[str, dict[str, Any] | DatasetError]]:
    csv.field_size_limit(MAX_CSV_CELL)  # the default (128 KiB) refuses a long transcript; fields are cut later
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        reader = csv.DictReader(handle, delimiter=delimiter)
        try:
            header = reader.fieldnames
        except csv.Error as error:
            raise DatasetError(f"{path.name}:1: not a readable header ({error}).") from None
        if not header:
            raise DatasetError(f"{path.name}:1: no header row; the first line must name the columns.")
        if any(_not_utf8(name) for name in header):
            raise DatasetError(f"{path.name}:1: {_not_utf8(''.join(header))}")
        start = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:  # the rest of the file cannot be told apart into rows
                raise DatasetError(f"{path.name}:{start}: not readable CSV ({error}).") from None
            where = f"{path.name}:{start}"
            start = reader.line_num + 1
            if None in row:
                yield where, DatasetError(f"{where}: more cells than the header has columns.")
                continue
            problem = next((found for value in row.values() if value and (found := _not_utf8(value))), None)
            if problem:
                yield where, DatasetError(f"{where}: {problem}")
                continue
            yield where, {key: (None if value is None or value == "" else value) for key, value in row.items()}


def _not_utf8(text: str) -> str | None:
    """Where text read with `surrogateescape` held bytes that are not UTF-8, said as the fix."""
    for column, character in enumerate(text, start=1):
        if "\udc80" <= character <= "\udcff":
            byte = ord(character) - 0xDC00
            return f"not valid UTF-8 (byte 0x{byte:02x} at column {column}); save the file as UTF-8."
    return None


def _json_array_rows(path: Path, *, llmbar: bool) -> Iterator[tuple[str, dict[str, Any] | DatasetError]]:
    raw = path.read_bytes()
    try:
        items = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise DatasetError(
            f"{path.name}: not valid UTF-8 (byte 0x{raw[error.start]:02x} at offset {error.start}); save it as UTF-8."
        ) from None
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path.name}:{error.lineno}: not valid JSON ({error.msg}).") from None
    except ValueError as error:
        raise DatasetError(f"{path.name}: not usable JSON ({error}).") from None
    if not isinstance(items, list):
        raise DatasetError(f"{path.name}: expected a JSON array of objects; for one object a line use .jsonl.")
    for index, item in enumerate(items):
        where = f"{path.name}[{index}]"
        if not isinstance(item, dict):
            yield where, DatasetError(f"{where}: expected a JSON object.")
        elif llmbar:
            yield where, _llmbar_row(item, path.stem, index, where)
        else:
            yield where, item


def _llmbar_row(item: dict[str, Any], stem: str, index: int, where: str) -> dict[str, Any] | DatasetError:
    """LLMBar's `{input, output_1, output_2, label: 1|2}` as a pairwise record: label 1 is 'A', 2 is 'B'."""
    missing = [key for key in ("input", "output_1", "output_2", "label") if key not in item]
    if missing:
        return DatasetError(f"{where}: an LLMBar item needs {missing}.")
    label = {1: "A", 2: "B", "1": "A", "2": "B"}.get(item["label"], item["label"])
    return {
        "id": f"llmbar-{stem}-{index}",
        "inputs": item["input"],
        "outputs": [item["output_1"], item["output_2"]],
        "label": label,
    }


def _fold_rubric(row: dict[str, Any]) -> dict[str, Any]:
    """A rubric row's criteria and score descriptions join its expectations: the judge must read them."""
    meta = row.get("meta") or {}
    if not isinstance(meta, dict) or "criteria" not in meta:
        return row
    expectations = dict(row.get("expectations") or {})
    expectations["criteria"] = meta["criteria"]
    if meta.get("score_descriptions"):
        expectations["score_descriptions"] = meta["score_descriptions"]
    return {**row, "expectations": expectations}


def _example(
    row: dict[str, Any], where: str, spec: JudgeSpec, mapping: ColumnMapping, require: Requirement
) -> LabeledExample:
    picked = {name: _pick(row, getattr(mapping, name)) for name in ("inputs", "outputs", "expectations")}
    if picked["inputs"] is None:
        raise DatasetError(f"{where}: no {_describe(mapping.inputs)} for the judged inputs; {_columns_hint(row)}")
    rationale = _pick(row, mapping.rationale)
    rationale = str(rationale).strip() or None if rationale is not None else None
    given_id = _pick(row, mapping.id)
    try:
        judged = spec.validate_record(picked, where="row")
        value = _pick(row, mapping.value)
        value = None if value is None else spec.output.validate_value(value, field="value")
        check_text(rationale, field="rationale")
        given_id = _row_id(given_id)
    except InvalidValueError as error:
        raise DatasetError(f"{where}: {error}") from None
    if require == "value" and value is None:
        raise DatasetError(f"{where}: no expert verdict in {_describe(mapping.value)}; {_columns_hint(row)}")
    if require == "feedback" and value is None and rationale is None:
        raise DatasetError(
            f"{where}: no expert verdict ({_describe(mapping.value)}) and no rationale "
            f"({_describe(mapping.rationale)}); {_columns_hint(row)}"
        )
    if isinstance(spec.output, Pairwise):
        judged["outputs"] = [judged["outputs"]["A"], judged["outputs"]["B"]]
    return LabeledExample(
        id=str(given_id) if given_id is not None else _derived_id(judged),
        where=where,
        inputs=judged.get("inputs"),
        outputs=judged.get("outputs"),
        expectations=judged.get("expectations"),
        value=value,
        rationale=rationale,
    )


def _row_id(given: Any) -> str | None:
    """A row's own id, as text: a string or a whole number, 1 to 200 characters."""
    if given is None:
        return None
    if isinstance(given, bool) or not isinstance(given, (str, int)):
        raise InvalidValueError(f"id: {given!r} is not an id; use a string or a whole number.")
    if isinstance(given, int) and abs(given) >= 10**MAX_ID_CHARS:
        raise InvalidValueError(f"id: a number of more than {MAX_ID_CHARS} digits is not an id.")
    text = given.strip() if isinstance(given, str) else str(given)
    if not 1 <= len(text) <= MAX_ID_CHARS:
        raise InvalidValueError(f"id: must be 1 to {MAX_ID_CHARS} characters (this one has {len(text)}).")
    check_text(text, field="id")
    return text


def _derived_id(judged: Mapping[str, Any]) -> str:
    return example_id(judged.get("inputs"), judged.get("outputs"), judged.get("expectations"))


def _pick(row: Mapping[str, Any], column: Column | None) -> Any:
    if column is None:
        return None
    if isinstance(column, tuple):
        values = [_pick(row, part) for part in column]
        return None if all(value is None for value in values) else values
    if column in row:
        return row[column]
    found: Any = row
    for part in column.split("."):
        if not isinstance(found, Mapping) or part not in found:
            return None
        found = found[part]
    return found


def _describe(column: Column | None) -> str:
    if column is None:
        return "no column (unmapped)"
    if isinstance(column, tuple):
        return "columns " + ", ".join(repr(part) for part in column)
    return f"column {column!r}"


def _columns_hint(row: Mapping[str, Any]) -> str:
    return f"the row's fields are {sorted(row)}; map the right one in the column mapping."


def _looks_like_llmbar(path: Path) -> bool:
    with path.open(encoding="utf-8", errors="replace") as handle:
        head = handle.read(2048)
    return '"output_1"' in head and '"output_2"' in head and '"input"' in head


def _looks_normalized(path: Path) -> bool:
    """The normalized layout is told by its documented fields: `inputs` and the expert's verdict in
    `label` (where the generic layout has `value`)."""
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if line.strip():
                try:
                    first = json.loads(line)
                except ValueError:
                    return False
                return isinstance(first, dict) and {"inputs", "label"} <= set(first) and "value" not in first
    return False


def parse_column(text: str) -> Column | None:
    """A column from the command line: `name`, `a,b` (gathered into a list), or `none` (unmapped)."""
    text = text.strip()
    if text.lower() in ("", "none", "-"):
        return None
    parts = tuple(part.strip() for part in text.split(",") if part.strip())
    return parts if len(parts) > 1 else parts[0]
