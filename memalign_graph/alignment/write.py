"""`write_memory`'s work: episodes first, then what the checkpoint records, and the run's report.

Episodes are made to match the ledger for every id the ledger still owes them (written where the
episode policy keeps the record, deleted where the ledger no longer does). Both writes are idempotent,
so a run that stopped in between redoes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.embeddings import Embeddings

from memalign_graph.alignment.state import AlignmentPlan
from memalign_graph.context import AlignmentContext
from memalign_graph.memory.consistency import keeps_episode
from memalign_graph.memory.episodic import EpisodicStore
from memalign_graph.memory.ledger import NOTHING_OUTSTANDING, Changes, Outstanding, apply_changes, summary_of
from memalign_graph.records import AlignmentReport, BatchFailure, BatchOutcome, FeedbackRecord, Guideline
from memalign_graph.rendering import retrieval_text


def sync_episodes(
    store: EpisodicStore,
    embeddings: Embeddings,
    judge: str,
    namespace: str,
    records: Mapping[str, FeedbackRecord],
    ids: list[str],
    context: AlignmentContext,
) -> None:
    """Make the episodes of `ids` match the ledger; only the records written are embedded."""
    kept = [records[key] for key in ids if key in records and keeps_episode(records[key], context)]
    kept_ids = {record["id"] for record in kept}
    store.delete(judge, namespace, [key for key in ids if key not in kept_ids])
    if kept:
        texts = [retrieval_text(record, max_tokens=context.field_token_budget) for record in kept]
        store.upsert(judge, namespace, kept, texts, embeddings.embed_documents(texts))


def memory_updates(
    state: Mapping[str, Any],
    plan: AlignmentPlan,
    failures: list[BatchFailure],
    batches: list[BatchOutcome],
    context: AlignmentContext,
) -> dict[str, Any]:
    """What the checkpoint records once episodes are written: guidelines, their vectors, the work still
    outstanding (feedback whose distillation failed), the version's summary, and the report."""
    failed = {feedback_id for failure in failures for feedback_id in failure["feedback_ids"]}
    distilled = [key for key in plan["distill"] if context.distill and key not in failed]
    outstanding = state.get("outstanding") or NOTHING_OUTSTANDING
    remaining = Outstanding(distill=[key for key in outstanding["distill"] if key not in set(distilled)], episodes=[])
    old: dict[str, Guideline] = state.get("guidelines") or {}
    new = apply_changes(old, [plan["guideline_changes"]])
    vectors = state.get("guideline_vectors") or {}
    vector_changes = Changes(delete=sorted(vectors.keys() - new.keys()))
    after = {"guidelines": new, "records": state.get("records") or {}, "outstanding": remaining}
    previous = (state.get("summary") or {}).get("version", 0)
    return {
        "guidelines": plan["guideline_changes"],
        "guideline_vectors": vector_changes,
        "outstanding": remaining,
        "summary": summary_of(after, version=previous + 1),
        "report": _report(plan, old, new, distilled, failed, failures, _outcomes(plan, batches)),
    }


def _outcomes(plan: AlignmentPlan, batches: list[BatchOutcome]) -> list[BatchOutcome]:
    """Each distillation call's proposals: kept as guidelines of their own, merged into others, or dropped."""
    outcomes = []
    for batch in sorted(batches, key=lambda outcome: outcome["batch"]):
        kept = plan["kept"].get(str(batch["batch"]), 0)
        merged = batch["proposed"] - len(batch["dropped"]) - kept
        outcomes.append(BatchOutcome(**{**batch, "kept": kept, "merged": merged}))
    return outcomes


def _report(
    plan: AlignmentPlan,
    old: Mapping[str, Guideline],
    new: Mapping[str, Guideline],
    distilled: list[str],
    failed: set[str],
    failures: list[BatchFailure],
    outcomes: list[BatchOutcome],
) -> AlignmentReport:
    return AlignmentReport(
        added=plan["added"],
        updated=plan["updated"],
        unchanged=plan["unchanged"],
        forgotten=plan["forgotten"],
        not_found=list(plan.get("not_found", [])),
        distilled=sorted(distilled),
        pending=sorted(failed),
        failed_batches=list(failures),
        guidelines_added=sorted(new.keys() - old.keys()),
        guidelines_merged=sorted(
            key
            for key in new.keys() & old.keys()
            if new[key]["feedback_ids"] != old[key]["feedback_ids"] or new[key]["text"] != old[key]["text"]
        ),
        guidelines_removed=sorted(old.keys() - new.keys()),
        guidelines_redistilled=plan["redistilled"],
        distillation=outcomes,
    )
