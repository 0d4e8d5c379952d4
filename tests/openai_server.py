"""A tiny OpenAI-compatible chat server on 127.0.0.1, answering like the scripted fake.

It lets the tests drive the real `langchain-openai` client (request building, structured output,
response parsing), the quick start's command line, and MLflow's MemAlign through LiteLLM (chat and
`/v1/embeddings`), with no network beyond loopback. It can behave
like the servers users run: `refuse` some request formats the way llama.cpp's server refuses
`json_schema` (an HTTP 500 naming `response_format`), or `ignore_format` and answer free text unless
the prompt itself asks for JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from loopback import JsonHandler, serving

from fakes import (
    BagOfWordsEmbeddings,
    apply_guidelines_literally,
    learned_rule_policy,
    literal_comparison,
    rationale_distiller,
)

Policy = Callable[[str, list[dict[str, Any]]], dict[str, Any]]


def scripted_policy(kind: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    system = str(messages[0]["content"]) if messages else ""
    user = "\n".join(str(message["content"]) for message in messages[1:])
    if kind == "verdict":
        return learned_rule_policy(default="no")(system, user)
    if kind == "distilled_guidelines":
        return rationale_distiller(system + "\n" + user)
    if kind == "guideline_comparison":
        return literal_comparison(system + "\n" + user)
    if kind == "evidence_check":
        return apply_guidelines_literally(user)
    return {"guidelines": []}


KINDS = ("verdict", "distilled_guidelines", "guideline_comparison", "consolidated_guidelines", "evidence_check")


def request_format(body: dict[str, Any]) -> str:
    """How a request asks for JSON: json_schema, json_object, tools, or text (the prompt alone)."""
    if body.get("tools"):
        return "tools"
    return str((body.get("response_format") or {}).get("type") or "text")


def request_kind(body: dict[str, Any]) -> str:
    """Which of the graphs' prompts a request is, wherever its schema travels."""
    fmt = body.get("response_format") or {}
    named = (fmt.get("json_schema") or {}).get("name") or (fmt.get("schema") or {}).get("title")
    if body.get("tools"):
        named = body["tools"][0]["function"]["name"]
    text = "\n".join(str(message.get("content")) for message in body["messages"])
    return named or next((kind for kind in KINDS if f'"title": "{kind}"' in text), "verdict")


def embeddings_reply(body: dict[str, Any]) -> dict[str, Any]:
    """`/v1/embeddings`: bag-of-words vectors (texts sharing words are close), as the fake embeddings give."""
    texts = [body["input"]] if isinstance(body["input"], str) else list(body["input"])
    vectors = BagOfWordsEmbeddings(dimensions=64).embed_documents([str(text) for text in texts])
    data = [{"object": "embedding", "index": i, "embedding": vector} for i, vector in enumerate(vectors)]
    return {
        "object": "list",
        "data": data,
        "model": body.get("model"),
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
    }


@contextmanager
def openai_compatible_server(
    policy: Policy = scripted_policy,
    *,
    refuse: frozenset[str] = frozenset(),
    ignore_format: bool = False,
    status: int | None = None,
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Serve `/v1/chat/completions` until the block ends; yields the base URL and the requests seen.
    With `status`, every request gets that HTTP error (401: the key refused, as a provider says it)."""
    requests: list[dict[str, Any]] = []

    class Handler(JsonHandler):
        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append(body)
            if status is not None:
                error = {"message": "Incorrect API key provided.", "type": "invalid_request_error"}
                return self.send_json(status, {"error": error})
            if self.path.rstrip("/").endswith("/embeddings"):
                return self.send_json(200, embeddings_reply(body))
            fmt = request_format(body)
            if fmt in refuse:
                field = "tools" if fmt == "tools" else "response_format.type"
                detail = f"1 validation error: body.{field}: Input should be 'text' or 'json_object', got {fmt!r}"
                return self.send_json(500, {"error": {"message": detail, "type": "internal_server_error"}})
            answer = json.dumps(policy(request_kind(body), body["messages"]))
            prompt_asks = any("Reply with one JSON object" in str(m.get("content")) for m in body["messages"])
            if ignore_format and not prompt_asks:
                answer = "Sure! I had a look, and I think it is fine overall."
            message: dict[str, Any] = {"role": "assistant", "content": answer}
            if fmt == "tools" and not ignore_format:
                name = body["tools"][0]["function"]["name"]
                call = {"id": "call-1", "type": "function", "function": {"name": name, "arguments": answer}}
                message = {"role": "assistant", "content": None, "tool_calls": [call]}
            self.send_json(
                200,
                {
                    "id": f"chatcmpl-{len(requests)}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                },
            )

    with serving(Handler) as url:
        yield f"{url}/v1", requests
