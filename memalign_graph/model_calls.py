"""Asking a chat model for a JSON object, with or without native structured output.

Models that implement `with_structured_output` use it; the others (and answers it fails to parse)
fall back to plain text parsed as JSON. Either way the caller gets a dict or a `StructuredOutputError`
carrying the raw answer, never a guess.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.output_parsers import JsonOutputParser
from langgraph.types import RetryPolicy

from memalign_graph.prompts import JSON_ANSWER_INSTRUCTIONS


class StructuredOutputError(ValueError):
    """The model's answer is not the JSON object asked for."""

    def __init__(self, message: str, raw: str) -> None:
        super().__init__(message)
        self.raw = raw


def invoke_structured(
    model: BaseChatModel, schema: dict[str, Any], messages: Sequence[BaseMessage]
) -> tuple[dict[str, Any], str]:
    """Return the model's answer as a dict matching `schema`'s top level, and its raw text."""
    try:
        structured = model.with_structured_output(schema, include_raw=True)
    except NotImplementedError:
        return _invoke_with_json_instructions(model, schema, messages)
    return _interpret(cast(dict[str, Any], structured.invoke(list(messages))), schema)  # include_raw: a dict


async def ainvoke_structured(
    model: BaseChatModel, schema: dict[str, Any], messages: Sequence[BaseMessage]
) -> tuple[dict[str, Any], str]:
    """Async twin of `invoke_structured`."""
    try:
        structured = model.with_structured_output(schema, include_raw=True)
    except NotImplementedError:
        answer = await model.ainvoke([*messages, HumanMessage(_json_instructions(schema))])
        raw = _raw_text(answer)
        return _check_keys(_parse_json(raw), schema, raw), raw
    return _interpret(cast(dict[str, Any], await structured.ainvoke(list(messages))), schema)


def _interpret(result: dict[str, Any], schema: dict[str, Any]) -> tuple[dict[str, Any], str]:
    raw = _raw_text(result.get("raw"))
    parsed = result.get("parsed")
    if isinstance(parsed, dict):
        return _check_keys(parsed, schema, raw), raw
    if raw.strip():
        return _check_keys(_parse_json(raw), schema, raw), raw
    error = result.get("parsing_error")
    raise StructuredOutputError(f"the model returned no parsable answer ({error or 'empty answer'})", raw)


def _invoke_with_json_instructions(
    model: BaseChatModel, schema: dict[str, Any], messages: Sequence[BaseMessage]
) -> tuple[dict[str, Any], str]:
    answer = model.invoke([*messages, HumanMessage(_json_instructions(schema))])
    raw = _raw_text(answer)
    return _check_keys(_parse_json(raw), schema, raw), raw


def _json_instructions(schema: dict[str, Any]) -> str:
    return JSON_ANSWER_INSTRUCTIONS.format(schema=json.dumps(schema, indent=2))


def _parse_json(raw: str) -> dict[str, Any]:
    try:
        parsed = JsonOutputParser().parse(raw)
    except OutputParserException as error:
        raise StructuredOutputError(f"the answer is not valid JSON: {error}", raw) from error
    if not isinstance(parsed, dict):
        raise StructuredOutputError("the answer is JSON but not an object", raw)
    return parsed


def _check_keys(parsed: dict[str, Any], schema: dict[str, Any], raw: str) -> dict[str, Any]:
    missing = [key for key in schema.get("required", []) if key not in parsed]
    if missing:
        raise StructuredOutputError(f"the answer lacks {missing}", raw or json.dumps(parsed, default=str))
    return parsed


def _raw_text(message: Any) -> str:
    if message is None:
        return ""
    if isinstance(message, AIMessage):
        if message.tool_calls:
            return json.dumps(message.tool_calls[0].get("args", {}), default=str)
        content = message.content
        return content if isinstance(content, str) else json.dumps(content, default=str)
    return str(message)


_TRANSIENT_NAMES = ("Timeout", "RateLimit", "Connection", "Unavailable", "Overloaded", "InternalServer")


def is_transient(error: Exception) -> bool:
    """Timeouts, dropped connections, rate limits and 5xx deserve another try; a bug or a bad request does not.

    Provider exceptions are recognised by status code or class name, so no provider SDK is imported.
    """
    if isinstance(error, (TimeoutError, ConnectionError)):
        return True
    status = getattr(error, "status_code", None) or getattr(getattr(error, "response", None), "status_code", None)
    if isinstance(status, int):
        return status in (408, 429) or status >= 500
    return any(word in type(error).__name__ for word in _TRANSIENT_NAMES)


# Transient model errors are retried by LangGraph with backoff; a bad answer is retried by the
# parse loop instead, with the reason fed back to the model.
MODEL_RETRY = RetryPolicy(max_attempts=3, initial_interval=0.5, backoff_factor=2.0, retry_on=is_transient)
