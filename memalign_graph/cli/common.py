"""What every command shares: memory and model options, judge specs, data options, progress, errors."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from memalign_graph.config import memory_home, model_configured, resolve_chat_model, resolve_embeddings
from memalign_graph.context import DEFAULT_NAMESPACE
from memalign_graph.errors import MemAlignError
from memalign_graph.evaluation.datasets import FILE_FORMATS, Dataset, load_examples, parse_column
from memalign_graph.model_notices import describe_model, model_notice
from memalign_graph.spec import JudgeSpec, check_identifier

if TYPE_CHECKING:  # a command's --help needs none of these; its run imports them
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import BaseChatModel

    from memalign_graph.judge import MemAlignJudge

FAKE_EMBEDDINGS_NOTICE = "FAKE EMBEDDINGS: hashed bag of words, not a real embedding model"
NO_MODEL = (
    "no judge model is configured: pass --model (e.g. openai:gpt-4.1-mini, with OPENAI_API_KEY set) or set "
    "MEMALIGN_MODEL (and MEMALIGN_BASE_URL for a vLLM/Ollama server); with no key, --model local runs a tiny "
    "real model in this process (the local-llm extra) and --model fake a labelled plumbing demo"
)
SPEC_EXAMPLE = (
    "a spec file looks like: {name: support_tone, instructions: 'Is the reply appropriate?', "
    "output: {kind: boolean}} (kinds: boolean, categorical with labels, score with low/high, pairwise)"
)


class CliError(MemAlignError):
    """A user mistake on the command line: printed as one line, exit status 2."""


# -- shared options ------------------------------------------------------------------------------


def memory_options() -> argparse.ArgumentParser:
    """--home, --namespace, --judge and --spec: which judge and where its memory lives."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("judge and memory")
    group.add_argument("--judge", metavar="NAME", help="the judge's name (its spec is saved in HOME/judges/NAMESPACE/)")
    group.add_argument("--spec", metavar="FILE", type=Path, help="a judge spec, YAML or JSON (saved for next time)")
    group.add_argument("--home", metavar="DIR", help="memory folder (default: $MEMALIGN_HOME or ./.memalign)")
    group.add_argument("--namespace", default="default", help="tenant or project within the home (default: default)")
    return parser


def model_options() -> argparse.ArgumentParser:
    """--model and --embeddings, defaulting to the environment like the library does."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("models")
    group.add_argument("--model", help="chat model, e.g. openai:gpt-4.1-mini (default: $MEMALIGN_MODEL); 'fake' = demo")
    group.add_argument(
        "--embeddings", help="embeddings, e.g. openai:text-embedding-3-small (default: $MEMALIGN_EMBEDDINGS or local)"
    )
    return parser


def data_options() -> argparse.ArgumentParser:
    """The file layout, the column mapping and what to do with rows that do not fit the judge."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("data file")
    group.add_argument("--format", choices=FILE_FORMATS, default="auto", help="file layout (default: from the file)")
    for name, meaning in (
        ("inputs", "the judged inputs"),
        ("outputs", "the judged outputs ('a,b' gathers two columns, e.g. a pairwise judge's responses)"),
        ("expectations", "the expectations (reference answer, rubric)"),
        ("value", "the expert's verdict"),
        ("rationale", "the expert's rationale"),
        ("id", "a stable row id"),
    ):
        group.add_argument(f"--{name}", metavar="COLUMN", dest=f"column_{name}", help=f"column of {meaning}")
    group.add_argument("--skip-invalid", action="store_true", help="leave out rows that do not fit the judge, listed")
    return parser


def progress_options() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown on a terminal)")
    return parser


# -- judge specs -------------------------------------------------------------------------------


def resolve_spec(args: argparse.Namespace, *, save: bool) -> JudgeSpec:
    """The judge from --spec (named by --judge when given) or the spec saved under --judge's name in this
    namespace. Names are checked before they reach a path: a judge or namespace never leaves the home."""
    home = memory_home(args.home)
    namespace = check_identifier(args.namespace, field="--namespace")
    if args.judge is not None:
        check_identifier(args.judge, field="--judge")
    if args.spec is not None:
        spec = read_spec_file(args.spec, name=args.judge)
        if save:
            save_spec(home, spec, namespace)
        return spec
    if not args.judge:
        raise CliError("name the judge with --judge NAME, or give its spec with --spec FILE")
    saved = saved_spec_path(home, args.judge, namespace)
    if not saved.is_file():
        raise CliError(
            f"--judge: no judge {args.judge!r} in {home}, namespace {namespace}; create it with --spec FILE "
            f"({SPEC_EXAMPLE})"
        )
    return read_spec_file(saved)


def saved_spec_path(home: Path, judge: str, namespace: str) -> Path:
    """Where a judge's spec is kept: per namespace, so one tenant's spec never replaces another's. A spec
    saved before specs had namespaces (`HOME/judges/NAME.json`) is the default namespace's."""
    path = home / "judges" / namespace / f"{judge}.json"
    legacy = home / "judges" / f"{judge}.json"
    if namespace == DEFAULT_NAMESPACE and not path.is_file() and legacy.is_file():
        return legacy
    return path


def read_spec_file(path: Path, *, name: str | None = None) -> JudgeSpec:
    """A judge spec from YAML or JSON; `name` renames it (one spec file, several judges)."""
    if not path.is_file():
        raise CliError(f"--spec: {path}: no such file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CliError(
            f"--spec: {path}: not valid UTF-8 (byte 0x{raw[error.start]:02x} at offset {error.start}); "
            f"save it as UTF-8 text. {SPEC_EXAMPLE}"
        ) from None
    if "\x00" in text:
        raise CliError(f"--spec: {path}: a binary file, not a spec; {SPEC_EXAMPLE}")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as error:  # noqa: BLE001 - YAML and JSON errors both become one line naming the file
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise CliError(f"--spec: {path}: not valid {kind}: {_parse_problem(error)}") from None
    if not isinstance(data, dict):
        raise CliError(f"--spec: {path}: expected a mapping; {SPEC_EXAMPLE}")
    if name:
        data = {**data, "name": name}
    try:
        return JudgeSpec.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}" for e in error.errors())
        if "valid string" in problems and path.suffix.lower() != ".json":
            problems += " (YAML reads unquoted yes/no/true/false as booleans: quote labels, e.g. 'yes')"
        raise CliError(f"--spec: {path}: {problems}") from None


def save_spec(home: Path, spec: JudgeSpec, namespace: str = DEFAULT_NAMESPACE) -> None:
    """Keep the spec beside the judge's memory, refusing a change of output type over existing memory."""
    saved = saved_spec_path(home, spec.name, namespace)
    if saved.is_file():
        old = JudgeSpec.model_validate_json(saved.read_text(encoding="utf-8"))
        if old.output != spec.output or old.fields != spec.fields:
            raise CliError(
                f"--spec: judge {spec.name!r} in {home} was created with another output type or fields; "
                f"give this spec another name with --judge NAME, or use another --home"
            )
    saved = home / "judges" / namespace / f"{spec.name}.json"
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(spec.model_dump_json(indent=2) + "\n", encoding="utf-8")


# -- models and judges ---------------------------------------------------------------------------


def resolve_model(args: argparse.Namespace) -> BaseChatModel:
    if not model_configured(args.model):
        raise CliError(NO_MODEL)
    model = resolve_chat_model(args.model)
    notice = model_notice(model)
    if notice:
        print(f"memalign: {notice}", file=sys.stderr)
    return model


def resolve_embedding_model(args: argparse.Namespace) -> Embeddings:
    from memalign_graph.fake_model import FakeEmbeddings

    embeddings = resolve_embeddings(args.embeddings)
    if isinstance(embeddings, FakeEmbeddings):
        print(f"memalign: {FAKE_EMBEDDINGS_NOTICE}", file=sys.stderr)
    return embeddings


def model_label(model: BaseChatModel) -> str:
    """A readable name for reports; a demo model is named as what it is."""
    return describe_model(model)


@contextmanager
def open_judge(
    args: argparse.Namespace, spec: JudgeSpec, model: BaseChatModel, embeddings: Embeddings | None = None
) -> Iterator[MemAlignJudge]:
    from memalign_graph.judge import MemAlignJudge

    judge = MemAlignJudge(
        spec,
        model,
        embeddings=embeddings if embeddings is not None else resolve_embedding_model(args),
        namespace=args.namespace,
        home=args.home,
    )
    try:
        yield judge
    finally:
        judge.close()


# -- data ----------------------------------------------------------------------------------------


def read_dataset(args: argparse.Namespace, spec: JudgeSpec, *, require: str) -> Dataset:
    """The data file's rows checked against the judge; skipped rows are listed on stderr."""
    columns = {
        name: parse_column(value)
        for name in ("inputs", "outputs", "expectations", "value", "rationale", "id")
        if (value := getattr(args, f"column_{name}")) is not None
    }
    try:
        dataset = load_examples(
            args.file,
            spec,
            file_format=args.format,
            columns=columns,
            require=require,  # type: ignore[arg-type]
            skip_invalid=args.skip_invalid,
        )
    except MemAlignError as error:
        hint = "" if args.skip_invalid or "no usable rows" in str(error) else " (--skip-invalid leaves such rows out)"
        raise CliError(f"{error}{hint}") from None
    for problem in dataset.skipped:
        print(f"memalign: skipped {problem}", file=sys.stderr)
    return dataset


def progress_bar(args: argparse.Namespace, total: int, description: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="item", file=sys.stderr, disable=True if args.no_progress else None)


def first_line(error: BaseException) -> str:
    """An error as one line: its message's first line (the rest is detail for a traceback)."""
    return " ".join(str(error).strip().split("\n")[0].split()) or type(error).__name__


def _parse_problem(error: BaseException) -> str:
    """YAML errors span lines; keep the line number and the problem."""
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {getattr(error, 'problem', None) or first_line(error)}"
    return first_line(error)
