"""How a chat model is asked for a JSON object, and how that adapts to what its server accepts.

Four methods, from the strictest to the plainest:
- `json_schema`: the schema as the model's native structured output (`response_format` json_schema for
  OpenAI-compatible servers);
- `json_mode`: JSON mode, and the schema in the prompt (for OpenAI-compatible servers `json_object` with
  the schema, which llama.cpp's server turns into a grammar);
- `function_calling`: the schema as a tool the model must call;
- `prompt`: the schema in the prompt, and the answer's text parsed.

`auto` (the default) starts with `json_schema` and moves a model to the next method, once and for good,
when its server refuses one (an error naming `response_format`, `json_schema`, `tools`...), and to `prompt`
when it answers free text where JSON was asked for twice in a row (a server that ignores
`response_format`; each such answer is still a bad answer, retried with its reason). Whatever
the method, the caller gets a dict or a `StructuredOutputError` carrying the raw answer, never a guess.
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig

from memalign_graph.errors import ConfigurationError
from memalign_graph.model_calls import StructuredOutputError, check_keys, parse_json, raw_text
from memalign_graph.per_loop import PerLoop
from memalign_graph.prompts import JSON_ANSWER_INSTRUCTIONS
from memalign_graph.provider_health import ProviderBreaker

StructuredOutput = Literal["auto", "json_schema", "json_mode", "function_calling", "prompt"]
METHODS: tuple[StructuredOutput, ...] = get_args(StructuredOutput)
AUTO_ORDER: tuple[StructuredOutput, ...] = ("json_schema", "json_mode", "function_calling", "prompt")
_REFUSAL = re.compile(r"response_format|json_schema|json_object|tool|function|structured", re.IGNORECASE)


@dataclass(frozen=True)
class Answer:
    """A model's answer as a dict, its raw text, and the method that produced it."""

    parsed: dict[str, Any]
    raw: str
    method: StructuredOutput


def refuses_method(error: BaseException) -> bool:
    """Whether a server refused how we asked (a 4xx/5xx naming the request's format or tools), which no
    retry would change; a model class that has no such method (NotImplementedError) counts too."""
    if isinstance(error, NotImplementedError):
        return True
    status = getattr(error, "status_code", None) or getattr(getattr(error, "response", None), "status_code", None)
    return (
        isinstance(status, int)
        and 400 <= status < 600
        and status not in (401, 403, 408, 429)
        and bool(_REFUSAL.search(str(error)))
    )


class StructuredCalls:
    """Asks one chat model for JSON objects; holds the method in use and the runnables it built.

    Shared by everything that uses the same model object (`structured_calls`), so what one call learns
    about the server (a refused method, a provider that is down) every later call knows.
    """

    def __init__(self, model: BaseChatModel, method: StructuredOutput = "auto") -> None:
        if method not in METHODS:
            raise ValueError(f"structured_output: {method!r} is not one of {list(METHODS)}.")
        self.model = model
        self.requested = method
        self.method: StructuredOutput = "json_schema" if method == "auto" else method
        self._runnables: dict[tuple[StructuredOutput, str], Runnable[Any, Any]] = {}
        self._lock = threading.Lock()
        self._free_text = 0
        self.provider = ProviderBreaker()
        self._loop_models: PerLoop[dict[str, Any]] | None = (
            PerLoop(self._open_loop_model, _close_loop_model) if _has_cached_async_client(model) else None
        )

    def invoke(self, schema: dict[str, Any], messages: Sequence[BaseMessage]) -> Answer:
        while True:
            method = self.method
            self.provider.before_call()
            try:
                result = self._runnable(method, schema, self.model).invoke(
                    _prompt(method, schema, messages), _config(method)
                )
            except Exception as error:
                self.provider.failed(error)
                if self._moved_on(method, error):
                    continue
                raise
            self.provider.succeeded()
            answer = self._interpret(method, schema, result)
            if answer is not None:
                return answer

    async def ainvoke(self, schema: dict[str, Any], messages: Sequence[BaseMessage]) -> Answer:
        while True:
            method = self.method
            model, runnables = await self._loop_model()
            self.provider.before_call()
            try:
                runnable = self._runnable(method, schema, model, runnables)
                result = await runnable.ainvoke(_prompt(method, schema, messages), _config(method))
            except Exception as error:
                self.provider.failed(error)
                if self._moved_on(method, error):
                    continue
                raise
            self.provider.succeeded()
            answer = self._interpret(method, schema, result)
            if answer is not None:
                return answer

    # -- internals ---------------------------------------------------------------------------------

    def _moved_on(self, method: StructuredOutput, error: BaseException) -> bool:
        """In `auto`, move past a method the server refused; whether there is another to try. A method
        chosen by hand and refused is a configuration error, said in one line."""
        if not refuses_method(error):
            return False
        if self.requested != "auto":
            first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
            raise ConfigurationError(
                f"structured_output: the model refused {method!r} ({first}); set MEMALIGN_STRUCTURED_OUTPUT=auto "
                "(or structured_output='auto') to use a method it accepts."
            ) from error
        if method == "prompt":
            return False
        return self._advance(method, AUTO_ORDER[AUTO_ORDER.index(method) + 1])

    def _interpret(self, method: StructuredOutput, schema: dict[str, Any], result: Any) -> Answer:
        raw = raw_text(result.get("raw") if isinstance(result, dict) else result)
        parsed = result.get("parsed") if isinstance(result, dict) else None
        if isinstance(parsed, dict):
            self._free_text = 0
            return Answer(check_keys(parsed, schema, raw), raw, method)
        if not raw.strip():
            error = result.get("parsing_error") if isinstance(result, dict) else None
            raise StructuredOutputError(f"the model returned no parsable answer ({error or 'empty answer'})", raw)
        try:
            answer = Answer(check_keys(parse_json(raw), schema, raw), raw, method)
        except StructuredOutputError:
            if self.requested == "auto" and method != "prompt" and not _looks_like_json(raw):
                self._free_text += 1  # free text where JSON was required: twice, and the server ignores it
                if self._free_text >= 2:
                    self._advance(method, "prompt")
            raise
        self._free_text = 0
        return answer

    def _advance(self, method: StructuredOutput, to: StructuredOutput) -> bool:
        with self._lock:
            if self.method == method:
                self.method = to
                self._free_text = 0
            return True

    def _runnable(
        self,
        method: StructuredOutput,
        schema: dict[str, Any],
        model: BaseChatModel,
        cache: dict[tuple[StructuredOutput, str], Runnable[Any, Any]] | None = None,
    ) -> Runnable[Any, Any]:
        """The runnable that asks `model` for `schema` by `method`, built once."""
        cache = self._runnables if cache is None else cache
        key = (method, json.dumps(schema, sort_keys=True))
        found = cache.get(key)
        if found is None:
            found = cache[key] = _build(method, schema, model)
        return found

    async def _loop_model(self) -> tuple[BaseChatModel, dict[tuple[StructuredOutput, str], Runnable[Any, Any]]]:
        if self._loop_models is None:
            return self.model, self._runnables
        held = await self._loop_models.get()
        return held["model"], held["runnables"]

    async def _open_loop_model(self) -> dict[str, Any]:
        """A copy of an OpenAI-family model with an async HTTP client of this event loop's own.

        langchain-openai shares one cached async client per base URL across event loops, and its pooled
        connections die with the loop that opened them: a second `asyncio.run` failed ("Event loop is
        closed"). The copy shares everything else, and its client closes with the loop.
        """
        import openai

        base = self.model.root_async_client  # type: ignore[attr-defined]
        http_client = openai.DefaultAsyncHttpxClient(timeout=base.timeout)
        client = openai.AsyncOpenAI(
            api_key=base.api_key,
            organization=base.organization,
            base_url=base.base_url,
            timeout=base.timeout,
            max_retries=base.max_retries,
            default_headers=dict(base._custom_headers),
            default_query=dict(base._custom_query),
            http_client=http_client,
        )
        model = self.model.model_copy(
            update={
                "root_async_client": client,
                "async_client": client.chat.completions,
                "http_async_client": http_client,
            }
        )
        return {"model": model, "runnables": {}, "http_client": http_client}


def structured_calls(model: BaseChatModel, method: StructuredOutput = "auto") -> StructuredCalls:
    """The `StructuredCalls` of a model object (made once, kept while the model lives)."""
    with _registry_lock:
        found = _registry.get((id(model), method))
        if found is None or found.model is not model:
            found = _registry[(id(model), method)] = StructuredCalls(model, method)
            weakref.finalize(model, _registry.pop, (id(model), method), None)
        return found


_registry: dict[tuple[int, str], StructuredCalls] = {}
_registry_lock = threading.Lock()


class MethodUnsupported(NotImplementedError):
    """The model class has no such structured-output method."""


def _build(method: StructuredOutput, schema: dict[str, Any], model: BaseChatModel) -> Runnable[Any, Any]:
    if method == "prompt":
        return model
    if method == "json_mode" and _takes_response_format(model):
        # The schema travels in response_format too: llama.cpp (its server, and ChatLlamaCpp in process)
        # turns it into a grammar; a server that refuses the extra key moves `auto` to the next method.
        return model.bind(response_format={"type": "json_object", "schema": schema})
    options: dict[str, Any] = {"include_raw": True}
    if method != "json_schema" or _is_openai_family(model):
        options["method"] = method
    try:
        return model.with_structured_output(schema, **options)
    except (NotImplementedError, TypeError, ValueError) as error:
        raise MethodUnsupported(f"{type(model).__name__} has no structured output by {method}: {error}") from error


def _prompt(method: StructuredOutput, schema: dict[str, Any], messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The messages, with the schema spelled out where the method does not send it as a schema."""
    if method in ("json_mode", "prompt"):
        return [*messages, HumanMessage(JSON_ANSWER_INSTRUCTIONS.format(schema=json.dumps(schema, indent=2)))]
    return list(messages)


def _config(method: StructuredOutput) -> RunnableConfig:
    """Callbacks (usage accounting) see which method served the call."""
    return {"metadata": {"memalign_structured_output": method}}


def _looks_like_json(raw: str) -> bool:
    text = raw.strip().removeprefix("```json").removeprefix("```").strip()
    return text.startswith(("{", "["))


def _is_openai_family(model: BaseChatModel) -> bool:
    return any(base.__name__ == "BaseChatOpenAI" for base in type(model).__mro__)


def _takes_response_format(model: BaseChatModel) -> bool:
    """Models whose requests carry an OpenAI-style `response_format` (OpenAI-compatible servers, llama.cpp)."""
    return _is_openai_family(model) or type(model).__name__ == "ChatLlamaCpp"


def _has_cached_async_client(model: BaseChatModel) -> bool:
    return _is_openai_family(model) and getattr(model, "root_async_client", None) is not None


async def _close_loop_model(held: dict[str, Any]) -> None:
    await cast(Any, held["http_client"]).aclose()
