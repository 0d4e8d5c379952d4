"""The regression report: did an alignment break a verdict that used to match the expert?

MemAlign's headline risk is a fix that breaks an example the judge used to get right. The check judges
every seen example (each feedback with an expert value that memory holds, and each new one) before the
alignment and again after it, and compares both verdicts with the expert's value as memory holds it
after the alignment (a correction counts as the expert's word):

- fixed: the verdict did not match before (or there was none) and matches after;
- broken: it matched before and does not after (no verdict after counts as not matching);
- unchanged: it matched both times (right) or neither time (wrong).

Seen examples are judged as the judge judges anything, their own records in memory included (the
protocol's "train" measurement); `exclude_self=True` judges each around its own record instead, a
leave-one-out view of what the rest of memory teaches. Values match when they are equal (a score judge
therefore needs the exact score). It costs two judgments per seen example, hence opt-in:
`MemAlignJudge.align(..., check_regressions=True)` and `memalign align --check-regressions`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from memalign_graph.feedback import Feedback
from memalign_graph.memory.semantic import MemoryThread
from memalign_graph.records import (
    AlignmentReport,
    FeedbackRecord,
    Regression,
    RegressionReport,
    Verdict,
    to_records,
)
from memalign_graph.spec import JudgeSpec


class Rejudging(Protocol):
    """What the check needs of a judge: its spec, its memory (the ledger) and batch judging."""

    spec: JudgeSpec
    memory: MemoryThread

    def batch(
        self, examples: Sequence[dict[str, Any]], *, max_concurrency: int | None = None, return_exceptions: bool = False
    ) -> list[Verdict | Exception]: ...


def checked_alignment(
    judge: Rejudging,
    feedback: Sequence[Feedback | Mapping[str, Any]],
    run: Callable[[], AlignmentReport],
    *,
    exclude_self: bool = False,
    max_concurrency: int | None = None,
) -> AlignmentReport:
    """Run an alignment (`run`) between two judgings of the seen examples; its report gains `regressions`."""
    known = judge.memory.ledger()
    incoming = to_records(judge.spec, feedback, known, now="") if feedback else []
    seen = {record["id"]: record for record in [*known.values(), *incoming] if record["value"] is not None}
    before = _judge(judge, seen, exclude_self=exclude_self, max_concurrency=max_concurrency)
    report = run()
    after_ledger = judge.memory.ledger()
    still_seen = {fid: record for fid, record in after_ledger.items() if record["value"] is not None}
    checked = {fid: record for fid, record in still_seen.items() if fid in seen}
    after = _judge(judge, checked, exclude_self=exclude_self, max_concurrency=max_concurrency)
    expected = {fid: record["value"] for fid, record in checked.items()}
    report["regressions"] = compare_verdicts(expected, before, after)
    return report


def compare_verdicts(
    expected: Mapping[str, Any], before: Mapping[str, Any | None], after: Mapping[str, Any | None]
) -> RegressionReport:
    """Fixed, broken and unchanged, by id, for the ids in `expected` (verdict values; None: no verdict)."""
    report = RegressionReport(
        checked=len(expected),
        fixed=[],
        broken=[],
        unchanged_right=[],
        unchanged_wrong=[],
        changes=[],
        agreement_before=None,
        agreement_after=None,
    )
    right_before = right_after = 0
    for fid in sorted(expected):
        value, old, new = expected[fid], before.get(fid), after.get(fid)
        was, now = _matches(old, value), _matches(new, value)
        right_before, right_after = right_before + was, right_after + now
        kind = "unchanged_right" if was and now else "broken" if was else "fixed" if now else "unchanged_wrong"
        report[kind].append(fid)  # type: ignore[literal-required]
        if was != now:
            report["changes"].append(Regression(id=fid, expected=value, before=old, after=new))
    if expected:
        report["agreement_before"] = right_before / len(expected)
        report["agreement_after"] = right_after / len(expected)
    return report


def describe_regressions(report: RegressionReport, *, limit: int = 5) -> list[str]:
    """The report in words: one summary line, then each broken example (up to `limit`)."""
    if not report["checked"]:
        return ["regressions: no seen example with an expert value to re-judge"]
    lines = [
        f"regressions: {report['checked']} seen examples re-judged before and after: "
        f"{len(report['broken'])} broken, {len(report['fixed'])} fixed, "
        f"{len(report['unchanged_right']) + len(report['unchanged_wrong'])} unchanged "
        f"({len(report['unchanged_right'])} right, {len(report['unchanged_wrong'])} wrong); "
        f"agreement {_share(report['agreement_before'])} -> {_share(report['agreement_after'])}"
    ]
    broken = [change for change in report["changes"] if change["id"] in set(report["broken"])]
    for change in broken[:limit]:
        lines.append(
            f"broken: {change['id']}: expert {_value(change['expected'])}, "
            f"judge {_value(change['before'])} before, {_value(change['after'])} now"
        )
    if len(broken) > limit:
        lines.append(f"broken: ... and {len(broken) - limit} more (all in the report's regressions.broken)")
    return lines


def _judge(
    judge: Rejudging, records: Mapping[str, FeedbackRecord], *, exclude_self: bool, max_concurrency: int | None
) -> dict[str, Any | None]:
    ids = list(records)
    examples = [
        {
            "inputs": records[fid]["inputs"],
            "outputs": records[fid]["outputs"],
            "expectations": records[fid]["expectations"],
            "example_id": fid,
            "exclude_self": exclude_self,
        }
        for fid in ids
    ]
    verdicts = judge.batch(examples, max_concurrency=max_concurrency, return_exceptions=True) if examples else []
    return {fid: None if isinstance(v, Exception) else v["score"] for fid, v in zip(ids, verdicts, strict=True)}


def _matches(verdict: Any | None, expected: Any) -> bool:
    return verdict is not None and verdict == expected


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _value(value: Any) -> str:
    return "no verdict" if value is None else repr(value)
