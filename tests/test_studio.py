"""LangGraph Studio's way in: the real `langgraph dev` server on 127.0.0.1, driven through `langgraph-sdk`.

The server loads the graphs `langgraph.json` exposes (compiled with nothing bound, the server brings its
own checkpointer), and each run names its judge, model ("fake": offline, labelled) and stores in its context.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip("langgraph_api", reason="install the test extra: pip install -e '.[test]' (langgraph-cli[inmem])")
from langgraph_sdk import get_sync_client  # noqa: E402
from langgraph_sdk.client import SyncLangGraphClient  # noqa: E402

from memalign_graph import memory_thread_id  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
JUDGE = {"name": "support_tone", "instructions": "Is the reply appropriate?", "output": {"kind": "boolean"}}
RULE = "Answer true when the text mentions sorry."


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncLangGraphClient]:
    port = free_port()
    workdir = tmp_path_factory.mktemp("langgraph-dev")
    # The project's langgraph.json with absolute paths, so the server's files stay out of the checkout.
    config = json.loads((ROOT / "langgraph.json").read_text())
    config["dependencies"] = [str(ROOT)]
    config["graphs"] = {name: str(ROOT / path) for name, path in config["graphs"].items()}
    (workdir / "langgraph.json").write_text(json.dumps(config))
    log = (workdir / "server.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "langgraph_cli",
            "dev",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-browser",
            "--no-reload",
            "--config",
            str(workdir / "langgraph.json"),
        ],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "LANGSMITH_TRACING": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("langgraph dev did not start:\n" + (workdir / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield get_sync_client(url=url)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture
def context(tmp_path: Path) -> dict:
    return {"judge": JUDGE, "model": "fake", "embeddings": "fake", "home": str(tmp_path), "namespace": uuid.uuid4().hex}


def test_the_server_lists_the_three_graphs(server: SyncLangGraphClient) -> None:
    graphs = {assistant["graph_id"] for assistant in server.assistants.search()}
    assert graphs == {"alignment", "judging", "feedback"}
    nodes = {node["id"] for node in server.assistants.get_graph("judging")["nodes"]}
    assert {"retrieve", "build_working_memory", "judge", "parse"} <= nodes


def test_align_on_the_memory_thread_then_judge_on_another(server: SyncLangGraphClient, context: dict) -> None:
    memory = memory_thread_id("support_tone", context["namespace"])
    server.threads.create(thread_id=memory)
    feedback = [
        {
            "id": "f1",
            "inputs": "late parcel",
            "outputs": "Sorry, it ships today.",
            "value": True,
            "judge_verdict": False,
            "rationale": RULE,
        }
    ]
    output = server.runs.wait(memory, "alignment", input={"feedback": feedback}, context=context)
    assert output["report"]["added"] == ["f1"]
    state = server.threads.get_state(memory)
    assert [g["text"] for g in state["values"]["guidelines"].values()] == [RULE]

    thread = server.threads.create()
    verdict = server.runs.wait(
        thread["thread_id"], "judging", input={"inputs": "refund?", "outputs": "So sorry!"}, context=context
    )["verdict"]
    assert verdict["score"] is True and verdict["comment"].startswith("FAKE MODEL")
    assert verdict["metadata"]["episode_ids"] == ["f1"]


def test_alignment_refuses_a_thread_that_is_not_the_judges(server: SyncLangGraphClient, context: dict) -> None:
    thread = server.threads.create()
    output = server.runs.wait(
        thread["thread_id"], "alignment", input={"feedback": []}, context=context, raise_error=False
    )
    assert "keeps its memory on thread " + memory_thread_id("support_tone", context["namespace"]) in str(output)


def test_the_feedback_graph_interrupts_and_resumes(server: SyncLangGraphClient, context: dict) -> None:
    server.threads.create(thread_id=memory_thread_id("support_tone", context["namespace"]))
    thread = server.threads.create()["thread_id"]
    example = {"inputs": "Where is my parcel?", "outputs": "Sorry for the wait."}
    server.runs.wait(thread, "feedback", input=example, context=context)
    state = server.threads.get_state(thread)
    assert state["next"] == ["review"]
    [pending] = state["interrupts"]
    assert pending["value"]["verdict"]["score"] is False
    output = server.runs.wait(
        thread, "feedback", command={"resume": {"action": "correct", "value": True, "rationale": RULE}}, context=context
    )
    assert output["updated_verdict"]["score"] is True and output["alignment"]["added"]


def test_served_graphs_keep_episodes_on_a_qdrant_server(server: SyncLangGraphClient, context: dict) -> None:
    """The scale-out setting for served graphs: a run's `qdrant_url` puts its episodes on a Qdrant server
    (the REST double here), and the server process searches it through AsyncQdrantClient."""
    from qdrant_client import QdrantClient

    from qdrant_rest import running_qdrant_rest

    with running_qdrant_rest() as qdrant_url:
        served = {**context, "qdrant_url": qdrant_url}
        memory = memory_thread_id("support_tone", served["namespace"])
        server.threads.create(thread_id=memory)
        feedback = [{"id": "f1", "inputs": "late parcel", "outputs": "Sorry!", "value": True, "rationale": RULE}]
        assert server.runs.wait(memory, "alignment", input={"feedback": feedback}, context=served)["report"]["added"]

        thread = server.threads.create()["thread_id"]
        verdict = server.runs.wait(
            thread, "judging", input={"inputs": "refund?", "outputs": "So sorry!"}, context=served
        )["verdict"]

        qdrant = QdrantClient(url=qdrant_url, check_compatibility=False)
        [collection] = qdrant.get_collections().collections
        stored = qdrant.count(collection.name).count
        qdrant.close()
    assert verdict["score"] is True and verdict["metadata"]["episode_ids"] == ["f1"]
    assert collection.name == "memalign_episodes" and stored == 1


def test_local_memory_moves_into_the_served_stack_and_back_unchanged(
    server: SyncLangGraphClient, context: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Moving to the deploy stack: export from the embedded stores, `memalign memory import --server` puts
    semantic memory on the server's memory thread (through its API) and the episodes on its Qdrant server;
    served judging then uses the same memory, and an export from the server gives back the same file."""
    from memalign_graph import Feedback, JudgeSpec, MemAlignJudge
    from memalign_graph.cli import main
    from qdrant_rest import running_qdrant_rest

    spec, namespace = JudgeSpec.model_validate(JUDGE), context["namespace"]
    (tmp_path / "judge.json").write_text(json.dumps(JUDGE))
    feedback = [
        Feedback(id="f1", inputs="late parcel", outputs="Sorry, it ships today.", value=True, rationale=RULE),
        Feedback(id="f2", inputs="refund?", outputs="Wait.", value=False, rationale="Answer false on 'wait'."),
    ]
    example = {"inputs": "where is my refund?", "outputs": "So sorry, it is on its way."}
    with MemAlignJudge(spec, "fake", embeddings="fake", home=tmp_path / "local", namespace=namespace) as local:
        local.align(feedback)
        expected = local.judge(**example)
        local.export_memory(tmp_path / "memory.json")

    url = str(server.http.client.base_url).rstrip("/")
    cli = ["--spec", str(tmp_path / "judge.json"), "--namespace", namespace, "--home", str(tmp_path / "ops")]
    memory = memory_thread_id("support_tone", namespace)
    server.threads.create(thread_id=memory)  # made ahead, as for an alignment run: no graph yet
    with running_qdrant_rest() as qdrant_url:
        monkeypatch.setenv("MEMALIGN_QDRANT_URL", qdrant_url)
        assert main(["memory", "import", str(tmp_path / "memory.json"), *cli, "--server", url]) == 0
        versions = len(server.threads.get_history(memory))
        assert main(["memory", "import", str(tmp_path / "memory.json"), *cli, "--server", url]) == 0
        assert len(server.threads.get_history(memory)) == versions  # idempotent: no new version

        served = {**context, "qdrant_url": qdrant_url}
        thread = server.threads.create()["thread_id"]
        verdict = server.runs.wait(thread, "judging", input=example, context=served)["verdict"]
        assert main(["memory", "export", str(tmp_path / "back.json"), *cli, "--server", url]) == 0
        more = [{"id": "f3", "inputs": "lost card", "outputs": "Sorry!", "value": True, "rationale": "Apologise."}]
        report = server.runs.wait(memory, "alignment", input={"feedback": more}, context=served)["report"]
        learned = server.threads.get_state(memory)["values"]["records"]

    assert (verdict["score"], verdict["comment"]) == (expected["score"], expected["comment"])
    for used in ("guideline_ids", "episode_ids"):
        assert verdict["metadata"][used] == expected["metadata"][used] and expected["metadata"][used]
    assert json.loads((tmp_path / "back.json").read_text()) == json.loads((tmp_path / "memory.json").read_text())
    assert report["added"] == ["f3"] and sorted(learned) == ["f1", "f2", "f3"]  # served alignment builds on it


def test_moving_memory_to_a_server_without_its_qdrant_says_what_to_set(
    server: SyncLangGraphClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from memalign_graph import JudgeSpec
    from memalign_graph.cli import main
    from memalign_graph.memory.transfer import EXPORT_FORMAT
    from qdrant_rest import running_qdrant_rest

    empty = {"format": EXPORT_FORMAT, "judge": JudgeSpec.model_validate(JUDGE).model_dump(mode="json")}
    (tmp_path / "m.json").write_text(
        json.dumps({**empty, "namespace": "default", "guidelines": {}, "records": {}, "episodes": {}})
    )
    (tmp_path / "judge.json").write_text(json.dumps(JUDGE))
    args = [
        "memory",
        "import",
        str(tmp_path / "m.json"),
        "--spec",
        str(tmp_path / "judge.json"),
        "--home",
        str(tmp_path),
    ]
    monkeypatch.delenv("MEMALIGN_QDRANT_URL", raising=False)
    assert main([*args, "--server", str(server.http.client.base_url)]) == 2
    assert "set MEMALIGN_QDRANT_URL" in capsys.readouterr().err
    with running_qdrant_rest() as qdrant_url:
        monkeypatch.setenv("MEMALIGN_QDRANT_URL", qdrant_url)
        assert main([*args, "--server", "http://127.0.0.1:1"]) == 2
    assert "cannot reach the LangGraph server at http://127.0.0.1:1" in capsys.readouterr().err
