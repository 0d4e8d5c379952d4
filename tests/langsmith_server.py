"""A loopback double of the LangSmith API endpoints the real `langsmith.Client` calls in these tests.

No LangSmith server can run here, so the tests drive the real client (request building, pagination,
response parsing into `langsmith.schemas`) against this double on 127.0.0.1. It keeps projects, runs,
feedback, datasets, examples and comparative experiments in memory, answers only the endpoints below,
and records every request, so a test can also show that an offline evaluation wrote nothing:

    GET  /info                      GET  /sessions, /sessions/{id}      GET  /datasets
    POST /runs/query                GET  /feedback                      POST /feedback
    GET  /examples                  POST /datasets/comparative          POST /runs/multipart, /runs/batch

`/runs/query` understands one filter, the one `from_langsmith` sends: `eq(feedback_key, "KEY")`.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loopback import JsonHandler, serving

TENANT = "00000000-0000-4000-8000-000000000001"
_FEEDBACK_KEY_FILTER = re.compile(r'^eq\(feedback_key, "([^"]+)"\)$')


def now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class LangSmithDouble:
    """What the double holds; tests seed it with the `add_*` helpers and read `requests`."""

    url: str = ""
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    feedback: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)
    comparative: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # -- seeding -------------------------------------------------------------------------------

    def add_dataset(self, name: str) -> str:
        dataset_id = str(uuid.uuid4())
        self.datasets[dataset_id] = {
            "id": dataset_id,
            "name": name,
            "tenant_id": TENANT,
            "created_at": now(),
            "modified_at": now(),
            "data_type": "kv",
        }
        return dataset_id

    def add_example(self, dataset_id: str, inputs: dict[str, Any], outputs: dict[str, Any] | None = None) -> str:
        example_id = str(uuid.uuid4())
        self.examples[example_id] = {
            "id": example_id,
            "dataset_id": dataset_id,
            "inputs": inputs,
            "outputs": outputs,
            "created_at": now(),
            "modified_at": now(),
        }
        return example_id

    def add_project(self, name: str, *, dataset_id: str | None = None) -> str:
        project_id = str(uuid.uuid4())
        self.projects[project_id] = {
            "id": project_id,
            "name": name,
            "tenant_id": TENANT,
            "start_time": now(),
            "reference_dataset_id": dataset_id,
            "extra": {"metadata": {}},
        }
        return project_id

    def add_run(
        self, project_id: str, inputs: dict[str, Any], outputs: dict[str, Any], *, example_id: str | None = None
    ) -> str:
        run_id = str(uuid.uuid4())
        self.runs[run_id] = {
            "id": run_id,
            "name": "target",
            "run_type": "chain",
            "start_time": now(),
            "end_time": now(),
            "inputs": inputs,
            "outputs": outputs,
            "session_id": project_id,
            "trace_id": run_id,
            "dotted_order": f"20260101T000000000000Z{run_id}",
            "parent_run_id": None,
            "reference_example_id": example_id,
            "status": "success",
            "extra": {},
        }
        return run_id

    def add_feedback(self, run_id: str, key: str, *, source: str = "app", **fields: Any) -> str:
        feedback_id = str(uuid.uuid4())
        self.feedback[feedback_id] = {
            "id": feedback_id,
            "run_id": run_id,
            "trace_id": run_id,
            "key": key,
            "created_at": now(),
            "modified_at": now(),
            "feedback_source": {"type": source, "metadata": {}},
            **fields,
        }
        return feedback_id

    # -- answering -----------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((method, path))
        parts = path.strip("/").split("/")
        if (method, path) == ("GET", "/info"):
            return 200, {"version": "double", "instance_flags": {}}
        if method == "GET" and parts[0] == "sessions":
            if len(parts) == 2:
                return (200, self.projects[parts[1]]) if parts[1] in self.projects else (404, {"detail": "no project"})
            found = [
                p
                for p in self.projects.values()
                if ("name" not in query or p["name"] in query["name"])
                and ("reference_dataset" not in query or p["reference_dataset_id"] in query["reference_dataset"])
            ]
            return 200, _page(found, query)
        if method == "GET" and parts[0] == "datasets" and len(parts) == 1:
            return 200, _page([d for d in self.datasets.values() if d["name"] in query.get("name", [d["name"]])], query)
        if (method, path) == ("POST", "/runs/query"):
            return self._runs(body)
        if (method, path) == ("GET", "/feedback"):
            found = [
                f
                for f in self.feedback.values()
                if ("run" not in query or f["run_id"] in query["run"])
                and ("key" not in query or f["key"] in query["key"])
            ]
            return 200, _page(found, query)
        if (method, path) == ("POST", "/feedback"):
            stored = {"created_at": now(), "modified_at": now(), **body}
            with self.lock:
                self.feedback[str(body["id"])] = stored
            return 200, stored
        if (method, path) == ("GET", "/examples"):
            found = [
                e
                for e in self.examples.values()
                if ("dataset" not in query or e["dataset_id"] in query["dataset"])
                and ("id" not in query or e["id"] in query["id"])
            ]
            return 200, _page(found, query)
        if (method, path) == ("POST", "/datasets/comparative"):
            experiment = {**body, "tenant_id": TENANT, "created_at": now(), "modified_at": now()}
            first = self.projects[str(body["experiment_ids"][0])]
            experiment["reference_dataset_id"] = first["reference_dataset_id"]
            with self.lock:
                self.comparative[str(body["id"])] = experiment
            return 200, experiment
        if method == "POST" and path in ("/runs/multipart", "/runs/batch"):
            return 202, {}  # traces langsmith uploads on its own (evaluate_comparative traces its evaluators)
        return 404, {"detail": f"the LangSmith double does not serve {method} {path}"}

    def _runs(self, body: dict[str, Any]) -> tuple[int, Any]:
        runs = list(self.runs.values())
        if body.get("session"):
            runs = [r for r in runs if r["session_id"] in body["session"]]
        if body.get("id"):
            runs = [r for r in runs if r["id"] in body["id"]]
        if body.get("filter"):
            matched = _FEEDBACK_KEY_FILTER.match(body["filter"])
            if not matched:
                return 400, {"detail": f"the LangSmith double understands no filter {body['filter']!r}"}
            with_key = {f["run_id"] for f in self.feedback.values() if f["key"] == matched.group(1)}
            runs = [r for r in runs if r["id"] in with_key]
        return 200, {"runs": runs, "cursors": {"next": None}}


def _page(items: list[dict[str, Any]], query: dict[str, list[str]]) -> list[dict[str, Any]]:
    offset = int(query.get("offset", ["0"])[0])
    limit = int(query.get("limit", ["100"])[0])
    return items[offset : offset + limit]


@contextmanager
def langsmith_double() -> Iterator[LangSmithDouble]:
    """Serve the double on 127.0.0.1 until the block ends."""
    double = LangSmithDouble()

    class Handler(JsonHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            self._handle("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._handle("POST")

        def _handle(self, method: str) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw and "json" in (self.headers.get("Content-Type") or "json") else None
            self.send_json(*double.answer(method, url.path, parse_qs(url.query), body))

    with serving(Handler) as url:
        double.url = url
        yield double
