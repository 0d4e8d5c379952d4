"""Moving a judge's memory between store configurations: embedded (Qdrant path + SQLite) to scale-out
(Qdrant server + Postgres, or a LangGraph server's own checkpointer), or back. Lossless: guidelines, the
feedback ledger and every episode with its vector travel as they are, so nothing is re-embedded and the
judge's working memory is identical. Idempotent: importing the same file twice leaves memory as one
import did. Only the current version travels: the target's history starts at the import.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from memalign_graph.context import DEFAULT_NAMESPACE
from memalign_graph.errors import ConfigurationError, InvalidValueError
from memalign_graph.memory.episodic import QdrantEpisodicStore
from memalign_graph.memory.semantic import memory_thread_id
from memalign_graph.spec import JudgeSpec

if TYPE_CHECKING:
    from langgraph_sdk.client import SyncLangGraphClient

    from memalign_graph.judge import MemAlignJudge

EXPORT_FORMAT = "memalign-graph.memory/1"
_SEMANTIC_KEYS = ("guidelines", "records")


class MemoryLocation(Protocol):
    """Where one judge's memory lives: its episodes, and the alignment state that is its semantic memory."""

    spec: JudgeSpec
    namespace: str
    episodic_store: QdrantEpisodicStore

    def read_semantic(self) -> dict[str, Any]:
        """The alignment state on the judge's memory thread ({} when there is none yet)."""
        ...

    def write_semantic(self, values: dict[str, Any]) -> None:
        """Make `values` the judge's current semantic memory (one new version)."""
        ...

    def exclusive(self) -> AbstractContextManager[None]:
        """Hold off the judge's alignments while memory is replaced."""
        ...


class JudgeMemory:
    """A `MemAlignJudge`'s memory: its alignment graph's checkpointer and its episodic store."""

    def __init__(self, judge: MemAlignJudge) -> None:
        self.judge = judge
        self.spec = judge.spec
        self.namespace = judge.namespace
        self.episodic_store = judge.episodic_store  # type: ignore[assignment]

    def read_semantic(self) -> dict[str, Any]:
        return dict(self.judge.alignment_graph.get_state(self.judge._memory_config()).values)

    def write_semantic(self, values: dict[str, Any]) -> None:
        self.judge.alignment_graph.update_state(self.judge._memory_config(), values, as_node="write_memory")

    def exclusive(self) -> AbstractContextManager[None]:
        return self.judge._exclusive()


class ServedMemory:
    """The memory of a judge that a LangGraph server serves (`langgraph.json`, the deploy stack).

    Semantic memory is the server's thread `memory_thread_id(judge, namespace)`, written through its API
    (`threads.update_state`, as the alignment graph's `write_memory` step), so the server's own
    checkpointer holds it; episodes go to the Qdrant server the served graphs use. Import while no
    alignment of that judge runs: the server orders runs on a thread, not state updates between them.
    """

    def __init__(
        self,
        client: SyncLangGraphClient,
        spec: JudgeSpec,
        *,
        episodic_store: QdrantEpisodicStore,
        namespace: str = DEFAULT_NAMESPACE,
        graph_id: str = "alignment",
    ) -> None:
        self.client = client
        self.spec = spec
        self.namespace = namespace
        self.episodic_store = episodic_store
        self.graph_id = graph_id
        self.thread_id = memory_thread_id(spec.name, namespace)

    def read_semantic(self) -> dict[str, Any]:
        from langgraph_sdk.errors import NotFoundError

        try:
            return dict(self.client.threads.get_state(self.thread_id)["values"] or {})
        except NotFoundError:
            return {}

    def write_semantic(self, values: dict[str, Any]) -> None:
        thread = self.client.threads.create(thread_id=self.thread_id, if_exists="do_nothing", graph_id=self.graph_id)
        if (thread.get("metadata") or {}).get("graph_id") is None:
            # A thread made ahead of any run has no graph, and the server updates state only through one.
            self.client.threads.update(self.thread_id, metadata={"graph_id": self.graph_id})
        self.client.threads.update_state(self.thread_id, values, as_node="write_memory")

    def exclusive(self) -> AbstractContextManager[None]:
        return nullcontext()

    def export_memory(self, path: str | Path) -> dict[str, int]:
        return export_memory(self, path)

    def import_memory(self, path: str | Path) -> dict[str, int]:
        return import_memory(self, path)


def export_memory(source: MemoryLocation | MemAlignJudge, path: str | Path) -> dict[str, int]:
    """Write the judge's current memory to a JSON file; returns what it wrote."""
    location = _location(source)
    values = location.read_semantic()
    records = values.get("records") or {}
    episodes = location.episodic_store.vectors(location.spec.name, location.namespace)
    document = {
        "format": EXPORT_FORMAT,
        "judge": location.spec.model_dump(mode="json"),
        "namespace": location.namespace,
        "guidelines": values.get("guidelines") or {},
        "records": records,
        "episodes": {key: {"text": text, "vector": vector} for key, (text, vector) in sorted(episodes.items())},
    }
    Path(path).write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return {"guidelines": len(document["guidelines"]), "records": len(records), "episodes": len(episodes)}


def import_memory(target: MemoryLocation | MemAlignJudge, path: str | Path) -> dict[str, int]:
    """Make the judge's memory that of an export (same judge and namespace); returns what it holds."""
    location = _location(target)
    document = _read(path)
    spec = JudgeSpec.model_validate(document["judge"])
    if spec != location.spec or document["namespace"] != location.namespace:
        raise InvalidValueError(
            f"import: the file holds judge {spec.name!r} in namespace {document['namespace']!r}; open that judge "
            f"(same JudgeSpec and namespace) to import it, not {location.spec.name!r} in {location.namespace!r}."
        )
    records: dict[str, Any] = document["records"]
    episodes: dict[str, Any] = document["episodes"]
    missing = sorted(episodes.keys() - records.keys())
    if missing:
        raise InvalidValueError(f"import: {path} has episodes without their feedback record: {missing[:5]}")
    judge, namespace, store = spec.name, location.namespace, location.episodic_store
    with location.exclusive():
        stale = store.feedback_ids(judge, namespace) - episodes.keys()
        store.delete(judge, namespace, sorted(stale))
        keys = sorted(episodes)
        if keys:
            store.upsert(
                judge,
                namespace,
                [records[key] for key in keys],
                [episodes[key]["text"] for key in keys],
                [episodes[key]["vector"] for key in keys],
            )
        current = location.read_semantic()
        if any(current.get(key) != document[key] for key in _SEMANTIC_KEYS):
            location.write_semantic(
                {"judge": judge, "namespace": namespace, "guidelines": document["guidelines"], "records": records}
            )
    return {"guidelines": len(document["guidelines"]), "records": len(records), "episodes": len(episodes)}


def _location(place: MemoryLocation | MemAlignJudge) -> MemoryLocation:
    from memalign_graph.judge import MemAlignJudge

    location = JudgeMemory(place) if isinstance(place, MemAlignJudge) else place
    if not isinstance(location.episodic_store, QdrantEpisodicStore):
        raise ConfigurationError(
            "export/import moves episodes with their vectors, which needs a QdrantEpisodicStore; "
            f"this judge's episodic store is a {type(location.episodic_store).__name__}."
        )
    return location


def _read(path: str | Path) -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise InvalidValueError(f"import: cannot read {path}: {error}") from error
    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
        raise InvalidValueError(f"import: {path} is not a memalign-graph memory export ({EXPORT_FORMAT}).")
    return document
