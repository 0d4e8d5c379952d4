"""Semantic memory's stored form: a checkpoint holds what changed, so history grows with the feedback.

Before: every checkpoint stored the whole ledger again; 1,000 feedback in rounds of 100 made 74 MB of
history, one 50 MB row made a 1 GB home and each later tiny alignment added 550 MB.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakes import BagOfWordsEmbeddings, ScriptedChatModel
from memalign_graph import Feedback, InvalidValueError, MemAlignJudge
from memalign_graph.memory.ledger import apply_changes, changes_between, pack_vector, unpack_vector, whole
from memalign_graph.records import MAX_STORED_FIELD_CHARS


def history_bytes(home: Path) -> int:
    with sqlite3.connect(home / "semantic.sqlite") as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(
            connection.execute(f"SELECT coalesce(sum(length({column})), 0) FROM {table}").fetchone()[0]
            for table, column in (("checkpoints", "checkpoint"), ("writes", "value"))
        )


def rounds(start: int, count: int) -> list[Feedback]:
    return [
        Feedback(
            id=f"fb-{n}",
            inputs=f"ticket {n} " + "word " * 120,
            outputs="reply " * 90,
            value=n % 2 == 0,
            rationale=f"Answer true when the text mentions topic{n % 7}.",
        )
        for n in range(start, start + count)
    ]


def open_judge(home: Path, tone_spec) -> MemAlignJudge:
    return MemAlignJudge(tone_spec, ScriptedChatModel(), embeddings=BagOfWordsEmbeddings(), home=home)


def test_each_round_adds_about_the_same_history(tmp_path: Path, tone_spec) -> None:
    sizes = []
    with open_judge(tmp_path, tone_spec) as judge:
        for round_number in range(6):
            judge.align(rounds(round_number * 25, 25))
            sizes.append(history_bytes(tmp_path))
    added = [later - earlier for earlier, later in zip(sizes, sizes[1:], strict=False)]
    assert max(added) <= 1.3 * min(added), added  # linear: the sixth round costs what the second did
    assert sizes[-1] / 150 < 6 * 1000  # under 6 KB a feedback of ~1 KB, every copy LangGraph keeps included


def test_a_large_record_is_stored_once_and_tiny_alignments_stay_tiny(tmp_path: Path, tone_spec) -> None:
    large = "x" * (MAX_STORED_FIELD_CHARS - 10)
    with open_judge(tmp_path, tone_spec) as judge:
        judge.align([Feedback(id="large", inputs=large, outputs="ok", value=True)])
        after_large = history_bytes(tmp_path)
        assert after_large < 5 * len(large)
        for n in range(3):
            judge.align([Feedback(id=f"tiny-{n}", inputs="q", outputs="a", value=True)])
        assert history_bytes(tmp_path) - after_large < 60_000


def test_a_field_past_the_stored_size_is_refused_naming_it(make_judge, tone_spec) -> None:
    judge = make_judge(tone_spec)
    with pytest.raises(InvalidValueError, match=r"feedback\[0\]\.rationale: .* more than a stored feedback field"):
        judge.align([Feedback(inputs="q", outputs="a", rationale="y" * (MAX_STORED_FIELD_CHARS + 1))])
    assert judge.memory.ledger() == {} and judge.history() == []


keys = st.sampled_from(["a", "b", "c", "d"])
changes = st.fixed_dictionaries(
    {},
    optional={
        "reset": st.booleans(),
        "delete": st.lists(keys, max_size=3),
        "put": st.dictionaries(keys, st.integers(), max_size=3),
    },
)


@given(st.dictionaries(keys, st.integers()), st.lists(changes, max_size=4), st.lists(changes, max_size=4))
def test_changes_replay_the_same_one_by_one_or_batched(start, first, second) -> None:
    """DeltaChannel replays writes in batches of any size: the reducer must not care."""
    assert apply_changes(apply_changes(start, first), second) == apply_changes(start, [*first, *second])


@given(st.dictionaries(keys, st.integers()), st.dictionaries(keys, st.integers()))
def test_the_changes_between_two_values_turn_one_into_the_other(old, new) -> None:
    assert apply_changes(old, [changes_between(old, new)]) == new
    assert apply_changes(old, [whole(new)]) == new


def test_a_stored_vector_comes_back_as_floats_of_float32_precision() -> None:
    vector = [0.1, -0.25, 3.0]
    assert unpack_vector(pack_vector(vector)) == pytest.approx(vector, rel=1e-6)
    assert unpack_vector(vector) == vector  # an export of the first format keeps plain lists
