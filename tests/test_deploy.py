"""The scale-out stack's files stay true to the code (no Docker engine runs here, so it cannot be started)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def test_the_dockerfile_is_what_langgraph_cli_generates_today(tmp_path: Path) -> None:
    pytest.importorskip("langgraph_cli")
    subprocess.run(
        [sys.executable, "-m", "langgraph_cli", "dockerfile", "-c", "langgraph.json", str(tmp_path / "Dockerfile")],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    # The generator names the package folder after the checkout's directory: compare without it.
    committed, fresh = (
        re.sub(r"/deps/[^/\s\"']+", "/deps/PROJECT", path.read_text())
        for path in (DEPLOY / "Dockerfile", tmp_path / "Dockerfile")
    )
    assert committed == fresh, "regenerate it: langgraph dockerfile -c langgraph.json deploy/Dockerfile"


def test_the_compose_stack_wires_the_settings_the_code_reads() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert set(compose["services"]) == {"qdrant", "postgres", "redis", "langgraph-api"}
    api = compose["services"]["langgraph-api"]
    assert (ROOT / api["build"]["dockerfile"]).exists()
    environment = api["environment"]
    assert {"DATABASE_URI", "REDIS_URI"} <= set(environment)
    assert environment["MEMALIGN_QDRANT_URL"] == "http://qdrant:6333"
    qdrant = compose["services"]["qdrant"]
    assert not qdrant["image"].endswith(":latest}"), "pin Qdrant's release to the client's"
    # The server demands the key the graphs send; an empty key would admit anyone, so it is required.
    assert qdrant["environment"]["QDRANT__SERVICE__API_KEY"].startswith("${MEMALIGN_QDRANT_API_KEY:?")
    assert environment["MEMALIGN_QDRANT_API_KEY"] == "${MEMALIGN_QDRANT_API_KEY}"
    source = "\n".join(path.read_text() for path in (ROOT / "memalign_graph").rglob("*.py"))
    for name in environment:
        if name.startswith("MEMALIGN_"):
            assert f'"{name}"' in source, f"{name} is set in the stack but never read by the package"


def test_the_env_example_names_only_what_the_stack_uses() -> None:
    compose_text = (DEPLOY / "docker-compose.yml").read_text()
    names = re.findall(r"^([A-Z_]+)=", (DEPLOY / ".env.example").read_text(), re.MULTILINE)
    assert names and all("${" + name in compose_text for name in names)
