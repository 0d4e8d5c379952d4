"""The `memalign` command: align from a file, judge a file, inspect memory, run the evaluation protocol,
and rank what experts should review next.

Every command prints a user's mistake (a bad flag, file, row or setting) as one line and exits with
status 2; an unexpected failure is one line too, with status 1 (MEMALIGN_DEBUG=1 shows the traceback).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

from memalign_graph.cli import align, evaluate, judge, memory, review_queue
from memalign_graph.cli.common import (
    CliError,
    data_options,
    first_line,
    memory_options,
    model_options,
    progress_options,
)
from memalign_graph.cli.terminal import safe_output
from memalign_graph.config import debug_enabled
from memalign_graph.errors import MemAlignError, ProviderDownError

DESCRIPTION = """MemAlign: align an LLM judge to your experts' feedback, from the terminal.

examples:
  memalign align feedback.jsonl --spec judge.yaml --model openai:gpt-4.1-mini
  memalign judge new_rows.jsonl --judge support_tone -o verdicts.jsonl
  memalign memory show --judge support_tone
  memalign eval labelled.jsonl --spec judge.yaml --out eval-results
  memalign review-queue unlabelled.jsonl --judge support_tone -n 20

A judge spec (YAML or JSON) names the judge and its verdict type; it is saved under the memory
home, so later commands need only --judge NAME. Run `memalign COMMAND --help` for each command."""


class OneLineParser(argparse.ArgumentParser):
    """argparse's parser, whose mistakes are one line naming the fix (not its whole usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="memalign", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action=VersionAction, nargs=0, help="show the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    shared = [memory_options(), model_options()]
    align.add_command(commands, [*shared, data_options(), progress_options()])
    judge.add_command(commands, [*shared, data_options(), progress_options()])
    memory.add_command(commands, shared)
    evaluate.add_command(commands, [*shared, data_options(), progress_options()])
    review_queue.add_command(commands, [*shared, data_options()])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (the console script exits with it). What it prints is
    terminal-safe: feedback, guidelines and model answers are shown, never obeyed by the terminal."""
    with safe_output():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # --help, --version, or argparse's own one-line usage error
        return exit_request.code if isinstance(exit_request.code, int) else 0 if exit_request.code is None else 2
    with _notes_and_bars(quiet_bars=getattr(args, "no_progress", False)):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.run(args))
    except ProviderDownError as error:  # not the user's input: status 1, said once
        print(f"memalign: error: {_message(error)}", file=sys.stderr)
        return 1
    except (CliError, MemAlignError, ValueError, OSError) as error:
        _debug()
        print(f"memalign: error: {_message(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("memalign: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - a failure is one line; the traceback is opt-in
        _debug()
        print(
            f"memalign: error: {type(error).__name__}: {first_line(error)} (MEMALIGN_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1


@contextmanager
def _notes_and_bars(*, quiet_bars: bool) -> Iterator[None]:
    """The library's notes (loading the embedding model, a field cut to its budget) as `memalign: ...`
    lines, written above a running progress bar rather than into it; with --no-progress, no progress bar
    from anyone (ours, transformers', the hub's)."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("memalign: %(message)s"))
    library = logging.getLogger("memalign_graph")
    level = library.level
    library.addHandler(handler)
    library.setLevel(logging.INFO)
    saved = {name: os.environ.get(name) for name in _BAR_SWITCHES}
    if quiet_bars:
        os.environ.update(dict.fromkeys(_BAR_SWITCHES, "1"))
    try:
        with logging_redirect_tqdm(loggers=[library]):
            yield
    finally:
        library.removeHandler(handler)
        library.setLevel(level)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_BAR_SWITCHES = ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")


def _message(error: BaseException) -> str:
    if isinstance(error, FileNotFoundError) and error.filename:
        return f"{error.filename}: no such file or folder"
    if isinstance(error, OSError) and error.filename:
        return f"{error.filename}: {error.strerror or first_line(error)}"
    return first_line(error)


def _debug() -> None:
    if debug_enabled():
        traceback.print_exc()


class VersionAction(argparse.Action):
    """--version, looked up only when asked for (reading package metadata costs a tenth of a second)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("memalign-graph")
        except PackageNotFoundError:
            found = "unknown"
        parser.exit(0, f"{parser.prog} {found}\n")
