"""Semantic memory as the alignment graph checkpoints it: guidelines, the feedback ledger, and the work
the ledger still owes the episodic store and distillation.

A LangGraph saver keeps every channel's value in every checkpoint (SQLite writes the whole state at each
step), and the ledger holds every feedback ever given: history grew with the square of the feedback.
The large channels here are `DeltaChannel`s instead: a write is a change (records put, records deleted),
a checkpoint keeps only a marker, and the value is rebuilt by replaying the changes since the last
snapshot. History then grows with what changed. `DeltaChannel` is beta in LangGraph 1.2; its on-disk
form is promised to stay readable, and the package pins LangGraph below 1.3.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, NotRequired, TypedDict

import numpy as np
from langchain_core.runnables import RunnableConfig
from langgraph.channels.base import BaseChannel
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.pregel._checkpoint import achannels_from_checkpoint, channels_from_checkpoint

from memalign_graph.records import FeedbackRecord, Guideline

_THREAD_NAMESPACE = uuid.UUID("0b7c53f4-2a0e-5d8e-9a51-3c1f3e4d2b61")


def memory_thread_id(judge: str, namespace: str) -> str:
    """The one thread that holds a judge's semantic memory within a namespace.

    A UUID derived from ``memalign:{namespace}:{judge}``: the LangGraph server accepts only UUID
    thread ids, and a derived one lets every process find the same thread.
    """
    return str(uuid.uuid5(_THREAD_NAMESPACE, f"memalign:{namespace}:{judge}"))


def thread_config(thread_id: str, checkpoint_id: str | None = None) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


# A full copy of a channel every this many changes bounds how far a read replays; between copies,
# history holds only changes. An alignment run changes the ledger twice at most.
SNAPSHOT_EVERY = 200


class Changes(TypedDict, total=False):
    """One write to a keyed channel, applied in this order: `reset` empties it, `delete` drops keys,
    `put` adds or replaces whole items. Plain JSON, so a LangGraph server's API can send it too."""

    reset: bool
    delete: list[str]
    put: dict[str, Any]


def apply_changes(current: dict[str, Any], writes: Sequence[Changes | None]) -> dict[str, Any]:
    """The keyed channels' reducer: deterministic, and the same whether writes come one by one or batched."""
    value = dict(current)
    for changes in writes:
        if not changes:
            continue
        if changes.get("reset"):
            value = {}
        for key in changes.get("delete") or ():
            value.pop(key, None)
        value.update(changes.get("put") or {})
    return value


def changes_between(old: Mapping[str, Any], new: Mapping[str, Any]) -> Changes:
    """The smallest write that turns `old` into `new`."""
    return Changes(
        delete=sorted(old.keys() - new.keys()),
        put={key: value for key, value in new.items() if old.get(key) != value},
    )


def whole(value: Mapping[str, Any]) -> Changes:
    """A write that makes the channel exactly `value` (a rewrite of history starts with one)."""
    return Changes(reset=True, put=dict(value))


def pack_vector(vector: Sequence[float]) -> str:
    """A guideline's vector as memory stores it: float32, base64 (JSON-safe, under half the size)."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def unpack_vector(stored: str | Sequence[float]) -> list[float]:
    """A stored vector back as floats (a plain list, as an older export holds, is taken as it is)."""
    if isinstance(stored, str):
        return np.frombuffer(base64.b64decode(stored), dtype="<f4").astype(float).tolist()
    return list(stored)


def latest(current: Any, writes: Sequence[Any]) -> Any:
    """A last-value reducer for large per-run channels: stored once per write, not once per step."""
    return writes[-1] if writes else current


class Outstanding(TypedDict):
    """What the ledger still owes, by feedback id: feedback to distill, and episodes to make match the
    ledger (written where the ledger keeps the record, deleted where it does not). Kept until
    `write_memory` has done it, so a run that stopped half-way (a crash, a run a server abandoned)
    leaves the next run the work to finish."""

    distill: list[str]
    episodes: list[str]


NOTHING_OUTSTANDING = Outstanding(distill=[], episodes=[])


class MemorySummary(TypedDict):
    """What a version holds, written with it: history lists versions without replaying their changes.
    `version` counts completed writes of memory on the thread."""

    version: int
    guidelines: int
    feedback: int
    pending: int
    digest: NotRequired[str]


class SemanticMemory(TypedDict, total=False):
    """The alignment graph's persistent state on a judge's memory thread."""

    judge: str
    namespace: str
    guidelines: Annotated[dict[str, Guideline], DeltaChannel(apply_changes, snapshot_frequency=SNAPSHOT_EVERY)]
    guideline_vectors: Annotated[dict[str, str], DeltaChannel(apply_changes, snapshot_frequency=SNAPSHOT_EVERY)]
    records: Annotated[dict[str, FeedbackRecord], DeltaChannel(apply_changes, snapshot_frequency=SNAPSHOT_EVERY)]
    outstanding: Outstanding
    summary: MemorySummary


def version_write(
    current: Mapping[str, Any], values: Mapping[str, Any], *, judge: str, namespace: str
) -> dict[str, Any]:
    """The state update that makes `values` the next version after `current` (as `write_memory` would)."""
    keyed = ("guidelines", "guideline_vectors", "records")
    return {
        "judge": judge,
        "namespace": namespace,
        **{key: changes_between(current.get(key) or {}, values.get(key) or {}) for key in keyed},
        "outstanding": values.get("outstanding") or NOTHING_OUTSTANDING,
        "summary": summary_of(values, version=int((current.get("summary") or {}).get("version", 0)) + 1),
    }


def summary_of(values: Mapping[str, Any], *, version: int) -> MemorySummary:
    outstanding = values.get("outstanding") or NOTHING_OUTSTANDING
    return MemorySummary(
        version=version,
        guidelines=len(values.get("guidelines") or {}),
        feedback=len(values.get("records") or {}),
        pending=len(outstanding["distill"]),
    )


def _keyed() -> DeltaChannel[Any]:
    return DeltaChannel(apply_changes, dict, snapshot_frequency=SNAPSHOT_EVERY)


def _channel_specs(names: Sequence[str]) -> dict[str, BaseChannel[Any, Any, Any]]:
    specs: dict[str, BaseChannel[Any, Any, Any]] = {}
    for name in names:
        spec = _keyed() if name in ("guidelines", "guideline_vectors", "records") else None
        if spec is not None:
            spec.key = name
            specs[name] = spec
    return specs


def values_at(saver: BaseCheckpointSaver[Any], found: CheckpointTuple, names: Sequence[str]) -> dict[str, Any]:
    """Semantic memory's values at a checkpoint, without compiling the graph that wrote them.

    Its keyed channels are rebuilt as LangGraph rebuilds them (`channels_from_checkpoint`, internal to
    LangGraph 1.2, hence the pin), and only those asked for: judging asks for the guidelines alone.
    """
    specs = _channel_specs(names)
    channels, _ = channels_from_checkpoint(specs, found.checkpoint, saver=saver, config=found.config)
    return _collect(found, names, channels)


async def avalues_at(saver: BaseCheckpointSaver[Any], found: CheckpointTuple, names: Sequence[str]) -> dict[str, Any]:
    """`values_at` through an async saver, for the event loop."""
    specs = _channel_specs(names)
    channels, _ = await achannels_from_checkpoint(specs, found.checkpoint, saver=saver, config=found.config)
    return _collect(found, names, channels)


def _collect(
    found: CheckpointTuple, names: Sequence[str], channels: Mapping[str, BaseChannel[Any, Any, Any]]
) -> dict[str, Any]:
    stored = found.checkpoint["channel_values"]
    values: dict[str, Any] = {}
    for name in names:
        channel = channels.get(name)
        if channel is not None:
            values[name] = channel.get() if channel.is_available() else {}
        elif name in stored:
            values[name] = stored[name]
    return values
