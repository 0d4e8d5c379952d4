"""The owner of the memory an alignment graph writes, for the facade and the feedback graph alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from memalign_graph.alignment.graph import AlignmentGraph
from memalign_graph.alignment.plan import preview_alignment
from memalign_graph.context import AlignmentContext
from memalign_graph.memory.episodic import EpisodicStore
from memalign_graph.memory.reader import CheckpointSemanticMemory
from memalign_graph.memory.semantic import MemoryThread
from memalign_graph.records import AlignmentReport
from memalign_graph.spec import JudgeSpec


def open_memory_thread(
    graph: AlignmentGraph,
    spec: JudgeSpec,
    namespace: str,
    *,
    episodic_store: EpisodicStore,
    reader: CheckpointSemanticMemory | None = None,
    context: AlignmentContext | None = None,
) -> MemoryThread:
    """A `MemoryThread` over `graph` (compiled with the checkpointer that holds memory) for one judge and
    namespace: alignments that would change nothing write no version, and a rewrite compacts episodes."""

    def preview(memory: Any, request: Any, run_context: AlignmentContext) -> AlignmentReport | None:
        return preview_alignment(memory, request, spec=spec, namespace=namespace, now=datetime.now(UTC).isoformat())

    return MemoryThread(
        graph,
        judge=spec.name,
        namespace=namespace,
        reader=reader,
        preview=preview,
        on_compact=lambda: episodic_store.compact(spec.name, namespace),
        context=context,
    )
