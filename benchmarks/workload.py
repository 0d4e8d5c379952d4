"""Synthetic, deterministic feedback and episodes, shaped like a support-tone judge's.

Feedback i is about one of `TOPICS` (a customer-support subject, in real English so the real MiniLM
model embeds it meaningfully). Its rationale is, deterministically:
- 75%: the topic's rule, worded the same way each time (dedupe merges repeats for free);
- 15%: the rule plus a remark, a near-duplicate (cosine ~0.84 with the fast fake embedding) that lands
  in dedupe's close-call band when memory already holds the rule;
- 10%: a note specific to that example (a new guideline each; consolidation folds them into
  combined notes when the guidelines outgrow their budget).

Inputs and outputs are ~60 and ~45 tokens, rationales ~20: small but not empty prompts.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np

from memalign_graph import Boolean, Feedback, JudgeSpec
from memalign_graph.records import FeedbackRecord, content_hash

JUDGE_NAME = "support_tone"
INPUT_MARKER = "Customer ticket #"

TOPICS: tuple[tuple[str, str], ...] = (
    ("refund", "money back for a returned order"),
    ("shipping", "late parcel delivery and tracking numbers"),
    ("password", "account login reset and lockout"),
    ("invoice", "billing documents and tax details"),
    ("warranty", "repair coverage for broken devices"),
    ("cancellation", "ending a subscription before renewal"),
    ("discount", "coupon codes and promotional prices"),
    ("outage", "service downtime and status updates"),
    ("privacy", "personal data deletion requests"),
    ("upgrade", "moving to a higher plan tier"),
    ("allergy", "ingredients and food safety questions"),
    ("accessibility", "screen readers and captions"),
    ("complaint", "escalation to a human manager"),
    ("installation", "setting up hardware at home"),
    ("battery", "charging problems and power drain"),
    ("exchange", "swapping sizes or colours of clothing"),
    ("gift", "wrapping messages and gift receipts"),
    ("loyalty", "reward points and member tiers"),
    ("fraud", "unrecognised charges on a card"),
    ("appointment", "booking and rescheduling visits"),
    ("translation", "support in another language"),
    ("pricing", "why a quote changed since last month"),
    ("damage", "items that arrived broken or dented"),
    ("feedback", "survey requests after a purchase"),
    ("security", "two factor codes and suspicious logins"),
    ("pharmacy", "prescription refills and dosage questions"),
    ("travel", "flight changes and baggage fees"),
    ("insurance", "claims paperwork and deductibles"),
    ("education", "course enrolment and certificates"),
    ("recall", "unsafe products pulled from sale"),
    ("donation", "charity receipts and recurring gifts"),
    ("rental", "deposits and late return fees"),
    ("banking", "transfers that have not arrived"),
    ("housing", "maintenance requests from tenants"),
    ("legal", "questions that need a qualified lawyer"),
    ("medical", "symptoms that need a doctor urgently"),
    ("children", "parental consent for young users"),
    ("employment", "job applications and interview times"),
    ("subscription", "pausing a monthly box delivery"),
    ("marketplace", "disputes between buyers and sellers"),
)
_REMARKS = ("Experts insist on this without exception.",)
_VOCABULARY = (
    "apology empathy clarity brevity warmth patience honesty ownership follow up escalate summarise confirm "
    "timeline reference order number policy exception goodwill gesture credit voucher callback channel email "
    "chat phone tone jargon acronym promise deadline manager specialist ticket status update proactive notice "
    "greeting closing signature emoji exclamation formal casual friendly blunt defensive blame excuse "
    "acknowledge frustration inconvenience delay mistake correction next steps contact hours weekend"
).split()


def topic_rule(topic_index: int) -> str:
    """The rule an expert keeps teaching about one topic, worded the same way each time."""
    topic, phrase = TOPICS[topic_index]
    return f"Answer {_topic_value(topic_index)} when the text mentions {topic}. It concerns {phrase}."


def _topic_value(topic_index: int) -> bool:
    return topic_index % 2 == 0


def feedback_item(index: int) -> Feedback:
    """Feedback number `index`: deterministic, with a stable id, of the kind its position picks."""
    topic_index = index % len(TOPICS)
    topic, phrase = TOPICS[topic_index]
    value = _topic_value(topic_index)
    rng = random.Random(index)
    slot = (index * 7919) % 100
    if slot < 10:
        words = " ".join(rng.sample(_VOCABULARY, 9))
        rationale = f"Note {index}: {words}."
    elif slot < 25:
        rationale = f"{topic_rule(topic_index)} {_REMARKS[0]}"
    else:
        rationale = topic_rule(topic_index)
    filler = " ".join(rng.sample(_VOCABULARY, 24))
    return Feedback(
        id=f"fb-{index:06d}",
        inputs=f"{INPUT_MARKER}{index}: my question is about {topic} ({phrase}). {filler}. Please help me today.",
        outputs=f"Thanks for reaching out about {topic}. {' '.join(rng.sample(_VOCABULARY, 20))}. Regards, support.",
        value=value,
        judge_verdict=(not value) if slot % 5 < 3 else value,
        rationale=rationale,
    )


def feedback_batch(start: int, count: int) -> list[Feedback]:
    return [feedback_item(index) for index in range(start, start + count)]


def judged_example(index: int) -> dict[str, Any]:
    """An example to judge, about a topic, not one of the feedback examples."""
    topic, phrase = TOPICS[(index * 3) % len(TOPICS)]
    rng = random.Random(10_000_000 + index)
    return {
        "inputs": f"New ticket {index}: a question about {topic} ({phrase}). {' '.join(rng.sample(_VOCABULARY, 20))}.",
        "outputs": f"We looked into your {topic} request. {' '.join(rng.sample(_VOCABULARY, 16))}.",
    }


def judge_spec() -> JudgeSpec:
    return JudgeSpec(name=JUDGE_NAME, instructions="Is the support bot's reply appropriate?", output=Boolean())


def synthetic_records(start: int, count: int) -> Iterator[FeedbackRecord]:
    """Ledger records for direct episode population (no LLM, no alignment): the payload a real one has."""
    for index in range(start, start + count):
        item = feedback_item(index)
        record = FeedbackRecord(
            id=item.feedback_id,
            inputs=item.inputs,
            outputs=item.outputs,
            expectations=None,
            value=item.value,
            rationale=item.rationale,
            judge_verdict=item.judge_verdict,
            judge_was_wrong=item.judge_verdict != item.value,
            content_hash="",
            created_at="2026-01-01T00:00:00+00:00",
            updated_at="2026-01-01T00:00:00+00:00",
            distilled=True,
        )
        record["content_hash"] = content_hash(record)
        yield record


def random_unit_vectors(count: int, dimensions: int, *, seed: int) -> np.ndarray:
    """Random unit vectors: a stand-in for embeddings when only search cost matters."""
    vectors = np.random.default_rng(seed).standard_normal((count, dimensions)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def run_id() -> str:
    """A short unique suffix, so scenarios never share a collection or thread by accident."""
    return uuid.uuid4().hex[:8]
