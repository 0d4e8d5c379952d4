"""A tiny OpenAI-compatible chat server on 127.0.0.1, answering like the scripted fake.

It lets the tests drive the real `langchain-openai` client (request building, structured output,
response parsing) and the quick start's command line, with no network beyond loopback.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fakes import learned_rule_policy, literal_comparison, rationale_distiller

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
    return {"guidelines": []}


@contextmanager
def openai_compatible_server(policy: Policy = scripted_policy) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Serve `/v1/chat/completions` until the block ends; yields the base URL and the requests seen."""
    requests: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append(body)
            kind = body.get("response_format", {}).get("json_schema", {}).get("name", "verdict")
            content = json.dumps(policy(kind, body["messages"]))
            reply = {
                "id": f"chatcmpl-{len(requests)}",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
