"""What one alignment will change, decided before any model call: `validate`'s work, as plain functions.

A plan names feedback by id. The ledger's own changes (records put and deleted) are written by
`validate` itself, together with the work they leave outstanding (episodes to sync, feedback to
distill), so a run that stops half-way leaves the next run everything it needs to finish.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any

from memalign_graph.alignment.state import AlignmentInput, AlignmentPlan
from memalign_graph.errors import InvalidValueError
from memalign_graph.memory.guidelines import prune_provenance
from memalign_graph.memory.ledger import NOTHING_OUTSTANDING, Changes, Outstanding, changes_between, memory_thread_id
from memalign_graph.records import AlignmentReport, FeedbackRecord, Guideline, empty_report, to_records
from memalign_graph.spec import JudgeSpec


@dataclass(frozen=True)
class Planned:
    """A plan, the ledger changes it implies, and the work left outstanding once they are written (and,
    for a restore, the guideline vectors of the version it restores)."""

    plan: AlignmentPlan
    records: Changes
    outstanding: Outstanding
    vectors: Changes | None = None


def plan_alignment(
    memory: Mapping[str, Any], request: AlignmentInput, spec: JudgeSpec, namespace: str, *, now: str
) -> Planned:
    """Validate the request against the judge and memory as it is; raise `InvalidValueError` naming the
    record and field of the first problem."""
    check_identity(memory, spec.name, namespace)
    records: dict[str, FeedbackRecord] = dict(memory.get("records") or {})
    before: dict[str, Guideline] = dict(memory.get("guidelines") or {})
    guidelines = dict(before)
    outstanding = memory.get("outstanding") or NOTHING_OUTSTANDING
    forget = set(request_ids(request.get("forget"), field="forget"))
    incoming = to_records(spec, request.get("feedback") or [], records, now=now)
    unchanged = sorted(
        r["id"] for r in incoming if r["id"] in records and records[r["id"]]["content_hash"] == r["content_hash"]
    )
    incoming = [r for r in incoming if r["id"] not in forget and r["id"] not in unchanged]
    replaced = {r["id"] for r in incoming if r["id"] in records}
    forgotten = forget & records.keys()
    # A guideline to redistill (one that cited purged feedback may repeat its words) goes, and the
    # other feedback it was distilled from is distilled again.
    redistilled = sorted(set(request.get("redistill") or []) & guidelines.keys())
    redistill = {i for key in redistilled for i in guidelines.pop(key)["feedback_ids"]} - forgotten - replaced
    guidelines = prune_provenance(guidelines, forgotten | replaced)
    for key in request_ids(request.get("forget_guidelines"), field="forget_guidelines"):
        guidelines.pop(key, None)
    arriving = [r["id"] for r in incoming]
    distill = _ordered([*outstanding["distill"], *arriving, *sorted(redistill)], leaving=forgotten)
    return Planned(
        plan=AlignmentPlan(
            added=sorted(set(arriving) - replaced),
            updated=sorted(replaced),
            unchanged=unchanged,
            forgotten=sorted(forgotten),
            not_found=sorted(forget - records.keys()),
            distill=distill,
            guideline_changes=changes_between(before, guidelines),
            redistilled=redistilled,
            restored=None,
            kept={},
        ),
        records=Changes(delete=sorted(forgotten), put={r["id"]: r for r in incoming}),
        outstanding=Outstanding(
            distill=distill, episodes=_ordered([*outstanding["episodes"], *arriving, *sorted(forgotten)])
        ),
    )


def plan_restore(memory: Mapping[str, Any], version: Mapping[str, Any], checkpoint_id: str) -> Planned:
    """Make an earlier version of memory current again: its ledger, guidelines and pending feedback.

    Episodes of every record that differs are synced by `write_memory`, so a restore that stops half-way
    is finished like any alignment. Nothing is distilled: what was pending then is pending again.
    """
    current: dict[str, FeedbackRecord] = dict(memory.get("records") or {})
    old: dict[str, FeedbackRecord] = dict(version.get("records") or {})
    changes = changes_between(current, old)
    outstanding = memory.get("outstanding") or NOTHING_OUTSTANDING
    old_outstanding = version.get("outstanding") or NOTHING_OUTSTANDING
    differing = sorted({*changes.get("delete", []), *changes.get("put", {})})
    vectors = memory.get("guideline_vectors") or {}
    old_vectors = version.get("guideline_vectors") or {}
    return Planned(
        plan=AlignmentPlan(
            added=sorted(old.keys() - current.keys()),
            updated=sorted(key for key in old.keys() & current.keys() if old[key] != current[key]),
            unchanged=[],
            forgotten=sorted(current.keys() - old.keys()),
            distill=[],
            guideline_changes=changes_between(memory.get("guidelines") or {}, version.get("guidelines") or {}),
            redistilled=[],
            restored=checkpoint_id,
            kept={},
        ),
        records=changes,
        outstanding=Outstanding(
            distill=list(old_outstanding["distill"]),
            episodes=_ordered([*outstanding["episodes"], *differing]),
        ),
        vectors=changes_between(vectors, old_vectors),
    )


def preview_alignment(
    memory: Mapping[str, Any], request: AlignmentInput, *, spec: JudgeSpec, namespace: str, now: str
) -> AlignmentReport | None:
    """The report of an alignment that would change nothing (every feedback already held unchanged, no
    id to forget, nothing pending), or None when running it would change memory. Validates like a run."""
    if request.get("restore") or request.get("forget_guidelines") or request.get("redistill"):
        return None
    planned = plan_alignment(memory, request, spec, namespace, now=now)
    if planned.plan["added"] or planned.plan["updated"] or planned.plan["forgotten"] or planned.plan["distill"]:
        return None
    if planned.outstanding["episodes"] or planned.plan["redistilled"]:
        return None
    return empty_report(unchanged=planned.plan["unchanged"], not_found=planned.plan.get("not_found", []))


def request_ids(ids: Any, *, field: str) -> list[str]:
    """Ids to forget as a list: one id given as a string is one id (never its characters)."""
    if ids is None:
        return []
    listed = [ids] if isinstance(ids, str) else ids
    if not isinstance(listed, (list, tuple)) or not all(isinstance(item, str) and item for item in listed):
        raise InvalidValueError(f"{field}: {ids!r} is not an id or a list of ids; e.g. {field}=['fb-1'].")
    return list(listed)


def check_identity(memory: Mapping[str, Any], judge: str, namespace: str) -> None:
    """A memory thread belongs to one judge and namespace; refuse to mix another one's feedback in."""
    for key, expected in (("judge", judge), ("namespace", namespace)):
        found = memory.get(key)
        if found and found != expected:
            raise InvalidValueError(
                f"{key}: this memory thread belongs to {key} {found!r}, not {expected!r}; "
                f"run the alignment on thread memory_thread_id({judge!r}, {namespace!r}) = "
                f"{memory_thread_id(judge, namespace)}."
            )


def _ordered(ids: list[str], *, leaving: Set[str] = frozenset()) -> list[str]:
    """Unique ids in first-seen order, without those leaving memory."""
    return [key for key in dict.fromkeys(ids) if key not in leaving]
