"""Moving a judge's memory between store configurations: embedded (Qdrant path + SQLite) to scale-out
(Qdrant server + Postgres, or a LangGraph server's own checkpointer), or back. Lossless: guidelines, the
feedback ledger and every episode with its vector travel as they are, so nothing is re-embedded and the
judge's working memory is identical. Idempotent: importing the same file twice leaves memory as one
import did. Only the current version travels: the target's history starts at the import.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from memalign_graph.errors import InvalidValueError
from memalign_graph.feedback import check_text
from memalign_graph.memory.episodic import EpisodicStore
from memalign_graph.memory.ledger import NOTHING_OUTSTANDING, Outstanding, memory_thread_id, pack_vector, version_write
from memalign_graph.spec import JudgeSpec

if TYPE_CHECKING:
    from langgraph_sdk.client import SyncLangGraphClient

EXPORT_FORMAT = "memalign-graph.memory/2"
_FORMAT_1 = "memalign-graph.memory/1"  # records carried `distilled`, guidelines their `embedding`
_COMPARED = ("guidelines", "guideline_vectors", "records")


class SemanticMemoryOwner(Protocol):
    """What export and import need of semantic memory: `MemoryThread`, or a served judge's `ServedMemory`."""

    namespace: str

    def values(self) -> dict[str, Any]: ...

    def write(self, values: Mapping[str, Any]) -> None: ...

    def exclusive(self) -> AbstractContextManager[None]: ...


class ServedMemory:
    """The semantic memory of a judge that a LangGraph server serves (`langgraph.json`, the deploy stack).

    It is the server's thread `memory_thread_id(judge, namespace)`, written through the server's API
    (`threads.update_state`, as the alignment graph's `write_memory` step), so the server's own
    checkpointer holds it. Import while no alignment of that judge runs: the server orders runs on a
    thread, not state updates between them.
    """

    def __init__(
        self, client: SyncLangGraphClient, spec: JudgeSpec, *, namespace: str, graph_id: str = "alignment"
    ) -> None:
        self.client = client
        self.spec = spec
        self.namespace = namespace
        self.graph_id = graph_id
        self.thread_id = memory_thread_id(spec.name, namespace)

    def values(self) -> dict[str, Any]:
        from langgraph_sdk.errors import NotFoundError

        try:
            values = self.client.threads.get_state(self.thread_id)["values"]
        except NotFoundError:
            return {}
        return dict(values) if isinstance(values, dict) else {}

    def write(self, values: Mapping[str, Any]) -> None:
        thread = self.client.threads.create(thread_id=self.thread_id, if_exists="do_nothing", graph_id=self.graph_id)
        if (thread.get("metadata") or {}).get("graph_id") is None:
            # A thread made ahead of any run has no graph, and the server updates state only through one.
            self.client.threads.update(self.thread_id, metadata={"graph_id": self.graph_id})
        update = version_write(self.values(), values, judge=self.spec.name, namespace=self.namespace)
        self.client.threads.update_state(self.thread_id, update, as_node="write_memory")

    def exclusive(self) -> AbstractContextManager[None]:
        return nullcontext()


def export_memory(
    memory: SemanticMemoryOwner, store: EpisodicStore, spec: JudgeSpec, path: str | Path
) -> dict[str, int]:
    """Write the judge's current memory to a JSON file; returns what it wrote."""
    with memory.exclusive():  # an unfinished alignment is finished first
        values = memory.values()
        episodes = store.vectors(spec.name, memory.namespace)
    outstanding: Outstanding = values.get("outstanding") or NOTHING_OUTSTANDING
    document = {
        "format": EXPORT_FORMAT,
        "judge": spec.model_dump(mode="json"),
        "namespace": memory.namespace,
        "guidelines": values.get("guidelines") or {},
        "guideline_vectors": values.get("guideline_vectors") or {},
        "records": values.get("records") or {},
        "pending": list(outstanding["distill"]),
        "episodes": {key: {"text": text, "vector": vector} for key, (text, vector) in sorted(episodes.items())},
    }
    Path(path).write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return _counts(document)


def import_memory(
    memory: SemanticMemoryOwner, store: EpisodicStore, spec: JudgeSpec, path: str | Path
) -> dict[str, int]:
    """Make the judge's memory that of an export (same judge and namespace); returns what it holds.

    Semantic memory is written first (the ledger is the truth), then the episodes; importing again after
    a crash in between finishes it.
    """
    document = _read(path)
    exported = JudgeSpec.model_validate(document["judge"])
    if exported != spec or document["namespace"] != memory.namespace:
        raise InvalidValueError(
            f"import: the file holds judge {exported.name!r} in namespace {document['namespace']!r}; open that judge "
            f"(same JudgeSpec and namespace) to import it, not {spec.name!r} in {memory.namespace!r}."
        )
    check_document(document, spec, where=f"import: {path}")
    records: dict[str, Any] = document["records"]
    episodes: dict[str, Any] = document["episodes"]
    values = {
        "guidelines": document["guidelines"],
        "guideline_vectors": document["guideline_vectors"],
        "records": records,
        "outstanding": Outstanding(distill=list(document["pending"]), episodes=[]),
    }
    judge, namespace = spec.name, memory.namespace
    with memory.exclusive():
        current = memory.values()
        if (
            any((current.get(key) or {}) != values[key] for key in _COMPARED)
            or _pending(current) != values["outstanding"]["distill"]
        ):
            memory.write(values)
        store.delete(judge, namespace, sorted(store.feedback_ids(judge, namespace) - episodes.keys()))
        keys = sorted(episodes)
        if keys:
            store.upsert(
                judge,
                namespace,
                [records[key] for key in keys],
                [episodes[key]["text"] for key in keys],
                [episodes[key]["vector"] for key in keys],
            )
    return _counts(document)


def check_document(document: Mapping[str, Any], spec: JudgeSpec, *, where: str) -> None:
    """Hold an export to what memory may contain before any of it is written: every record fits the judge,
    every guideline cites records the file holds, every episode has its record and a vector of finite
    numbers of one size (a single odd vector would fix a new collection's size wrongly)."""
    records, guidelines, episodes = document["records"], document["guidelines"], document["episodes"]
    for name, part in (("records", records), ("guidelines", guidelines), ("episodes", episodes)):
        if not isinstance(part, dict):
            raise InvalidValueError(f"{where}: {name} is not an object of ids; export the judge again.")
    for key, record in records.items():
        place = f"{where}: records[{key!r}]"
        if not isinstance(record, dict) or record.get("id") != key:
            raise InvalidValueError(f"{place}: not a feedback record of this id.")
        try:
            spec.validate_record(record, where=place)
            if record.get("value") is not None:
                spec.output.validate_value(record["value"], field=f"{place}.value")
            check_text(record.get("rationale"), field=f"{place}.rationale")
        except InvalidValueError as error:
            raise InvalidValueError(str(error)) from None
    for key, guideline in guidelines.items():
        place = f"{where}: guidelines[{key!r}]"
        cited = guideline.get("feedback_ids") if isinstance(guideline, dict) else None
        if not isinstance(guideline, dict) or not isinstance(guideline.get("text"), str) or not guideline["text"]:
            raise InvalidValueError(f"{place}: a guideline needs its text.")
        if not isinstance(cited, list) or not set(map(str, cited)) <= records.keys():
            raise InvalidValueError(f"{place}: cites feedback the file does not hold.")
    if not set(map(str, document.get("pending") or [])) <= records.keys():
        raise InvalidValueError(f"{where}: pending names feedback the file does not hold.")
    sizes = set()
    for key, episode in episodes.items():
        place = f"{where}: episodes[{key!r}]"
        if key not in records:
            raise InvalidValueError(f"{place}: an episode without its feedback record.")
        vector = episode.get("vector") if isinstance(episode, dict) else None
        if not isinstance(episode, dict) or not isinstance(episode.get("text"), str) or not isinstance(vector, list):
            raise InvalidValueError(f"{place}: an episode needs its text and vector.")
        if not vector or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vector):
            raise InvalidValueError(f"{place}.vector: not a list of numbers.")
        if not all(math.isfinite(x) for x in vector):
            raise InvalidValueError(f"{place}.vector: holds a number that is not finite.")
        sizes.add(len(vector))
        if len(sizes) > 1:
            raise InvalidValueError(
                f"{place}.vector: {len(vector)} numbers where the others have {min(sizes - {len(vector)})}."
            )


def _pending(values: Mapping[str, Any]) -> list[str]:
    return list((values.get("outstanding") or NOTHING_OUTSTANDING)["distill"])


def _counts(document: Mapping[str, Any]) -> dict[str, int]:
    return {key: len(document[key]) for key in ("guidelines", "records", "episodes")}


def _read(path: str | Path) -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidValueError(f"import: cannot read {path}: {error}") from error
    if not isinstance(document, dict) or document.get("format") not in (EXPORT_FORMAT, _FORMAT_1):
        raise InvalidValueError(f"import: {path} is not a memalign-graph memory export ({EXPORT_FORMAT}).")
    missing = [key for key in ("judge", "namespace", "guidelines", "records", "episodes") if key not in document]
    if missing:
        raise InvalidValueError(f"import: {path} lacks {missing}; export the judge again (memalign memory export).")
    if document["format"] == _FORMAT_1:
        document = _from_format_1(document)
    return {"guideline_vectors": {}, "pending": [], **document}


def _from_format_1(document: dict[str, Any]) -> dict[str, Any]:
    """An export of the first format in today's shape: pending ids out of records, vectors out of guidelines."""
    records = {
        key: {k: v for k, v in record.items() if k != "distilled"} for key, record in document["records"].items()
    }
    pending = sorted(key for key, record in document["records"].items() if not record.get("distilled", True))
    guidelines = {
        key: {k: v for k, v in guideline.items() if k != "embedding"}
        for key, guideline in document["guidelines"].items()
    }
    vectors = {key: pack_vector(g["embedding"]) for key, g in document["guidelines"].items() if g.get("embedding")}
    return {**document, "records": records, "pending": pending, "guidelines": guidelines, "guideline_vectors": vectors}
