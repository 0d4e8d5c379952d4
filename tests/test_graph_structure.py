"""Snapshots of each graph's shape: a change to a graph is a visible diff in review.

Refresh after an intended change with: MEMALIGN_UPDATE_SNAPSHOTS=1 pytest tests/test_graph_structure.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).parent / "snapshots"


@pytest.mark.parametrize("graph_name", ["alignment_graph", "judge_graph", "feedback_graph"])
def test_graph_structure_matches_snapshot(make_judge, tone_spec, graph_name: str) -> None:
    judge = make_judge(tone_spec)
    drawn = getattr(judge, graph_name).get_graph().draw_mermaid()
    snapshot = SNAPSHOTS / f"{graph_name}.mmd"
    if os.environ.get("MEMALIGN_UPDATE_SNAPSHOTS"):
        snapshot.write_text(drawn)
    assert drawn == snapshot.read_text(), f"{graph_name} changed shape; see the module docstring to refresh"
