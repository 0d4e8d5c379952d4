"""An OpenAI-compatible server on 127.0.0.1 for the side-by-side with MLflow: chat completions and embeddings,
with a fixed latency per request, answering both libraries' prompts as a capable model would.

Two traps, both measured on this kind of machine, are avoided on purpose: the status line, headers and body
go out in one write with TCP_NODELAY set (written apart, every keep-alive request waits ~40 ms for a
delayed ACK), and embeddings are answered in base64 when asked (the openai SDK asks; float lists cost
seconds of client CPU at 1,000 texts).
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from benchmarks.fakes import GroupingChatModel
from memalign_graph.fake_model import FakeEmbeddings
from memalign_graph.rendering import approximate_tokens

MLFLOW_RECORD = re.compile(r'"id": (\d+),(.*?)\n\}', re.DOTALL)
MLFLOW_RATIONALE = re.compile(r'"rationale": "(.*?)"', re.DOTALL)


@dataclass
class Traffic:
    """What the server was asked, by model name and kind: calls, prompt tokens, embedded texts."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: dict[tuple[str, str], int] = field(default_factory=dict)
    prompt_tokens: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    embedded: dict[str, int] = field(default_factory=dict)
    embedding_calls: dict[str, int] = field(default_factory=dict)

    def record_chat(self, model: str, kind: str, tokens: int) -> None:
        with self.lock:
            self.calls[(model, kind)] = self.calls.get((model, kind), 0) + 1
            self.prompt_tokens.setdefault((model, kind), []).append(tokens)

    def record_embedding(self, model: str, texts: int) -> None:
        with self.lock:
            self.embedded[model] = self.embedded.get(model, 0) + texts
            self.embedding_calls[model] = self.embedding_calls.get(model, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "calls": dict(self.calls),
                "prompt_tokens": {key: list(value) for key, value in self.prompt_tokens.items()},
                "embedded": dict(self.embedded),
                "embedding_calls": dict(self.embedding_calls),
            }


def _kind(body: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    schema = (body.get("response_format") or {}).get("json_schema") or {}
    return str(schema.get("name") or "text"), schema.get("schema")


def _messages(body: dict[str, Any]) -> list[BaseMessage]:
    kinds = {"system": SystemMessage, "assistant": AIMessage}
    found: list[BaseMessage] = []
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, list):  # content parts
            content = "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
        found.append(kinds.get(message.get("role"), HumanMessage)(content=str(content or "")))
    return found


def mlflow_guidelines(prompt: str) -> dict[str, Any]:
    """MLflow's distillation answered as `GroupingChatModel` answers ours: one guideline per distinct
    rationale in the batch, citing the records (by MLflow's small integer ids) it comes from."""
    grouped: dict[str, list[int]] = {}
    for ref, record in MLFLOW_RECORD.findall(prompt):
        rationale = MLFLOW_RATIONALE.search(record)
        if rationale and rationale.group(1).strip():
            grouped.setdefault(rationale.group(1).strip(), []).append(int(ref))
    return {"guidelines": [{"guideline_text": text, "source_trace_ids": ids} for text, ids in grouped.items()]}


class _Answers:
    def __init__(self) -> None:
        self.ours = GroupingChatModel()
        self.embeddings = FakeEmbeddings(dimensions=384)

    def chat(self, body: dict[str, Any], traffic: Traffic) -> dict[str, Any]:
        kind, schema = _kind(body)
        messages = _messages(body)
        tokens = sum(approximate_tokens(str(message.content)) for message in messages)
        model = str(body.get("model"))
        prompt = "\n".join(str(message.content) for message in messages)
        if "guideline_text" in json.dumps(schema or {}) or "source_trace_ids" in prompt:
            kind, answer = "mlflow_distillation", mlflow_guidelines(prompt)
        elif schema is not None and kind in {
            "verdict",
            "distilled_guidelines",
            "guideline_comparison",
            "consolidated_guidelines",
            "evidence_check",
        }:
            answer = json.loads(self.ours._answer(kind, messages, schema))
        else:  # MLflow's judge: a result and a rationale
            kind = "mlflow_judgment"
            answer = {"result": True, "rationale": "The reply addresses the customer's request politely."}
        traffic.record_chat(model, kind, tokens)
        message = {"role": "assistant", "content": json.dumps(answer)}
        return {
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": tokens, "completion_tokens": 10, "total_tokens": tokens + 10},
        }

    def embed(self, body: dict[str, Any], traffic: Traffic) -> dict[str, Any]:
        texts = [body["input"]] if isinstance(body["input"], str) else list(body["input"])
        texts = [text if isinstance(text, str) else " ".join(map(str, text)) for text in texts]
        traffic.record_embedding(str(body.get("model")), len(texts))
        vectors = np.asarray(self.embeddings.embed_documents(texts), dtype=np.float32)
        dimensions = body.get("dimensions")
        if dimensions and dimensions < vectors.shape[1]:
            vectors = vectors[:, :dimensions]
        if body.get("encoding_format") == "base64":
            data = [base64.b64encode(vector.tobytes()).decode() for vector in vectors]
        else:
            data = [vector.tolist() for vector in vectors]
        return {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": item} for i, item in enumerate(data)],
            "model": body.get("model"),
            "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
        }


@contextmanager
def openai_mock(latency_s: float) -> Iterator[tuple[str, Traffic]]:
    """Serve `/v1/chat/completions` and `/v1/embeddings` until the block ends; yields the base URL and the
    traffic counters. Every request waits `latency_s` before its answer, each in its own thread."""
    traffic = Traffic()
    answers = _Answers()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a provider's API

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if latency_s:
                time.sleep(latency_s)
            if self.path.rstrip("/").endswith("/embeddings"):
                reply = answers.embed(body, traffic)
            else:
                reply = answers.chat(body, traffic)
            data = json.dumps(reply).encode()
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nConnection: keep-alive\r\n\r\n"
            ).encode()
            self.wfile.write(head + data)  # one write: no delayed-ACK wait between headers and body

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", traffic
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
