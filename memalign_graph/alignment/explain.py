"""What an alignment report says about distillation, in words a person reads after a run."""

from __future__ import annotations

from collections import Counter

from memalign_graph.records import AlignmentReport


def describe_distillation(report: AlignmentReport) -> list[str]:
    """Lines saying what distillation proposed and what became of it, and why nothing was learned if so."""
    outcomes = report["distillation"]
    failed = report["failed_batches"]
    if not outcomes and not failed:
        return ["distillation: nothing to distill"]
    proposed = sum(outcome["proposed"] for outcome in outcomes)
    kept = sum(outcome["kept"] for outcome in outcomes)
    merged = sum(outcome["merged"] for outcome in outcomes)
    reasons = Counter(_reason_kind(drop["reason"]) for outcome in outcomes for drop in outcome["dropped"])
    dropped = sum(reasons.values())
    calls = f"{len(outcomes) + len(failed)} call" + ("s" if len(outcomes) + len(failed) != 1 else "")
    line = f"distillation: {calls}, {proposed} guidelines proposed: {kept} kept, {merged} merged, {dropped} dropped"
    if reasons:
        line += " (" + "; ".join(f"{count} {reason}" for reason, count in reasons.most_common()) + ")"
    lines = [line]
    if failed:
        ids = sum(len(failure["feedback_ids"]) for failure in failed)
        lines.append(f"  {len(failed)} failed, {ids} feedback items left pending: {failed[0]['error']}")
    if not kept and not merged:
        lines.append(f"  0 guidelines learned: {_why_nothing(proposed, failed_only=not outcomes)}")
    return lines


def _reason_kind(reason: str) -> str:
    """A drop reason without its particulars, so that like reasons are counted together."""
    return reason.split(" (", 1)[0]


def _why_nothing(proposed: int, *, failed_only: bool) -> str:
    if failed_only:
        return "every distillation call failed"
    if not proposed:
        return "the model proposed none (its answers held an empty list)"
    return "every proposal was dropped, for the reasons above"
