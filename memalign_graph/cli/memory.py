"""`memalign memory ...`: read, version, delete and move (export, import) what a judge has learned."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from memalign_graph.cli.common import CliError, open_judge, resolve_model, resolve_spec
from memalign_graph.config import (
    memory_home,
    model_configured,
    open_episodic_store,
    postgres_configured,
    qdrant_server_configured,
)
from memalign_graph.errors import InvalidValueError

if TYPE_CHECKING:  # what each action needs is imported when it runs, so `memalign --help` stays instant
    from memalign_graph.judge import MemAlignJudge
    from memalign_graph.memory.episodic import EpisodicStore
    from memalign_graph.memory.transfer import SemanticMemoryOwner
    from memalign_graph.spec import JudgeSpec

EXAMPLE = """examples:
  memalign memory show --judge support_tone --episodes 10
  memalign memory history --judge support_tone
  memalign memory rollback 1f0c2a4e-... --judge support_tone
  memalign memory forget fb-3a1c... --judge support_tone          # feedback ids, see `show --episodes`
  memalign memory forget gl-9e2d... --judge support_tone --guidelines
  memalign memory verify --judge support_tone [--repair]
  memalign memory export memory.json --judge support_tone          # then, on the new stores:
  MEMALIGN_POSTGRES_URL=postgresql://... memalign memory import memory.json --judge support_tone
  MEMALIGN_QDRANT_URL=http://127.0.0.1:6333 MEMALIGN_QDRANT_API_KEY=... \
    memalign memory import memory.json --judge support_tone --server http://127.0.0.1:8123"""


def add_command(subcommands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    parser = subcommands.add_parser(
        "memory",
        help="inspect, version and delete a judge's memory",
        description="Inspect a judge's guidelines (with the feedback each came from) and episodes, list versions, "
        "roll back, and delete feedback or guidelines. No model call is made, except to re-distill "
        "feedback that is still pending.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = _action(actions, "show", parents, "guidelines with provenance, and episodes")
    show.add_argument("--episodes", type=int, default=0, metavar="N", help="also list up to N episodes")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    history = _action(actions, "history", parents, "versions of memory, newest first")
    history.add_argument("--json", action="store_true", help="print JSON instead of text")
    rollback = _action(actions, "rollback", parents, "make an earlier version current (history keeps both)")
    rollback.add_argument("checkpoint_id", help="a checkpoint id from `memalign memory history`")
    forget = _action(actions, "forget", parents, "delete feedback (its episode and its share of guidelines)")
    forget.add_argument("ids", nargs="+", metavar="ID", help="feedback ids (or guideline ids with --guidelines)")
    forget.add_argument("--guidelines", action="store_true", help="the ids are guideline ids")
    forget.add_argument("--purge", action="store_true", help="also erase the feedback from checkpoint history")
    verify = _action(actions, "verify", parents, "check that episodes and semantic memory agree")
    verify.add_argument("--repair", action="store_true", help="finish an interrupted alignment and re-sync episodes")
    export = _action(actions, "export", parents, "write the judge's memory (with episode vectors) to a file")
    export.add_argument("file", help="the JSON file to write")
    import_ = _action(actions, "import", parents, "replace the judge's memory by an export (lossless, idempotent)")
    import_.add_argument("file", help="a file written by `memalign memory export`")
    for parser in (export, import_):
        parser.add_argument(
            "--server",
            metavar="URL",
            help="the memory of the judge a LangGraph server serves (e.g. the deploy stack's http://127.0.0.1:8123): "
            "semantic memory through its API, episodes on the Qdrant server at $MEMALIGN_QDRANT_URL",
        )


def _action(
    actions: argparse._SubParsersAction, name: str, parents: list[argparse.ArgumentParser], summary: str
) -> argparse.ArgumentParser:
    parser = actions.add_parser(
        name,
        parents=parents,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=RUNS[name])
    return parser


def _open(args: argparse.Namespace) -> Any:
    """The judge over its memory; a model only if configured (inspection needs none), embeddings on first use."""
    from memalign_graph.cli.standins import LazyEmbeddings, UnconfiguredModel

    spec = resolve_spec(args, save=False)
    model = resolve_model(args) if model_configured(args.model) else UnconfiguredModel()
    return open_judge(args, spec, model, LazyEmbeddings(args.embeddings))


@contextmanager
def _open_to_read(args: argparse.Namespace) -> Iterator[MemAlignJudge]:
    """The judge for a command that only reads: from a read-only home too (semantic memory only)."""
    from memalign_graph.memory.read_only import is_read_only_failure

    try:
        opened = _open(args)
        judge = opened.__enter__()
    except Exception as error:
        if not is_read_only_failure(error) or qdrant_server_configured() or postgres_configured():
            raise
        opened = _open_read_only(args)
        judge = opened.__enter__()
    try:
        yield judge
    finally:
        opened.__exit__(None, None, None)


@contextmanager
def _open_read_only(args: argparse.Namespace) -> Iterator[MemAlignJudge]:
    from memalign_graph.cli.standins import LazyEmbeddings, UnconfiguredModel
    from memalign_graph.judge import MemAlignJudge
    from memalign_graph.memory.read_only import UnreadableEpisodes, open_read_only_sqlite

    home = memory_home(args.home)
    saver, connection = open_read_only_sqlite(home / "semantic.sqlite")
    print(f"memalign: {home} is read-only: showing semantic memory only", file=sys.stderr)
    judge = MemAlignJudge(
        resolve_spec(args, save=False),
        UnconfiguredModel(),
        embeddings=LazyEmbeddings(args.embeddings),
        namespace=args.namespace,
        episodic_store=UnreadableEpisodes(home / "episodes"),
        checkpointer=saver,
    )
    try:
        yield judge
    finally:
        judge.close()
        connection.close()


def show(args: argparse.Namespace) -> int:
    with _open_to_read(args) as judge:
        guidelines = judge.guidelines()
        ledger = judge.memory.ledger()
        pending = sorted(judge.memory.pending())
        episodes = list_episodes(judge, args.episodes) if args.episodes > 0 else []
    if args.json:
        print(
            json.dumps(
                {"guidelines": guidelines, "feedback": len(ledger), "pending": pending, "episodes": episodes},
                indent=2,
                ensure_ascii=False,
                default=str,
            )
        )
        return 0
    print(
        f"judge {judge.spec.name!r}, namespace {judge.namespace}: {len(guidelines)} guidelines from "
        f"{len(ledger)} feedback items" + (f", {len(pending)} pending distillation" if pending else "")
    )
    for guideline in guidelines:
        sources = guideline["feedback_ids"]
        shown = ", ".join(sources[:5]) + (f", ... ({len(sources)} in all)" if len(sources) > 5 else "")
        print(f"- [{guideline['id']}] {guideline['text']}\n    from: {shown}")
    if episodes:
        print(f"episodes (first {len(episodes)}):")
        for episode in episodes:
            wrong = " (the judge was wrong)" if episode.get("judge_was_wrong") else ""
            rationale = f" - {_short(episode['rationale'])}" if episode.get("rationale") else ""
            print(
                f"- {episode['feedback_id']}: expert says {episode.get('value')!r}{wrong}{rationale}\n"
                f"    inputs: {_short(episode.get('inputs'))}"
            )
    return 0


def history(args: argparse.Namespace) -> int:
    with _open_to_read(args) as judge:
        versions = judge.history()
    if args.json:
        print(json.dumps(versions, indent=2, default=str))
        return 0
    if not versions:
        print(f"judge {judge.spec.name!r} has no memory yet in namespace {judge.namespace}")
        return 0
    print(f"{len(versions)} versions of the memory of {judge.spec.name!r}, newest first:")
    for version in versions:
        print(
            f"  {version['checkpoint_id']}  {version['created_at']}  "
            f"{version['guidelines']} guidelines, {version['feedback']} feedback"
        )
    return 0


def rollback(args: argparse.Namespace) -> int:
    with _open(args) as judge:
        known = {version["checkpoint_id"] for version in judge.history()}
        if args.checkpoint_id not in known:
            raise CliError(
                f"checkpoint_id: {args.checkpoint_id!r} is not a version of {judge.spec.name!r}'s memory; "
                "see `memalign memory history`"
            )
        judge.rollback(args.checkpoint_id)
        print(
            f"rolled {judge.spec.name!r} back to {args.checkpoint_id}: {len(judge.guidelines())} guidelines, "
            f"{len(judge.memory.ledger())} feedback"
        )
    return 0


def forget(args: argparse.Namespace) -> int:
    """Forgetting is retryable: an id memory does not hold (forgotten already) is a no-op that says so."""
    with _open(args) as judge:
        if args.guidelines:
            absent = sorted(set(args.ids) - {guideline["id"] for guideline in judge.guidelines()})
            report = judge.forget_guidelines(args.ids)
            print(f"removed {len(report['guidelines_removed'])} guidelines from {judge.spec.name!r}")
            _say_absent(absent, "guidelines", "memalign memory show")
            return 0
        report = judge.forget(args.ids, purge=args.purge)
        print(
            f"forgot {len(report['forgotten'])} feedback items of {judge.spec.name!r}; "
            f"{len(report['guidelines_removed'])} guidelines left with no source were removed"
            + ("; history purged" if args.purge else "")
        )
        _say_absent(report["not_found"], "feedback", "memalign memory show --episodes N")
    return 0


def _say_absent(ids: list[str], kind: str, where: str) -> None:
    if ids:
        print(f"not in memory (nothing to do; forgotten already?): {', '.join(ids)}; list {kind} with `{where}`")


def verify(args: argparse.Namespace) -> int:
    with _open(args) as judge:
        found = judge.repair() if args.repair else judge.verify()
        problems = {
            "unfinished alignment": list(found.unfinished_run),
            "feedback without an episode": found.missing_episodes,
            "episodes whose content differs from their feedback": found.stale_episodes,
            "episodes without feedback": found.orphan_episodes,
            "guidelines citing unknown feedback": sorted(found.unknown_provenance),
        }
    if found.ok:
        print(f"memory of {judge.spec.name!r} is consistent")
        return 0
    for problem, items in problems.items():
        if items:
            print(f"{problem}: {', '.join(items)}")
    print("repaired" if args.repair else "run `memalign memory verify --repair` to mend it")
    return 0 if args.repair else 1


def export_memory(args: argparse.Namespace) -> int:
    with _memory_location(args) as (memory, store, spec):
        from memalign_graph.memory.transfer import export_memory as export

        written = export(memory, store, spec, args.file)
    print(f"wrote {written['guidelines']} guidelines, {written['records']} feedback, {written['episodes']} episodes")
    return 0


def import_memory(args: argparse.Namespace) -> int:
    with _memory_location(args) as (memory, store, spec):
        try:
            from memalign_graph.memory.transfer import import_memory as imported

            held = imported(memory, store, spec, args.file)
        except InvalidValueError as error:
            raise CliError(str(error)) from error
    print(
        f"{spec.name!r} now holds {held['guidelines']} guidelines, {held['records']} feedback, "
        f"{held['episodes']} episodes" + (f" on {args.server}" if args.server else "")
    )
    return 0


@contextmanager
def _memory_location(
    args: argparse.Namespace,
) -> Iterator[tuple[SemanticMemoryOwner, EpisodicStore, JudgeSpec]]:
    """The judge's memory in this home's stores, or, with --server, that of the judge the server serves."""
    if not args.server:
        with _open(args) as judge:
            yield judge.memory, judge.episodic_store, judge.spec
        return
    import httpx
    from langgraph_sdk import get_sync_client
    from langgraph_sdk.errors import APIConnectionError, APIStatusError

    from memalign_graph.memory.transfer import ServedMemory

    spec = resolve_spec(args, save=False)
    if not qdrant_server_configured():
        raise CliError(
            "--server: the served graphs keep episodes on a Qdrant server; set MEMALIGN_QDRANT_URL (and "
            "MEMALIGN_QDRANT_API_KEY) to the one the LangGraph server uses, e.g. http://127.0.0.1:6333"
        )
    client = get_sync_client(url=args.server)  # its API key from LANGGRAPH_API_KEY or LANGSMITH_API_KEY
    try:
        with open_episodic_store() as store:
            yield ServedMemory(client, spec, namespace=args.namespace), store, spec
    except (APIConnectionError, httpx.TransportError) as error:
        raise CliError(f"--server: cannot reach the LangGraph server at {args.server}: {error}") from error
    except APIStatusError as error:
        raise CliError(f"--server: the LangGraph server at {args.server} refused: {error}") from error
    finally:
        client.close()


RUNS = {
    "show": show,
    "history": history,
    "rollback": rollback,
    "forget": forget,
    "verify": verify,
    "export": export_memory,
    "import": import_memory,
}


def list_episodes(judge: MemAlignJudge, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` episodes as stored (Qdrant payload metadata)."""
    return judge.episodic_store.episodes(judge.spec.name, judge.namespace, limit)


def _short(value: Any, limit: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
