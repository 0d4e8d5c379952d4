"""An offline stand-in for a chat model and an embedding model, chosen only by name ("fake").

For demos of the plumbing and for tests of served graphs: no network, deterministic, and every
rationale it writes starts with FAKE MODEL so nobody mistakes its verdicts for a judge's.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda

FAKE_LABEL = "FAKE MODEL"
_RULE = re.compile(r"Answer (\S+) when the text mentions (\S+?)\.")
FEEDBACK_PATTERN = re.compile(r'<feedback ref="(\d+)">(.*?)</feedback>', re.DOTALL)
RATIONALE_PATTERN = re.compile(r"<expert_rationale>\n(.*?)\n</expert_rationale>", re.DOTALL)
_EXPERT_VERDICT = re.compile(r"^Expert's verdict: (.+)$", re.MULTILINE)
_KINDS = ("verdict", "distilled_guidelines", "guideline_comparison", "consolidated_guidelines", "evidence_check")
_CHECK = re.compile(r'<check number="(\d+)">\nGuideline: (.*?)\n<example>\n(.*?)\n</example>', re.DOTALL)


class FakeChatModel(BaseChatModel):
    """Answers like a very literal judge, from the prompt alone.

    - verdict: a guideline "Answer X when the text mentions Y." whose Y is in the judged example wins;
      else the expert's verdict on the most similar past example; else the first allowed value.
    - distillation: each expert rationale becomes a guideline, credited to its feedback.
    - comparison: two guidelines are the same only when their words are.
    """

    @property
    def _llm_type(self) -> str:
        return "memalign-fake"

    def with_structured_output(self, schema: Any, *, include_raw: bool = False, **kwargs: Any) -> Runnable:
        """A real model call (callbacks and usage accounting see it), answered from the schema's title."""

        def parse(message: AIMessage) -> Any:
            parsed = json.loads(str(message.content))
            return {"raw": message, "parsed": parsed, "parsing_error": None} if include_raw else parsed

        return self.bind(fake_schema=schema) | RunnableLambda(parse)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = "\n".join(str(message.content) for message in messages)
        schema = kwargs.get("fake_schema")
        kind = schema["title"] if schema else next((k for k in _KINDS if f'"title": "{k}"' in text), None)
        content = self._answer(kind, messages, schema) if kind else f"{FAKE_LABEL}: {messages[-1].content}"[:500]
        usage = {  # 4 characters a token, like the library's own budgets
            "input_tokens": len(text) // 4 + 1,
            "output_tokens": len(content) // 4 + 1,
            "total_tokens": len(text) // 4 + len(content) // 4 + 2,
        }
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content, usage_metadata=usage))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Answered on the event loop (it is string work), not in LangChain's default executor."""
        return self._generate(messages, stop, None, **kwargs)

    def _answer(self, kind: str, messages: list[BaseMessage], schema: dict[str, Any] | None) -> str:
        system = str(messages[0].content) if messages else ""
        user = "\n".join(str(message.content) for message in messages[1:])
        if kind == "verdict":
            return json.dumps(_verdict(system, user, schema))
        if kind == "distilled_guidelines":
            return json.dumps(distill_rationales(system + "\n" + user))
        if kind == "guideline_comparison":
            return json.dumps(compare_literally(user))
        if kind == "evidence_check":
            return json.dumps(apply_guidelines_literally(user))
        return json.dumps({"guidelines": []})


def learned_rule(system: str, user: str) -> tuple[Any, str] | None:
    """The first guideline "Answer X when the text mentions Y." whose Y is in the judged example: (X, Y)."""
    judged = user.partition("Judge this example:")[2].lower()
    for value, word in _RULE.findall(system):
        if word.lower() in judged:
            return typed(value), word
    return None


def _verdict(system: str, user: str, schema: dict[str, Any] | None) -> dict[str, Any]:
    rule = learned_rule(system, user)
    if rule is not None:
        return {"rationale": f"{FAKE_LABEL}: a guideline says {rule[0]} when {rule[1]} appears.", "value": rule[0]}
    examples = user.partition("Judge this example:")[0]
    expert = _EXPERT_VERDICT.search(examples)
    if expert:
        return {"rationale": f"{FAKE_LABEL}: the most similar past example was judged so.", "value": typed(expert[1])}
    return {"rationale": f"{FAKE_LABEL}: no memory applies; first allowed value.", "value": _first_value(schema)}


def _first_value(schema: dict[str, Any] | None) -> Any:
    value_schema = (schema or {}).get("properties", {}).get("value", {})
    if "enum" in value_schema:
        return value_schema["enum"][0]
    if value_schema.get("type") in ("integer", "number"):
        return value_schema.get("minimum", 0)
    return False


def distill_rationales(prompt: str) -> dict[str, Any]:
    """Each feedback with a rationale becomes one guideline: its rationale, citing its ref."""
    guidelines = []
    for ref, body in FEEDBACK_PATTERN.findall(prompt):
        rationale = RATIONALE_PATTERN.search(body)
        if rationale:
            guidelines.append({"text": rationale[1].strip(), "sources": [int(ref)]})
    return {"guidelines": guidelines}


def apply_guidelines_literally(prompt: str) -> dict[str, Any]:
    """The evidence check as a literal reader does it: a guideline "Answer X when the text mentions Y."
    implies X for an example that mentions Y, and decides nothing otherwise."""
    verdicts = []
    for number, guideline, example in _CHECK.findall(prompt):
        rule = _RULE.search(guideline)
        applies = rule is not None and rule[2].lower() in example.lower()
        verdicts.append({"check": int(number), "verdict": typed(rule[1]) if rule and applies else None})
    return {"verdicts": verdicts}


def compare_literally(prompt: str) -> dict[str, Any]:
    """Two guidelines are 'same' when their words are, 'different' otherwise: a cautious comparer."""
    parts = [part.split("\n\n")[0].strip() for part in prompt.split("guideline:\n")[1:3]]
    words = [re.findall(r"[a-z0-9]+", part.lower()) for part in parts]
    if len(words) == 2 and words[0] == words[1]:
        return {"relation": "same", "merged": parts[0]}
    return {"relation": "different", "merged": ""}


def typed(word: str) -> Any:
    """A verdict word as its value: true/false as booleans, whole numbers as ints, the rest as text."""
    word = word.strip().strip("'\"")
    if word.lower() in ("true", "false"):
        return word.lower() == "true"
    try:
        return int(word)
    except ValueError:
        return word


class FakeEmbeddings(Embeddings):
    """Hashed bag of words: texts that share words get close vectors. Offline and instant."""

    def __init__(self, dimensions: int = 384) -> None:
        self.dimensions = dimensions

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(text) for text in texts]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        return self.embed_query(text)

    def embed_query(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimensions] += 1.0
        norm = math.sqrt(sum(value * value for value in vector))
        if not norm:
            vector[0], norm = 1.0, 1.0
        return [value / norm for value in vector]
