"""Stand-ins for the LLM and the embedding model that count what the graphs ask of them.

The benchmark's clock must measure memalign-graph, not a provider: `LatencyChatModel` answers
deterministically (it is the package's offline `FakeChatModel`) after a fixed per-call latency, and
counts calls, concurrency and prompt tokens per kind of call. `CountingEmbeddings` wraps any LangChain
`Embeddings` (the fast bag-of-words fake or the real all-MiniLM-L6-v2) and counts texts and seconds.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import PrivateAttr

from memalign_graph.fake_model import FEEDBACK_PATTERN, RATIONALE_PATTERN, FakeChatModel
from memalign_graph.prompts import JUDGE_SYSTEM_PROMPT
from memalign_graph.rendering import approximate_tokens

GUIDELINE_LINE = re.compile(r"^- \[(gl-[0-9a-f]+)\] (.*)$", re.MULTILINE)
TOPIC_RULE = re.compile(r"^(Answer \S+ when the text mentions [a-z]+\.)")
NOTES_PER_COMBINED_NOTE = 5
# The line of the judging system prompt right before the guideline block.
GUIDELINE_HEADER = JUDGE_SYSTEM_PROMPT.split("{guidelines}")[0].rsplit("\n\n", 1)[-1]


@dataclass
class KindStats:
    """What one kind of call (verdict, distilled_guidelines, ...) cost; safe to read after a run."""

    calls: int = 0
    max_in_flight: int = 0
    seconds: float = 0.0
    prompt_tokens: list[int] = field(default_factory=list)
    guideline_block_tokens: list[int] = field(default_factory=list)
    completion_tokens: int = 0


class LatencyChatModel(FakeChatModel):
    """`FakeChatModel` with a per-call latency and thread-safe counters.

    Latency is slept inside the structured-output call, in threads with `time.sleep` and in asyncio
    with `asyncio.sleep`, so concurrency is whatever the graphs allow. Consolidation, which the
    package's fake leaves as a no-op, is answered deterministically here (`consolidate_by_topic`), so
    the prompt-token curve shows what a consolidating model does to the guideline block.
    """

    latency_s: float = 0.0

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _stats: dict[str, KindStats] = PrivateAttr(default_factory=dict)
    _in_flight: dict[str, int] = PrivateAttr(default_factory=dict)
    _in_flight_total: int = PrivateAttr(default=0)
    _max_in_flight_total: int = PrivateAttr(default=0)

    def with_structured_output(self, schema: Any, *, include_raw: bool = False, **kwargs: Any) -> Runnable:
        kind = schema["title"]

        def wrap(raw: str) -> Any:
            with self._lock:
                self._stats.setdefault(kind, KindStats()).completion_tokens += approximate_tokens(raw)
            parsed = json.loads(raw)
            return {"raw": AIMessage(raw), "parsed": parsed, "parsing_error": None} if include_raw else parsed

        def answer(messages: Any) -> Any:
            listed = list(messages.to_messages()) if hasattr(messages, "to_messages") else list(messages)
            with self._call(kind, listed):
                if self.latency_s:
                    time.sleep(self.latency_s)
                return wrap(self._answer(kind, listed, schema))

        async def aanswer(messages: Any) -> Any:
            listed = list(messages.to_messages()) if hasattr(messages, "to_messages") else list(messages)
            with self._call(kind, listed):
                if self.latency_s:
                    await asyncio.sleep(self.latency_s)
                return wrap(self._answer(kind, listed, schema))

        return RunnableLambda(answer, afunc=aanswer)

    def _answer(self, kind: str, messages: list[BaseMessage], schema: dict[str, Any] | None) -> str:
        if kind == "consolidated_guidelines":
            return json.dumps(consolidate_by_topic("\n".join(str(m.content) for m in messages[1:])))
        return super()._answer(kind, messages, schema)

    @contextmanager
    def _call(self, kind: str, messages: list[BaseMessage]) -> Iterator[None]:
        tokens = sum(approximate_tokens(str(message.content)) for message in messages)
        block = guideline_block_tokens(str(messages[0].content)) if kind == "verdict" and messages else None
        with self._lock:
            stats = self._stats.setdefault(kind, KindStats())
            stats.calls += 1
            stats.prompt_tokens.append(tokens)
            if block is not None:
                stats.guideline_block_tokens.append(block)
            self._in_flight[kind] = self._in_flight.get(kind, 0) + 1
            stats.max_in_flight = max(stats.max_in_flight, self._in_flight[kind])
            self._in_flight_total += 1
            self._max_in_flight_total = max(self._max_in_flight_total, self._in_flight_total)
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                stats.seconds += elapsed
                self._in_flight[kind] -= 1
                self._in_flight_total -= 1

    # -- reading the counters ---------------------------------------------------------------------

    def stats(self, kind: str) -> KindStats:
        with self._lock:
            found = self._stats.get(kind, KindStats())
            return KindStats(
                calls=found.calls,
                max_in_flight=found.max_in_flight,
                seconds=found.seconds,
                prompt_tokens=list(found.prompt_tokens),
                guideline_block_tokens=list(found.guideline_block_tokens),
                completion_tokens=found.completion_tokens,
            )

    @property
    def calls(self) -> int:
        with self._lock:
            return sum(stats.calls for stats in self._stats.values())

    @property
    def max_in_flight(self) -> int:
        return self._max_in_flight_total

    def reset(self) -> None:
        with self._lock:
            self._stats.clear()
            self._in_flight.clear()
            self._in_flight_total = 0
            self._max_in_flight_total = 0


class GroupingChatModel(LatencyChatModel):
    """Distills as a capable model does on this workload: one guideline per distinct rationale in a batch,
    citing every feedback item it comes from. Also tallies what the same answers cost in MLflow
    MemAlign's format (`guideline_text`, `source_trace_ids` as indices over all examples, as strings), so
    the two provenance schemes are compared on identical content."""

    _mlflow_tokens: int = PrivateAttr(default=0)
    _indices: dict[str, int] = PrivateAttr(default_factory=dict)

    def _answer(self, kind: str, messages: list[BaseMessage], schema: dict[str, Any] | None) -> str:
        if kind != "distilled_guidelines":
            return super()._answer(kind, messages, schema)
        prompt = "\n".join(str(message.content) for message in messages)
        ours: dict[str, list[int]] = {}
        theirs: dict[str, list[str]] = {}
        with self._lock:
            for ref, body in FEEDBACK_PATTERN.findall(prompt):
                index = self._indices.setdefault(body, len(self._indices))
                rationale = RATIONALE_PATTERN.search(body)
                if rationale:
                    ours.setdefault(rationale[1].strip(), []).append(int(ref))
                    theirs.setdefault(rationale[1].strip(), []).append(str(index))
            mlflow = [{"guideline_text": text, "source_trace_ids": ids} for text, ids in theirs.items()]
            self._mlflow_tokens += approximate_tokens(json.dumps({"guidelines": mlflow}))
        return json.dumps({"guidelines": [{"text": text, "sources": refs} for text, refs in ours.items()]})

    @property
    def mlflow_completion_tokens(self) -> int:
        with self._lock:
            return self._mlflow_tokens


def consolidate_by_topic(prompt: str) -> dict[str, Any]:
    """Fold the given guidelines into one per topic rule, and notes into short combined notes.

    A deterministic stand-in for what a real model is asked to do: fewer, shorter guidelines, each
    replacement citing the ids it replaces (so provenance, and forgetting, still work).
    """
    rules: dict[str, list[tuple[str, str]]] = {}
    notes: list[tuple[str, str]] = []
    for key, text in GUIDELINE_LINE.findall(prompt):
        rule = TOPIC_RULE.match(text)
        if rule:
            rules.setdefault(rule.group(1), []).append((key, text))
        else:
            notes.append((key, text))
    answer = [
        {"text": min((text for _, text in group), key=len), "replaces": [key for key, _ in group]}
        for group in rules.values()
        if len(group) > 1
    ]
    for start in range(0, len(notes) - 1, NOTES_PER_COMBINED_NOTE):
        group = notes[start : start + NOTES_PER_COMBINED_NOTE]
        words: list[str] = []
        for _, text in group:
            words.extend(word for word in re.findall(r"[a-z]+", text.lower()) if word not in ("note", "also", "weigh"))
        kept = list(dict.fromkeys(words))[:12]
        answer.append({"text": "Also weigh: " + ", ".join(kept) + ".", "replaces": [key for key, _ in group]})
    return {"guidelines": answer}


def guideline_block_tokens(system_prompt: str) -> int:
    """Tokens of the guideline block of a judging prompt (what the guideline budget caps)."""
    _, found, block = system_prompt.partition(GUIDELINE_HEADER)
    return approximate_tokens(block.strip()) if found else 0


class CountingEmbeddings(Embeddings):
    """Counts the texts an embedding model is asked for, and the time it takes, per method."""

    def __init__(self, inner: Embeddings, *, label: str, latency_s: float = 0.0) -> None:
        self.inner = inner
        self.label = label
        self.latency_s = latency_s  # a hosted embedding model's round trip, slept per call
        self.calls = 0
        self._lock = threading.Lock()
        self.document_texts = 0
        self.document_calls = 0
        self.query_texts = 0
        self.document_seconds = 0.0
        self.query_seconds = 0.0
        self.marked_texts = 0
        self.marker: str | None = None

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        started = time.perf_counter()
        self._wait()
        vectors = self.inner.embed_documents(texts)
        elapsed = time.perf_counter() - started
        with self._lock:
            self.document_calls += 1
            self.document_texts += len(texts)
            self.document_seconds += elapsed
            if self.marker:
                self.marked_texts += sum(1 for text in texts if self.marker in text)
        return vectors

    def embed_query(self, text: str) -> list[float]:
        started = time.perf_counter()
        self._wait()
        vector = self.inner.embed_query(text)
        elapsed = time.perf_counter() - started
        with self._lock:
            self.query_texts += 1
            self.query_seconds += elapsed
        return vector

    async def aembed_query(self, text: str) -> list[float]:
        """The inner model's own async path (the fast fake answers on the loop; MiniLM in a thread)."""
        started = time.perf_counter()
        with self._lock:
            self.calls += 1
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        vector = await self.inner.aembed_query(text)
        elapsed = time.perf_counter() - started
        with self._lock:
            self.query_texts += 1
            self.query_seconds += elapsed
        return vector

    def _wait(self) -> None:
        with self._lock:
            self.calls += 1
        if self.latency_s:
            time.sleep(self.latency_s)

    def reset(self) -> None:
        with self._lock:
            self.calls = 0
            self.document_texts = self.document_calls = self.query_texts = self.marked_texts = 0
            self.document_seconds = self.query_seconds = 0.0
