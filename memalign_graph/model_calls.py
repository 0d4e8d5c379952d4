"""What every model call shares: reading an answer as a JSON object, and which failures deserve another try.

How the answer is asked for (a schema, JSON mode, a tool, the prompt) is `memalign_graph.structured_output`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import JsonOutputParser
from langgraph.types import RetryPolicy

MAX_PROBLEM_CHARS = 300


class StructuredOutputError(ValueError):
    """The model's answer is not the JSON object asked for. The message is one short line (it is shown to
    the model on a retry and to a person in the final error); the answer itself is kept whole in `raw`."""

    def __init__(self, message: str, raw: str) -> None:
        line = " ".join(message.split())
        if len(line) > MAX_PROBLEM_CHARS:
            line = line[: MAX_PROBLEM_CHARS - 1].rstrip() + "…"
        super().__init__(line)
        self.raw = raw


def parse_json(raw: str) -> dict[str, Any]:
    try:
        parsed = JsonOutputParser().parse(raw)
    except OutputParserException as error:
        raise StructuredOutputError(f"the answer is not valid JSON: {error}", raw) from error
    except ValueError as error:  # valid JSON Python will not read, e.g. a number of thousands of digits
        raise StructuredOutputError(f"the answer is not usable JSON: {error}", raw) from error
    if not isinstance(parsed, dict):
        raise StructuredOutputError("the answer is JSON but not an object", raw)
    return parsed


def check_keys(parsed: dict[str, Any], schema: dict[str, Any], raw: str) -> dict[str, Any]:
    missing = [key for key in schema.get("required", []) if key not in parsed]
    if missing:
        raise StructuredOutputError(f"the answer lacks {missing}", raw or json.dumps(parsed, default=str))
    return parsed


def raw_text(message: Any) -> str:
    if message is None:
        return ""
    if isinstance(message, AIMessage):
        if message.tool_calls:
            return json.dumps(message.tool_calls[0].get("args", {}), default=str)
        content = message.content
        return content if isinstance(content, str) else json.dumps(content, default=str)
    return str(message)


_REFUSED = re.compile(r"response_format|json_schema|json_object|tool_choice|tools", re.IGNORECASE)
_TRANSIENT_NAMES = ("Timeout", "RateLimit", "Connection", "Unavailable", "Overloaded", "InternalServer")


def is_transient(error: Exception) -> bool:
    """Timeouts, dropped connections, rate limits and 5xx deserve another try; a bug or a bad request does not,
    nor does a server refusing how it was asked (that is the same on every try).

    Provider exceptions are recognised by status code or class name, so no provider SDK is imported.
    """
    if isinstance(error, (TimeoutError, ConnectionError)):
        return True
    if _REFUSED.search(str(error)) and (getattr(error, "status_code", None) or 0) >= 400:
        return False
    status = getattr(error, "status_code", None) or getattr(getattr(error, "response", None), "status_code", None)
    if isinstance(status, int):
        return status in (408, 429) or status >= 500
    return any(word in type(error).__name__ for word in _TRANSIENT_NAMES)


# Transient model errors are retried by LangGraph with backoff; a bad answer is retried by the
# parse loop instead, with the reason fed back to the model.
MODEL_RETRY = RetryPolicy(max_attempts=3, initial_interval=0.5, backoff_factor=2.0, retry_on=is_transient)
