"""Structured output that adapts to the server: the real langchain-openai client against loopback servers
that refuse `json_schema` (as llama.cpp's server does), refuse tools too, or ignore `response_format`.

Before: every judgment asked for json_schema, treated the server's 500 as transient, retried it (the
SDK twice, LangGraph three times) and failed: 100% of judgments failed against llama.cpp's server.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fakes import BagOfWordsEmbeddings
from memalign_graph import Categorical, ConfigurationError, Feedback, JudgeSpec, MemAlignJudge
from memalign_graph.accounting import UsageTracker, track_usage
from openai_server import openai_compatible_server, request_format

RULE = "Answer yes when the text mentions sorry."


@pytest.fixture
def yes_no_spec() -> JudgeSpec:
    return JudgeSpec(name="yes_no", instructions="Is the reply kind?", output=Categorical(labels=("yes", "no")))


@pytest.fixture
def openai_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("OPENAI_API_KEY", "unused")
    monkeypatch.delenv("MEMALIGN_STRUCTURED_OUTPUT", raising=False)
    return monkeypatch


def run_judge(tmp_path: Path, spec, base_url: str, monkeypatch: pytest.MonkeyPatch, **options) -> dict:
    monkeypatch.setenv("MEMALIGN_BASE_URL", base_url)
    with MemAlignJudge(spec, "openai:local", embeddings=BagOfWordsEmbeddings(), home=tmp_path, **options) as judge:
        taught = Feedback(id="f1", inputs="Late parcel", outputs="So sorry!", value="yes", rationale=RULE)
        report = judge.align([taught])
        first = judge.judge(inputs="Where is it?", outputs="Sorry for the wait.")
        second = judge.judge(inputs="Refund?", outputs="No.")
    return {"report": report, "first": first, "second": second}


@pytest.mark.parametrize(
    ("refused", "lands_on", "wire_format"),
    [
        (frozenset(), "json_schema", "json_schema"),
        (frozenset({"json_schema"}), "json_mode", "json_object"),  # llama.cpp's server
        (frozenset({"json_schema", "json_object"}), "function_calling", "tools"),
        (frozenset({"json_schema", "json_object", "tools"}), "prompt", "text"),
    ],
)
def test_auto_moves_past_each_refused_method_once_and_remembers(
    tmp_path, yes_no_spec, openai_env, refused, lands_on, wire_format
) -> None:
    with openai_compatible_server(refuse=refused) as (base_url, requests):
        seen = run_judge(tmp_path, yes_no_spec, base_url, openai_env)
    assert seen["first"]["score"] == "yes" and seen["first"]["metadata"]["structured_output"] == lands_on
    assert seen["second"]["metadata"]["structured_output"] == lands_on
    formats = [request_format(request) for request in requests]
    assert formats.count("json_schema") == (1 if refused else len(formats))  # refused once, never retried
    assert formats[len(refused) :] == [wire_format] * (len(formats) - len(refused))  # remembered after that
    assert seen["report"]["guidelines_added"]


def test_a_server_that_ignores_response_format_is_asked_in_the_prompt(tmp_path, yes_no_spec, openai_env) -> None:
    """Free text where JSON was asked for, twice: each is a bad answer retried with its reason, then the
    model is asked in the prompt, where this server (like the model behind it) answers JSON."""
    with openai_compatible_server(ignore_format=True) as (base_url, requests):
        seen = run_judge(tmp_path, yes_no_spec, base_url, openai_env)
    assert seen["first"]["score"] == "yes" and seen["second"]["metadata"]["structured_output"] == "prompt"
    assert [request_format(request) for request in requests][-1] == "text"


def test_a_method_chosen_by_hand_and_refused_is_one_clear_error(tmp_path, yes_no_spec, openai_env) -> None:
    with openai_compatible_server(refuse=frozenset({"json_schema"})) as (base_url, requests):
        openai_env.setenv("MEMALIGN_BASE_URL", base_url)
        openai_env.setenv("MEMALIGN_STRUCTURED_OUTPUT", "json_schema")
        with (
            MemAlignJudge(yes_no_spec, "openai:local", embeddings=BagOfWordsEmbeddings(), home=tmp_path) as judge,
            pytest.raises(ConfigurationError, match="refused 'json_schema'.*MEMALIGN_STRUCTURED_OUTPUT=auto"),
        ):
            judge.judge(inputs="q", outputs="a")
    assert len(requests) == 1  # not retried: a refusal is the same on every try


def test_an_unknown_method_names_the_setting(tmp_path, yes_no_spec, openai_env) -> None:
    openai_env.setenv("MEMALIGN_STRUCTURED_OUTPUT", "xml")
    with pytest.raises(ConfigurationError, match="MEMALIGN_STRUCTURED_OUTPUT: 'xml' is not a method"):
        MemAlignJudge(yes_no_spec, "fake", embeddings=BagOfWordsEmbeddings(), home=tmp_path)


def test_accounting_says_which_method_served(tmp_path, yes_no_spec, openai_env) -> None:
    tracker = UsageTracker()
    with openai_compatible_server(refuse=frozenset({"json_schema"})) as (base_url, _), track_usage(tracker):
        run_judge(tmp_path, yes_no_spec, base_url, openai_env)
    methods = tracker.by_method()
    assert methods["json_mode"].calls >= 3 and methods["json_schema"].failed_calls == 1


def test_async_judging_twice_in_one_process_with_a_real_client(tmp_path, yes_no_spec, openai_env) -> None:
    """Before: the second `asyncio.run` failed with "Event loop is closed" (ChatOpenAI's cached client)."""
    with openai_compatible_server() as (base_url, _):
        openai_env.setenv("MEMALIGN_BASE_URL", base_url)
        with MemAlignJudge(yes_no_spec, "openai:local", embeddings=BagOfWordsEmbeddings(), home=tmp_path) as judge:
            examples = [{"inputs": f"q{n}", "outputs": "sorry"} for n in range(4)]
            first = asyncio.run(judge.abatch(examples))
            second = asyncio.run(judge.abatch(examples))
    assert [v["key"] for v in first] == [v["key"] for v in second] == ["yes_no"] * 4
