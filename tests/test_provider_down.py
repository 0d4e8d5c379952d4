"""A model provider that is down (refused connection, no answer, key refused) is one clear error, fast.

Before: a provider that never answered hung the CLI (600 s per try, retried by the client and by the
library); with an unreachable one the quick start printed a "Connection error" line per row, reported
"0% -> 0%" and exited 0, and `memalign judge` reported agreement over 0 verdicts.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from langchain_openai import ChatOpenAI

from memalign_graph import Boolean, JudgeSpec, MemAlignJudge, ProviderDownError
from memalign_graph.provider_health import ProviderBreaker, means_provider_down
from openai_server import openai_compatible_server

ROOT = Path(__file__).resolve().parent.parent
SPEC = JudgeSpec(name="tone", instructions="Is the reply appropriate?", output=Boolean())


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Refused(ConnectionError):
    pass


class Unauthorized(Exception):
    status_code = 401


def test_the_breaker_opens_after_failures_in_a_row_and_lets_one_trial_through() -> None:
    clock = Clock()
    breaker = ProviderBreaker(failures=3, cool_down=30, clock=clock)
    for _ in range(2):
        breaker.before_call()
        breaker.failed(Refused("connection refused"))
    breaker.failed(ValueError("a bad answer"))  # not a sign of a down provider: the count starts over
    for _ in range(3):
        breaker.before_call()
        breaker.failed(Refused("connection refused"))
    with pytest.raises(ProviderDownError, match=r"3 calls in a row failed \(Refused: connection refused\)"):
        breaker.before_call()
    clock.now = 30
    breaker.before_call()  # the trial
    with pytest.raises(ProviderDownError):
        breaker.before_call()  # only one at a time
    breaker.succeeded()
    breaker.before_call()
    assert not breaker.down


def test_timeouts_after_an_answer_mean_busy_not_down() -> None:
    """A one-slot server (llama.cpp's) times out the calls queued behind the others together; counted as a
    down provider, they cut off a working one (6 of 20 verdicts lost in the quick start on SmolLM2)."""
    breaker = ProviderBreaker(failures=3, clock=Clock())
    breaker.succeeded()
    for _ in range(5):
        breaker.failed(TimeoutError("Request timed out."))
    breaker.before_call()
    assert not breaker.down
    for _ in range(3):
        breaker.failed(Refused("connection refused"))  # a provider that answered can still die
    assert breaker.down


def test_what_counts_as_a_down_provider() -> None:
    assert (
        means_provider_down(Refused()) and means_provider_down(TimeoutError()) and means_provider_down(Unauthorized())
    )
    limited = type("RateLimitError", (Exception,), {"status_code": 429})()
    assert not means_provider_down(limited) and not means_provider_down(ValueError("not JSON"))


def test_a_refused_key_fails_fast_instead_of_calling_for_every_row() -> None:
    with openai_compatible_server(status=401) as (url, requests):
        model = ChatOpenAI(model="m", base_url=url, api_key="wrong", max_retries=0)
        examples = [{"inputs": f"question {n}", "outputs": "answer"} for n in range(40)]
        with MemAlignJudge(SPEC, model, embeddings="fake", episodic_store=_memory_store()) as judge:
            verdicts = judge.batch(examples, max_concurrency=4, return_exceptions=True)
    assert all(isinstance(verdict, Exception) for verdict in verdicts)
    assert sum(isinstance(verdict, ProviderDownError) for verdict in verdicts) >= 30
    assert len(requests) <= 3 + 4  # the failures that open it, and the calls already in flight


@contextmanager
def never_answering() -> Iterator[str]:
    """A provider that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"


def run_quickstart(base_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "MEMALIGN_MODEL": "openai:gpt-4.1-mini",
        "MEMALIGN_BASE_URL": base_url,
        "OPENAI_API_KEY": "unused",
        "MEMALIGN_EMBEDDINGS": "fake",
        "MEMALIGN_MODEL_TIMEOUT": "2",  # the provider never answers, so this fires whatever the machine's load
        "HF_HUB_OFFLINE": "1",
    }
    script = ROOT / "examples" / "quickstart.py"
    return subprocess.run([sys.executable, str(script)], env=environment, capture_output=True, text=True, cwd=tmp_path)


def test_the_quick_start_with_a_dead_provider_says_so_once_and_fails(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        unreachable = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"  # bound, not listening: refused
        done = run_quickstart(unreachable, tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip().splitlines()[-1]]
    assert "error: the model provider is not answering" in done.stderr and "agreement" not in done.stdout


def test_the_quick_start_with_a_provider_that_never_answers_stops_at_its_timeout(tmp_path: Path) -> None:
    with never_answering() as url:
        done = run_quickstart(url, tmp_path)
    assert done.returncode == 1, done.stderr
    assert "the model provider is not answering" in done.stderr and "Timeout" in done.stderr
    assert "agreement" not in done.stdout


def test_memalign_judge_stops_and_reports_no_agreement_over_no_verdicts(tmp_path: Path) -> None:
    with openai_compatible_server(status=401) as (url, requests):
        environment = {**os.environ, "MEMALIGN_BASE_URL": url, "OPENAI_API_KEY": "wrong", "HF_HUB_OFFLINE": "1"}
        command = [
            sys.executable,
            "-m",
            "memalign_graph.cli",
            "judge",
            str(ROOT / "examples/data/halueval_sample.jsonl"),
        ]
        options = ["--spec", str(ROOT / "examples/judges/halueval.yaml"), "--home", str(tmp_path)]
        done = subprocess.run(
            [
                *command,
                *options,
                "--model",
                "openai:m",
                "--embeddings",
                "fake",
                "--no-progress",
                "-o",
                str(tmp_path / "v"),
            ],
            env=environment,
            capture_output=True,
            text=True,
        )
    assert done.returncode == 1 and "the model provider is not answering" in done.stderr
    assert "agreement" not in done.stderr and len(requests) < 40


def _memory_store():
    from memalign_graph import QdrantEpisodicStore

    return QdrantEpisodicStore()
