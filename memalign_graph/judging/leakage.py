"""The leakage guard: a judged example that memory already holds is noticed, and can be judged around.

An example is "in memory" when a record retrieved for it, or the provenance of a guideline shown, is the
example itself: the same feedback id (the `example_id` the caller gives, or the id derived from the
example's content) or the same judged content (inputs, outputs and expectations hashed as
`memalign_graph.feedback.example_id` does) under another id. Judging such an example shows the judge the
expert's own answer, and agreement measured on it says nothing about new examples.

The verdict says so (`metadata["in_memory"]`: the ids of the example's records found). `exclude_ids`
(per judgment) and `exclude_self` (per run, `JudgeContext`) retrieve around them: the search asks for
more episodes and leaves those out, and a guideline supported only by them is not shown. Identical
content embeds to the identical vector, so with k > 0 the example's own episode is the nearest one and
is always seen; with k = 0 only guideline provenance can tell (by id, not by content).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypedDict

from memalign_graph.context import JudgeContext
from memalign_graph.errors import InvalidValueError
from memalign_graph.feedback import example_id
from memalign_graph.judging.state import JudgeInput
from memalign_graph.records import Episode, Guideline

Search = Callable[[int], list[Episode]]
AsyncSearch = Callable[[int], Awaitable[list[Episode]]]
MAX_SEARCH_ROUNDS = 4  # each round doubles the limit: at most 8 times the first


class LeakageOptions(TypedDict, total=False):
    """The leakage guard's per-judgment options (`MemAlignJudge.judge(..., example_id=..., exclude_self=True)`)."""

    example_id: str  # the example's id in your data: feedback memory holds under it is reported
    exclude_ids: Sequence[str]  # feedback this judgment must not be shown
    exclude_self: bool  # leave out the example's own records (by example_id or content); None: the run's setting


def guard_input(example: JudgeInput, options: Mapping[str, Any]) -> tuple[JudgeInput, bool | None]:
    """The judging graph's input with the guard's keys checked, and the `exclude_self` asked for (or None)."""
    guarded = JudgeInput(**example)
    given = options.get("example_id")
    if given is not None:
        if not isinstance(given, str) or not given:
            raise InvalidValueError(f"example_id: {given!r} is not an id; give the example's id as a string.")
        guarded["example_id"] = given
    excluded = options.get("exclude_ids") or ()
    if isinstance(excluded, str) or not all(isinstance(item, str) and item for item in excluded):
        raise InvalidValueError(f"exclude_ids: {excluded!r} must be a list of feedback ids, e.g. ['fb-1'].")
    if excluded:
        guarded["exclude_ids"] = list(excluded)
    exclude_self = options.get("exclude_self")
    if exclude_self is not None and not isinstance(exclude_self, bool):
        raise InvalidValueError(f"exclude_self: {exclude_self!r} must be true or false.")
    return guarded, exclude_self


def guarded_context(context: JudgeContext, exclude_self: bool | None) -> JudgeContext:
    """The run's context with `exclude_self` as a call asked (None: as the run has it)."""
    if exclude_self is None or exclude_self == context.exclude_self:
        return context
    return replace(context, exclude_self=exclude_self)


def batch_exclude_self(examples: Sequence[Mapping[str, Any]]) -> bool | None:
    """The one `exclude_self` a batch's examples ask for (a batch runs in one context), or None."""
    chosen = {item.get("exclude_self") for item in examples} - {None}
    if len(chosen) > 1:
        raise InvalidValueError("examples: exclude_self differs between examples; judge them in two batches.")
    return chosen.pop() if chosen else None


def content_id(fields: Mapping[str, Any]) -> str:
    """The id derived from an example's judged content, as feedback without an id of its own gets it."""
    return example_id(fields.get("inputs"), fields.get("outputs"), fields.get("expectations"))


@dataclass(frozen=True)
class SelfCheck:
    """Who the judged example is (its ids and content) and which records its judgment must not see."""

    content: str
    own_ids: frozenset[str]
    exclude: frozenset[str]
    exclude_self: bool

    @classmethod
    def of(
        cls, example: Mapping[str, Any], *, given_id: str | None, exclude_ids: Iterable[str], exclude_self: bool
    ) -> SelfCheck:
        content = content_id(example)
        own = frozenset({content, *([given_id] if given_id else [])})
        return cls(content=content, own_ids=own, exclude=frozenset(exclude_ids), exclude_self=exclude_self)

    @property
    def excludes_anything(self) -> bool:
        return self.exclude_self or bool(self.exclude)

    def is_self(self, episode: Episode) -> bool:
        return episode["feedback_id"] in self.own_ids or content_id(episode) == self.content

    def is_excluded(self, episode: Episode) -> bool:
        return episode["feedback_id"] in self.exclude or (self.exclude_self and self.is_self(episode))

    def search(self, search: Search, k: int) -> tuple[list[Episode], list[Episode]]:
        """The k nearest episodes not excluded, and every one fetched (to tell which are the example)."""
        limit = self._first_limit(k)
        for _ in range(MAX_SEARCH_ROUNDS):
            found = search(limit)
            kept = [episode for episode in found if not self.is_excluded(episode)]
            if len(kept) >= k or len(found) < limit:
                break
            limit *= 2
        return kept[:k], found

    async def asearch(self, search: AsyncSearch, k: int) -> tuple[list[Episode], list[Episode]]:
        limit = self._first_limit(k)
        for _ in range(MAX_SEARCH_ROUNDS):
            found = await search(limit)
            kept = [episode for episode in found if not self.is_excluded(episode)]
            if len(kept) >= k or len(found) < limit:
                break
            limit *= 2
        return kept[:k], found

    def _first_limit(self, k: int) -> int:
        # Exclusion needs room for what it leaves out: the listed ids and this example's own record(s).
        return k + len(self.exclude) + 2 if self.excludes_anything else k

    def screen(
        self, guidelines: Sequence[Guideline], fetched: Sequence[Episode]
    ) -> tuple[list[Guideline], list[str], list[str]]:
        """The guidelines a judgment may see, the ids of this example's records in memory, and the ids left out.

        A guideline is left out when every feedback it came from is excluded: it exists only because of them.
        """
        own_records = {episode["feedback_id"] for episode in fetched if self.is_self(episode)}
        known = self.own_ids | own_records
        cited = {fid for guideline in guidelines for fid in guideline["feedback_ids"] if fid in known}
        hidden = set(self.exclude) | (known if self.exclude_self else set())
        kept, left_out = [], {episode["feedback_id"] for episode in fetched if self.is_excluded(episode)}
        for guideline in guidelines:
            support = set(guideline["feedback_ids"])
            if support and support <= hidden:
                left_out |= support
            else:
                kept.append(guideline)
        return kept, sorted(own_records | cited), sorted(left_out)


def batch_inputs(examples: Sequence[Mapping[str, Any]]) -> list[JudgeInput]:
    """A batch's examples as the judging graph's inputs, each guarded; an unknown key is named."""
    allowed = {"inputs", "outputs", "expectations", *LeakageOptions.__annotations__}
    for index, item in enumerate(examples):
        extra = sorted(set(item) - allowed)
        if extra:
            raise InvalidValueError(
                f"examples[{index}]: unknown keys {extra}; an example has only inputs, outputs and expectations "
                "(and example_id, exclude_ids, exclude_self)."
            )
    return [
        guard_input(
            JudgeInput(inputs=item.get("inputs"), outputs=item.get("outputs"), expectations=item.get("expectations")),
            item,
        )[0]
        for item in examples
    ]
