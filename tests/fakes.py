"""Small fakes shared by the tests: a scripted chat model and a bag-of-words embedding.

LangChain's stock fake chat models raise NotImplementedError on `with_structured_output`, and
`DeterministicFakeEmbedding` gives unrelated vectors to related texts, so neither can exercise
retrieval order or dedupe. These fakes can, and they never touch the network.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableLambda
from pydantic import ConfigDict, PrivateAttr

from memalign_graph import JudgeSpec, MemAlignJudge
from memalign_graph.fake_model import (  # noqa: F401 - FEEDBACK_PATTERN is re-exported for tests
    FEEDBACK_PATTERN,
    FakeChatModel,
    FakeEmbeddings,
    apply_guidelines_literally,
    compare_literally,
    distill_rationales,
    learned_rule,
)
from memalign_graph.memory.qdrant_store import QdrantEpisodicStore


@contextmanager
def in_memory_judge(spec: JudgeSpec, model: BaseChatModel | None = None, **options: Any) -> Iterator[MemAlignJudge]:
    """A judge whose two memories live in this process only (Qdrant in memory, LangGraph's InMemorySaver),
    on the package's fakes unless a model is given; both memories are closed when the block ends."""
    from langgraph.checkpoint.memory import InMemorySaver

    store = QdrantEpisodicStore()
    try:
        with MemAlignJudge(
            spec,
            model or FakeChatModel(),
            embeddings=FakeEmbeddings(),
            episodic_store=store,
            checkpointer=InMemorySaver(),
            **options,
        ) as judge:
            yield judge
    finally:
        store.close()


GUIDELINE_PATTERN = re.compile(r"^- \[(gl-[0-9a-f]+)\] (.*)$", re.MULTILINE)

Answer = dict[str, Any] | str | Exception
# Only a broken bound on concurrency lets a gathering wait this long; it then fails instead of hanging.
GATHER_TIMEOUT_S = 60


def learned_rule_policy(default: Any) -> Callable[[str, str], dict[str, Any]]:
    """A judge that answers `default` unless a guideline or a shown example says 'answer X when Y'.

    Guidelines the fake distiller writes read "Answer <value> when the text mentions <word>."; the
    judge applies the first one whose word appears in the judged example, as a real model would.
    """

    def policy(system: str, user: str) -> dict[str, Any]:
        rule = learned_rule(system, user)
        if rule is not None:
            return {"rationale": f"A guideline says to answer {rule[0]} when {rule[1]} appears.", "value": rule[0]}
        return {"rationale": "No guideline applies; default verdict.", "value": default}

    return policy


# The package's offline fake distils and compares the same way; the scripted fake reuses it.
rationale_distiller = distill_rationales
literal_comparison = compare_literally


def _prompt_kind(messages: list[BaseMessage]) -> str:
    """Which prompt this is, from the schema title the JSON fallback writes into it."""
    text = "\n".join(str(message.content) for message in messages)
    titles = ("verdict", "distilled_guidelines", "guideline_comparison", "consolidated_guidelines", "evidence_check")
    return next((title for title in titles if f'"title": "{title}"' in text), "verdict")


class ScriptedChatModel(BaseChatModel):
    """A chat model that answers by prompt kind (verdict, distillation, close call, consolidation, evidence
    check); records calls.

    Each kind takes a callable of the prompt text, or a list of scripted answers used in order (an
    `Exception` in the list is raised, a `str` is returned as raw text). `structured=False` makes it a
    model without native structured output, to exercise the JSON fallback.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    judge: Callable[[str, str], dict[str, Any]] | list[Answer] = learned_rule_policy(default=False)
    distill: Callable[[str], dict[str, Any]] | list[Answer] = rationale_distiller
    close_call: Callable[[str], dict[str, Any]] | list[Answer] = lambda prompt: literal_comparison(prompt)
    consolidate: Callable[[str], dict[str, Any]] | list[Answer] = lambda prompt: {"guidelines": []}
    evidence: Callable[[str], dict[str, Any]] | list[Answer] = apply_guidelines_literally
    structured: bool = True
    latency_s: float = 0.0
    gather: int = 0  # the first `gather` calls of `gather_kind` wait until that many are in flight (no clock)
    gather_kind: str = "verdict"

    _calls: list[dict[str, Any]] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _in_flight: int = PrivateAttr(default=0)
    _max_in_flight: int = PrivateAttr(default=0)
    _barrier: Any = PrivateAttr(default=None)
    _abarriers: dict[Any, Any] = PrivateAttr(default_factory=dict)
    _waiting: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    @property
    def calls(self) -> list[dict[str, Any]]:
        return list(self._calls)

    def calls_of(self, kind: str) -> list[dict[str, Any]]:
        return [call for call in self._calls if call["kind"] == kind]

    @property
    def max_in_flight(self) -> int:
        return self._max_in_flight

    def with_structured_output(self, schema: Any, *, include_raw: bool = False, **kwargs: Any) -> RunnableLambda:
        if not self.structured:
            raise NotImplementedError
        kind = schema["title"]

        def structured(raw: str) -> Any:
            try:
                parsed = json.loads(raw)
                error = None
            except json.JSONDecodeError as exc:
                parsed, error = None, exc
            message = AIMessage(raw)
            return {"raw": message, "parsed": parsed, "parsing_error": error} if include_raw else parsed

        def answer(messages: list[BaseMessage]) -> Any:
            return structured(self._answer(kind, messages))

        async def aanswer(messages: list[BaseMessage]) -> Any:
            return structured(await self._aanswer(kind, messages))

        return RunnableLambda(answer, afunc=aanswer)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        answer = self._answer(_prompt_kind(messages), messages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(answer))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        answer = await self._aanswer(_prompt_kind(messages), messages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(answer))])

    def _answer(self, kind: str, messages: list[BaseMessage]) -> str:
        self._enter(kind, messages)
        try:
            if self._joins_gathering(kind):
                if self._barrier is None:
                    with self._lock:
                        self._barrier = self._barrier or threading.Barrier(self.gather)
                self._barrier.wait(timeout=GATHER_TIMEOUT_S)
            if self.latency_s:
                time.sleep(self.latency_s)
            return self._respond(kind, messages)
        finally:
            self._leave()

    async def _aanswer(self, kind: str, messages: list[BaseMessage]) -> str:
        """The async path waits on the event loop, as a real model's HTTP call does."""
        self._enter(kind, messages)
        try:
            if self._joins_gathering(kind):
                barrier = self._abarriers.setdefault(asyncio.get_running_loop(), asyncio.Barrier(self.gather))
                await asyncio.wait_for(barrier.wait(), GATHER_TIMEOUT_S)
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            return self._respond(kind, messages)
        finally:
            self._leave()

    def _joins_gathering(self, kind: str) -> bool:
        """Whether this call is one of the first `gather` of its kind, which wait for each other."""
        with self._lock:
            if kind != self.gather_kind or self._waiting >= self.gather:
                return False
            self._waiting += 1
            return True

    def _enter(self, kind: str, messages: list[BaseMessage]) -> None:
        system = str(messages[0].content) if messages else ""
        user = "\n".join(str(message.content) for message in messages[1:])
        call = {"kind": kind, "system": system, "user": user, "messages": messages}
        call["thread"] = threading.current_thread().name
        with self._lock:
            self._calls.append(call)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _respond(self, kind: str, messages: list[BaseMessage]) -> str:
        system = str(messages[0].content) if messages else ""
        user = "\n".join(str(message.content) for message in messages[1:])
        script = {
            "verdict": self.judge,
            "distilled_guidelines": self.distill,
            "guideline_comparison": self.close_call,
            "consolidated_guidelines": self.consolidate,
            "evidence_check": self.evidence,
        }[kind]
        if isinstance(script, list):
            with self._lock:
                if not script:
                    raise AssertionError(f"the test scripted no more {kind} answers")
                result = script.pop(0)
        elif kind == "verdict":
            result = script(system, user)
        else:
            result = script(system + "\n" + user)
        if isinstance(result, Exception):
            raise result
        return result if isinstance(result, str) else json.dumps(result)


class BagOfWordsEmbeddings(Embeddings):
    """Texts sharing words get close vectors: enough to test retrieval order and dedupe offline."""

    def __init__(self, dimensions: int = 256) -> None:
        self.dimensions = dimensions
        self.embedded: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded.extend(texts)
        return [self._vector(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents(texts)  # CPU only: no executor, as a hosted model's client would not use one

    async def aembed_query(self, text: str) -> list[float]:
        return self._vector(text)

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            index = int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimensions
            vector[index] += 1.0
        norm = math.sqrt(sum(value * value for value in vector)) or 1.0
        if norm == 1.0 and not any(vector):
            vector[0] = 1.0
        return [value / norm for value in vector]


class CountingEmbeddings(BagOfWordsEmbeddings):
    """Counts round trips: one per `embed_documents` or `embed_query` call, however many texts."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return super().embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        return super().embed_query(text)


# -- appended for the evaluation protocol and accounting tests ---------------------------------------


class MeteredChatModel(FakeChatModel):
    """The package's fake model (every structured answer is one model call reporting `usage_metadata`).

    `refuse` makes every verdict on an example whose judged text contains it an invalid value, so that
    example ends with no verdict (the parse retries run out).
    """

    refuse: str | None = None

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        schema = kwargs.get("fake_schema")
        if schema is None:
            return super()._generate(messages, stop, run_manager, **kwargs)
        content = self._answer(schema["title"], messages, schema)
        text = "\n".join(str(message.content) for message in messages)
        judged = text.split("Judge this example:", 1)[-1]  # the example, and any retry turns after it
        if schema["title"] == "verdict" and self.refuse and self.refuse in judged:
            content = json.dumps({"rationale": "FAKE MODEL: refusing on purpose.", "value": "not-a-valid-value"})
        usage = {
            "input_tokens": len(text) // 4 + 1,
            "output_tokens": len(content) // 4 + 1,
            "total_tokens": len(text) // 4 + len(content) // 4 + 2,
        }
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content, usage_metadata=usage))])
