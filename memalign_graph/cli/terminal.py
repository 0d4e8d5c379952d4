"""Text the command prints is made safe for a terminal: feedback, guidelines and model answers are data.

A rationale may carry ANSI escapes (recolour or clear the screen, rewrite the title), a bell, or a
right-to-left override that makes `evil.exe` read as `exe.live`. Control and format characters are
printed as escapes instead (`\\x1b`, `\\u202e`); newlines, tabs and carriage returns (progress bars) stay.
Inside JSON strings the `\\uXXXX` form is JSON's own escape, so JSON output stays valid and decodes to the
same text.
"""

from __future__ import annotations

import io
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

KEPT = frozenset("\n\t\r")


def terminal_safe(text: str) -> str:
    """`text` with every control and format character but newline, tab and carriage return escaped."""
    if text.isprintable():
        return text
    return "".join(_escaped(character) for character in text)


def _escaped(character: str) -> str:
    if character in KEPT:
        return character
    category = unicodedata.category(character)
    if category == "Cc":
        return f"\\x{ord(character):02x}" if ord(character) < 0x100 else f"\\u{ord(character):04x}"
    if category in ("Cf", "Cs", "Zl", "Zp"):
        return f"\\u{ord(character):04x}"
    return character


class TerminalSafe(io.TextIOBase):
    """A text stream that writes what it is given, made terminal-safe, to another."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(terminal_safe(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]  # the wrapped stream's, read-only
        return getattr(self._stream, "encoding", "utf-8")


@contextmanager
def safe_output() -> Iterator[None]:
    """Standard output and error made terminal-safe for the block."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = TerminalSafe(sys.stdout), TerminalSafe(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
