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
from contextlib import contextmanager
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


# What the deployment decides (the server's environment): where memory lives, the model, the namespaces.
SERVED = {
    "MEMALIGN_MODEL": "fake",
    "MEMALIGN_EMBEDDINGS": "fake",
    "MEMALIGN_SERVED_NAMESPACES": "t-*",
}


@contextmanager
def langgraph_dev(workdir: Path, environment: dict[str, str], *, auth: str | None = None) -> Iterator[str]:
    """The real `langgraph dev` on a free port of 127.0.0.1 with this environment; yields its URL."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    # The project's langgraph.json with absolute paths, so the server's files stay out of the checkout.
    config = json.loads((ROOT / "langgraph.json").read_text())
    config["dependencies"] = [str(ROOT)]
    config["graphs"] = {name: str(ROOT / path) for name, path in config["graphs"].items()}
    if auth is not None:
        config["auth"] = {"path": auth}
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
        env={
            **{key: value for key, value in os.environ.items() if not key.startswith("MEMALIGN_")},
            "HF_HUB_OFFLINE": "1",
            "LANGSMITH_TRACING": "false",
            "LANGGRAPH_CLI_NO_ANALYTICS": "1",
            "MEMALIGN_HOME": str(workdir / "home"),
            **environment,
        },
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # Readiness, not timing: poll until the server answers or its process ends; the bound is only
        # there so a server that hangs at start fails the run instead of stalling it.
        deadline = time.monotonic() + 600
        while True:
            try:
                if httpx.get(f"{url}/ok", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("langgraph dev did not start:\n" + (workdir / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncLangGraphClient]:
    with langgraph_dev(tmp_path_factory.mktemp("langgraph-dev"), SERVED) as url:
        yield get_sync_client(url=url)


@pytest.fixture
def context(tmp_path: Path) -> dict:
    return {"judge": JUDGE, "namespace": "t-" + uuid.uuid4().hex}


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


QDRANT_KEY = "deployment-secret"


@pytest.fixture(scope="module")
def served_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SyncLangGraphClient, str]]:
    """The deploy stack's shape: a LangGraph server whose episodes live on a Qdrant server (the REST double,
    which demands the deployment's key), both named only in the server's environment."""
    from qdrant_rest import running_qdrant_rest

    with running_qdrant_rest(api_key=QDRANT_KEY) as qdrant_url:
        environment = {**SERVED, "MEMALIGN_QDRANT_URL": qdrant_url, "MEMALIGN_QDRANT_API_KEY": QDRANT_KEY}
        with langgraph_dev(tmp_path_factory.mktemp("langgraph-dev-qdrant"), environment) as url:
            yield get_sync_client(url=url), qdrant_url


def test_served_graphs_keep_episodes_on_the_deployments_qdrant_server(
    served_stack: tuple[SyncLangGraphClient, str], context: dict
) -> None:
    """The scale-out setting for served graphs: the server's MEMALIGN_QDRANT_URL (and key) puts episodes on a
    Qdrant server, and the server process searches it through AsyncQdrantClient."""
    from qdrant_client import QdrantClient

    server, qdrant_url = served_stack
    memory = memory_thread_id("support_tone", context["namespace"])
    server.threads.create(thread_id=memory)
    feedback = [{"id": "f1", "inputs": "late parcel", "outputs": "Sorry!", "value": True, "rationale": RULE}]
    assert server.runs.wait(memory, "alignment", input={"feedback": feedback}, context=context)["report"]["added"]

    thread = server.threads.create()["thread_id"]
    verdict = server.runs.wait(thread, "judging", input={"inputs": "refund?", "outputs": "So sorry!"}, context=context)[
        "verdict"
    ]
    qdrant = QdrantClient(url=qdrant_url, api_key=QDRANT_KEY, check_compatibility=False)
    [collection] = qdrant.get_collections().collections
    stored = qdrant.count(collection.name, count_filter=None).count
    qdrant.close()
    assert verdict["score"] is True and verdict["metadata"]["episode_ids"] == ["f1"]
    assert collection.name == "memalign_episodes" and stored >= 1


def test_local_memory_moves_into_the_served_stack_and_back_unchanged(
    served_stack: tuple[SyncLangGraphClient, str],
    context: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Moving to the deploy stack: export from the embedded stores, `memalign memory import --server` puts
    semantic memory on the server's memory thread (through its API) and the episodes on its Qdrant server;
    served judging then uses the same memory, and an export from the server gives back the same file."""
    from memalign_graph import Feedback, JudgeSpec, MemAlignJudge
    from memalign_graph.cli import main

    server, qdrant_url = served_stack
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
    monkeypatch.setenv("MEMALIGN_QDRANT_URL", qdrant_url)
    monkeypatch.setenv("MEMALIGN_QDRANT_API_KEY", QDRANT_KEY)
    assert main(["memory", "import", str(tmp_path / "memory.json"), *cli, "--server", url]) == 0
    versions = len(server.threads.get_history(memory))
    assert main(["memory", "import", str(tmp_path / "memory.json"), *cli, "--server", url]) == 0
    assert len(server.threads.get_history(memory)) == versions  # idempotent: no new version

    thread = server.threads.create()["thread_id"]
    verdict = server.runs.wait(thread, "judging", input=example, context=context)["verdict"]
    assert main(["memory", "export", str(tmp_path / "back.json"), *cli, "--server", url]) == 0
    more = [{"id": "f3", "inputs": "lost card", "outputs": "Sorry!", "value": True, "rationale": "Apologise."}]
    report = server.runs.wait(memory, "alignment", input={"feedback": more}, context=context)["report"]
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


# -- a hostile client ----------------------------------------------------------------------------


def served_error(output: object) -> str:
    """What a client is told of a failed run (the message, never 'An internal error occurred')."""
    text = json.dumps(output)
    assert "internal error" not in text.lower(), text
    return text


@contextmanager
def listening() -> Iterator[tuple[str, socket.socket]]:
    """An address nobody should call: a listening socket that is never accepted from. A connection attempt
    completes in the kernel's backlog, so a non-blocking accept afterwards tells whether one came."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", listener


def called(listener: socket.socket) -> bool:
    try:
        connection, _ = listener.accept()
    except BlockingIOError:
        return False
    connection.close()
    return True


def test_a_run_cannot_choose_where_memory_lives_nor_send_the_servers_key_elsewhere(
    served_stack: tuple[SyncLangGraphClient, str], context: dict
) -> None:
    server, _ = served_stack
    thread = server.threads.create()["thread_id"]
    example = {"inputs": "refund?", "outputs": "So sorry!"}
    with listening() as (hostile_url, listener):
        output = server.runs.wait(
            thread, "judging", input=example, context={**context, "qdrant_url": hostile_url}, raise_error=False
        )
        assert "context.qdrant_url: a served judge's memory lives where the deployment puts it" in served_error(output)
        assert not called(listener), "the server called the address a client chose"
    output = server.runs.wait(
        thread, "judging", input=example, context={**context, "home": "/tmp/elsewhere"}, raise_error=False
    )
    assert "context.home: a served judge's memory lives where the deployment puts it" in served_error(output)


def test_a_run_in_a_namespace_the_deployment_does_not_serve_is_refused(
    server: SyncLangGraphClient, context: dict
) -> None:
    for namespace in ("default", "tenant-a"):
        memory = memory_thread_id("support_tone", namespace)
        server.threads.create(thread_id=memory, if_exists="do_nothing")
        named = {**context, "namespace": namespace}
        output = server.runs.wait(memory, "alignment", input={"forget": ["f1"]}, context=named, raise_error=False)
        assert f"context.namespace: {namespace!r} is not served by this deployment; it serves t-*" in served_error(
            output
        )


def test_a_model_the_deployment_does_not_allow_is_refused(server: SyncLangGraphClient, context: dict) -> None:
    thread = server.threads.create()["thread_id"]
    with listening() as (hostile_url, listener):
        for name, value in (("model", f"openai:gpt-4.1?base_url={hostile_url}"), ("embeddings", "openai:x")):
            output = server.runs.wait(
                thread,
                "judging",
                input={"inputs": "q", "outputs": "a"},
                context={**context, name: value},
                raise_error=False,
            )
            assert f"context.{name}: {value!r} is not one this deployment serves" in served_error(output)
        assert not called(listener)


def test_a_bad_setting_reaches_the_client_as_one_line(server: SyncLangGraphClient, context: dict) -> None:
    thread = server.threads.create()["thread_id"]
    output = server.runs.wait(
        thread, "judging", input={"inputs": "q", "outputs": "a"}, context={**context, "k": "many"}, raise_error=False
    )
    assert "context.k: 'many' is not a whole number from 0 to 100" in served_error(output)
    output = server.runs.wait(
        thread, "judging", input={"inputs": "", "outputs": "a"}, context=context, raise_error=False
    )
    assert "input.inputs: required by judge 'support_tone' but empty" in served_error(output)


def test_stateless_judging_reads_the_judges_memory(server: SyncLangGraphClient, context: dict) -> None:
    """`client.runs.wait(None, "judging", ...)`: the natural way to call a served evaluator."""
    memory = memory_thread_id("support_tone", context["namespace"])
    server.threads.create(thread_id=memory)
    feedback = [{"id": "f1", "inputs": "late parcel", "outputs": "Sorry!", "value": True, "rationale": RULE}]
    server.runs.wait(memory, "alignment", input={"feedback": feedback}, context=context)
    verdict = server.runs.wait(None, "judging", input={"inputs": "refund?", "outputs": "So sorry!"}, context=context)[
        "verdict"
    ]
    assert verdict["score"] is True and verdict["metadata"]["episode_ids"] == ["f1"]
    assert verdict["metadata"]["guideline_ids"]


def test_a_stateless_feedback_run_judges_and_asks_the_expert(server: SyncLangGraphClient, context: dict) -> None:
    """A stateless run cannot be resumed (its thread is temporary), but it judges with the judge's memory and
    returns the question it would ask the expert."""
    output = server.runs.wait(None, "feedback", input={"inputs": "refund?", "outputs": "Wait."}, context=context)
    assert output["verdict"]["score"] is False


def test_under_custom_auth_each_caller_works_in_their_own_namespace(tmp_path_factory: pytest.TempPathFactory) -> None:
    """MEMALIGN_SERVED_NAMESPACES=@auth with deploy/auth.py: the namespace is the caller's identity, a run
    naming another is refused, and another tenant's memory thread cannot be read or run."""
    from langgraph_sdk.errors import NotFoundError

    environment = {**SERVED, "MEMALIGN_SERVED_NAMESPACES": "@auth", "TENANT_API_KEYS": "key-a:team-a,key-b:team-b"}
    auth = f"{ROOT / 'deploy' / 'auth.py'}:auth"
    with langgraph_dev(tmp_path_factory.mktemp("langgraph-dev-auth"), environment, auth=auth) as url:
        team_a = get_sync_client(url=url, api_key="key-a")
        team_b = get_sync_client(url=url, api_key="key-b")
        stranger = get_sync_client(url=url, api_key="nope")
        context = {"judge": JUDGE}
        memory_a = memory_thread_id("support_tone", "team-a")
        team_a.threads.create(thread_id=memory_a)
        feedback = [{"id": "f1", "inputs": "late parcel", "outputs": "Sorry!", "value": True, "rationale": RULE}]
        assert team_a.runs.wait(memory_a, "alignment", input={"feedback": feedback}, context=context)["report"]["added"]
        example = {"inputs": "refund?", "outputs": "So sorry!"}
        seen_a = team_a.runs.wait(None, "judging", input=example, context=context)["verdict"]["metadata"]

        refused = team_b.runs.wait(
            None, "judging", input=example, context={**context, "namespace": "team-a"}, raise_error=False
        )
        assert "context.namespace: 'team-a' is not yours" in served_error(refused)
        with pytest.raises(NotFoundError):
            team_b.threads.get_state(memory_a)
        with pytest.raises(httpx.HTTPStatusError, match="404"):
            team_b.runs.wait(memory_a, "alignment", input={"forget": ["f1"]}, context=context)
        seen_b = team_b.runs.wait(None, "judging", input=example, context=context)["verdict"]["metadata"]
        with pytest.raises(Exception, match="unknown API key"):
            stranger.assistants.search()

    assert seen_a["namespace"] == "team-a" and seen_a["guideline_ids"] and seen_a["episode_ids"] == ["f1"]
    assert seen_b["namespace"] == "team-b" and seen_b["guideline_ids"] == [] and seen_b["episode_ids"] == []
