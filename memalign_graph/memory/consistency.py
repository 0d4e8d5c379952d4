"""Keeping the two memories in step: semantic memory's ledger is the truth, episodes follow it.

Every feedback record the ledger keeps (and the episode policy admits) has exactly one episode, and
every episode belongs to a record in the ledger. `check` says where that does not hold (after a crash,
say); `sync_episodes` makes the episodic store match a ledger, embedding only what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from langchain_core.embeddings import Embeddings

from memalign_graph.context import AlignmentContext
from memalign_graph.memory.episodic import EpisodicStore
from memalign_graph.records import FeedbackRecord, Guideline
from memalign_graph.rendering import retrieval_text


@dataclass(frozen=True)
class ConsistencyReport:
    """What `MemAlignJudge.verify()` found; `ok` when there is nothing to repair."""

    unfinished_run: tuple[str, ...] = ()
    missing_episodes: list[str] = field(default_factory=list)
    orphan_episodes: list[str] = field(default_factory=list)
    unknown_provenance: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.unfinished_run or self.missing_episodes or self.orphan_episodes or self.unknown_provenance)


def keeps_episode(record: FeedbackRecord, context: AlignmentContext) -> bool:
    """The episode policy: every record, or only those where the judge was (or may have been) wrong."""
    return context.keep_episodes == "all" or record["judge_was_wrong"] is not False


def check(
    records: Mapping[str, FeedbackRecord],
    guidelines: Mapping[str, Guideline],
    episode_ids: set[str],
    context: AlignmentContext,
    *,
    unfinished_run: tuple[str, ...] = (),
) -> ConsistencyReport:
    expected = {key for key, record in records.items() if keeps_episode(record, context)}
    unknown = {
        key: sorted(set(guideline["feedback_ids"]) - records.keys())
        for key, guideline in guidelines.items()
        if set(guideline["feedback_ids"]) - records.keys()
    }
    return ConsistencyReport(
        unfinished_run=unfinished_run,
        missing_episodes=sorted(expected - episode_ids),
        orphan_episodes=sorted(episode_ids - expected),
        unknown_provenance=unknown,
    )


def sync_episodes(
    store: EpisodicStore,
    embeddings: Embeddings,
    judge: str,
    namespace: str,
    records: Mapping[str, FeedbackRecord],
    context: AlignmentContext,
    *,
    replace: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Make the store hold exactly the ledger's episodes; `replace` ids are rewritten even if present."""
    stored = store.feedback_ids(judge, namespace)
    expected = {key for key, record in records.items() if keeps_episode(record, context)}
    store.delete(judge, namespace, sorted((stored - expected) | (set(replace) & stored)))
    write = [records[key] for key in sorted((expected - stored) | (set(replace) & expected))]
    if write:
        texts = [retrieval_text(record, max_tokens=context.field_token_budget) for record in write]
        store.upsert(judge, namespace, write, texts, embeddings.embed_documents(texts))
