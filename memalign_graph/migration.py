"""Moving a judge's memory between store configurations: embedded (Qdrant path + SQLite) to scale-out
(Qdrant server + Postgres), or back. Lossless: guidelines, the feedback ledger and every episode with
its vector travel as they are, so nothing is re-embedded and the judge's working memory is identical.
Idempotent: importing the same file twice leaves memory as one import did.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memalign_graph.errors import InvalidValueError
from memalign_graph.spec import JudgeSpec

if TYPE_CHECKING:
    from memalign_graph.judge import MemAlignJudge

EXPORT_FORMAT = "memalign-graph.memory/1"


def export_memory(judge: MemAlignJudge, path: str | Path) -> dict[str, int]:
    """Write the judge's current memory to a JSON file; returns what it wrote."""
    values = judge.alignment_graph.get_state(judge._memory_config()).values
    records = values.get("records") or {}
    episodes = judge.episodic_store.vectors(judge.spec.name, judge.namespace)
    document = {
        "format": EXPORT_FORMAT,
        "judge": judge.spec.model_dump(mode="json"),
        "namespace": judge.namespace,
        "guidelines": values.get("guidelines") or {},
        "records": records,
        "episodes": {key: {"text": text, "vector": vector} for key, (text, vector) in sorted(episodes.items())},
    }
    Path(path).write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return {"guidelines": len(document["guidelines"]), "records": len(records), "episodes": len(episodes)}


def import_memory(judge: MemAlignJudge, path: str | Path) -> dict[str, int]:
    """Make the judge's memory that of an export (same judge and namespace); returns what it holds."""
    document = _read(path)
    spec = JudgeSpec.model_validate(document["judge"])
    if spec != judge.spec or document["namespace"] != judge.namespace:
        raise InvalidValueError(
            f"import: the file holds judge {spec.name!r} in namespace {document['namespace']!r}; open that judge "
            f"(same JudgeSpec and namespace) to import it, not {judge.spec.name!r} in {judge.namespace!r}."
        )
    records: dict[str, Any] = document["records"]
    episodes: dict[str, Any] = document["episodes"]
    with judge._exclusive():
        stale = judge.episodic_store.feedback_ids(judge.spec.name, judge.namespace) - episodes.keys()
        judge.episodic_store.delete(judge.spec.name, judge.namespace, sorted(stale))
        keys = sorted(episodes)
        if keys:
            judge.episodic_store.upsert(
                judge.spec.name,
                judge.namespace,
                [records[key] for key in keys],
                [episodes[key]["text"] for key in keys],
                [episodes[key]["vector"] for key in keys],
            )
        current = judge.alignment_graph.get_state(judge._memory_config()).values
        if current.get("records") != records or current.get("guidelines") != document["guidelines"]:
            judge.alignment_graph.update_state(
                judge._memory_config(),
                {
                    "judge": spec.name,
                    "namespace": judge.namespace,
                    "guidelines": document["guidelines"],
                    "records": records,
                },
                as_node="write_memory",
            )
    return {"guidelines": len(document["guidelines"]), "records": len(records), "episodes": len(episodes)}


def _read(path: str | Path) -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise InvalidValueError(f"import: cannot read {path}: {error}") from error
    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
        raise InvalidValueError(f"import: {path} is not a memalign-graph memory export ({EXPORT_FORMAT}).")
    return document
