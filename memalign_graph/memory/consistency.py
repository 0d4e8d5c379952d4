"""Keeping the two memories in step: semantic memory's ledger is the truth, episodes follow it.

Every record the ledger keeps (and the episode policy admits) has one episode holding the same content,
and every episode belongs to a record in the ledger. `check` says where that does not hold (after a
crash, say), comparing content as well as ids; `repair_episodes` mends it, embedding only what it
writes, and never deletes the episode of a record the ledger holds.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from langchain_core.embeddings import Embeddings

from memalign_graph.context import AlignmentContext
from memalign_graph.memory.episodic import EpisodicStore
from memalign_graph.memory.guidelines import provenance, prune_provenance
from memalign_graph.memory.ledger import NOTHING_OUTSTANDING
from memalign_graph.memory.semantic import MemoryThread
from memalign_graph.records import FeedbackRecord, Guideline
from memalign_graph.rendering import retrieval_text


@dataclass(frozen=True)
class ConsistencyReport:
    """What `MemAlignJudge.verify()` found; `ok` when there is nothing to repair.

    `stale_episodes` hold other content than the ledger's record of the same id (a value, rationale or
    text that changed); `outstanding` are ids whose episodes an unfinished alignment still owes.
    """

    unfinished_run: tuple[str, ...] = ()
    missing_episodes: list[str] = field(default_factory=list)
    orphan_episodes: list[str] = field(default_factory=list)
    stale_episodes: list[str] = field(default_factory=list)
    unknown_provenance: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (
            self.unfinished_run
            or self.missing_episodes
            or self.orphan_episodes
            or self.stale_episodes
            or self.unknown_provenance
        )


def keeps_episode(record: FeedbackRecord, context: AlignmentContext) -> bool:
    """The episode policy: every record, or only those where the judge was (or may have been) wrong."""
    return context.keep_episodes == "all" or record["judge_was_wrong"] is not False


def check(
    records: Mapping[str, FeedbackRecord],
    guidelines: Mapping[str, Guideline],
    fingerprints: Mapping[str, str],
    context: AlignmentContext,
    *,
    unfinished_run: tuple[str, ...] = (),
    owed: Collection[str] = (),
) -> ConsistencyReport:
    """Compare the ledger with the episodes' fingerprints (feedback id -> content hash).

    Episodes an unfinished alignment still owes (`owed`) are its to write: they are reported as the
    unfinished run, not as drift.
    """
    owed = set(owed)
    records = {key: record for key, record in records.items() if key not in owed}
    fingerprints = {key: value for key, value in fingerprints.items() if key not in owed}
    expected = {key for key, record in records.items() if keeps_episode(record, context)}
    unknown = {
        key: sorted(set(guideline["feedback_ids"]) - records.keys())
        for key, guideline in guidelines.items()
        if set(guideline["feedback_ids"]) - records.keys()
    }
    return ConsistencyReport(
        unfinished_run=unfinished_run,
        missing_episodes=sorted(expected - fingerprints.keys()),
        orphan_episodes=sorted(fingerprints.keys() - records.keys()),
        stale_episodes=sorted(
            key for key in fingerprints.keys() & records.keys() if fingerprints[key] != records[key]["content_hash"]
        ),
        unknown_provenance=unknown,
    )


def repair_episodes(
    store: EpisodicStore,
    embeddings: Embeddings,
    judge: str,
    namespace: str,
    records: Mapping[str, FeedbackRecord],
    context: AlignmentContext,
) -> ConsistencyReport:
    """Make the episodes match the ledger: write the missing and the stale, delete those of no record."""
    found = check(records, {}, store.fingerprints(judge, namespace), context)
    stale_kept = [key for key in found.stale_episodes if keeps_episode(records[key], context)]
    store.delete(judge, namespace, [*found.orphan_episodes, *sorted(set(found.stale_episodes) - set(stale_kept))])
    write = [records[key] for key in sorted({*found.missing_episodes, *stale_kept})]
    if write:
        texts = [retrieval_text(record, max_tokens=context.field_token_budget) for record in write]
        store.upsert(judge, namespace, write, texts, embeddings.embed_documents(texts))
    return found


def verify_memory(
    memory: MemoryThread, store: EpisodicStore, judge: str, context: AlignmentContext
) -> ConsistencyReport:
    """What `check` finds in a judge's two memories as they are now, unfinished alignment included."""
    values = memory.values()
    unfinished = memory.unfinished()
    return check(
        values.get("records") or {},
        values.get("guidelines") or {},
        store.fingerprints(judge, memory.namespace),
        context,
        unfinished_run=unfinished,
        owed=(values.get("outstanding") or NOTHING_OUTSTANDING)["episodes"] if unfinished else (),
    )


def repair_memory(
    memory: MemoryThread, store: EpisodicStore, embeddings: Embeddings, judge: str, context: AlignmentContext
) -> ConsistencyReport:
    """Finish an interrupted alignment, then make episodes match the ledger and drop provenance the ledger
    does not hold; returns what was found before."""
    found = verify_memory(memory, store, judge, context)
    with memory.exclusive(context):  # finishes what a crash left
        values = memory.values()
        records = values.get("records") or {}
        repair_episodes(store, embeddings, judge, memory.namespace, records, context)
        guidelines = values.get("guidelines") or {}
        stray = provenance(guidelines) - records.keys()
        if stray:
            memory.write({**values, "guidelines": prune_provenance(guidelines, stray)})
    return found
