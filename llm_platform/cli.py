"""`llm-platform`: run the demo; search, inspect, publish and roll back the served
index; serve it; run dagster commands on the local instance.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

# Only argparse at the top: `--help` and argument errors must not pay for
# pydantic, pyarrow or LanceDB. Each command imports what it uses.
from llm_platform.index import SEARCH_MODES


def _table(args: argparse.Namespace, *, served: bool):
    from llm_platform.config import load_config, platform_home
    from llm_platform.home_layout import lancedb_uri
    from llm_platform.index.table import configured_table_name, connect, open_published, open_table

    config = load_config(args.config)
    db = connect(lancedb_uri(platform_home()))
    name = configured_table_name(config)
    if served:
        return config, open_published(db, name, config.index.published_tag)
    return config, open_table(db, name)


def _check_search_args(args: argparse.Namespace, sources: list[str]) -> None:
    from llm_platform.index.table import SearchInputError, check_search_input

    if not args.query.strip():
        raise SearchInputError(
            'the query is empty: give the words or question to search for, e.g. llm-platform search "with statement"'
        )
    check_search_input(args.query, None, mode="fts", k=args.k)  # the vector comes later, from the query
    if args.source is not None and args.source not in sources:
        raise SearchInputError(f"--source {args.source!r} is not a configured source; configured: {', '.join(sources)}")


def _search_caller(args: argparse.Namespace):
    """Who the CLI searches as: the --as groups, else everyone (whoever runs it can open the table files anyway)."""
    from llm_platform.index.access import ReaderGroups
    from llm_platform.index.table import SearchInputError
    from llm_platform.readers import ReadersError

    if args.as_groups is None:
        return ReaderGroups.everyone()
    try:
        return ReaderGroups.of(args.as_groups)
    except ReadersError as exc:
        raise SearchInputError(f"--as: {exc}") from None


def run_search(args: argparse.Namespace) -> int:
    """Print the top hits for a question: rank, labelled scores, source, title, heading and a snippet."""
    from llm_platform.config import load_config
    from llm_platform.index.embedding import query_embedder
    from llm_platform.index.hits import hit_line
    from llm_platform.index.onnx_model import export_needed
    from llm_platform.index.table import QueryTuning, SearchInputError, search

    config = load_config(args.config)
    _check_search_args(args, config.source_names)
    caller = _search_caller(args)
    config, table = _table(args, served=not args.latest)
    vector = None
    if args.mode != "fts":
        if export_needed(
            config.embedding.model,
            cache_dir=config.embedding.onnx_cache_dir,
            allow_download=config.embedding.allow_download,
        ):
            print(
                f"exporting {config.embedding.model} to ONNX for queries (once per machine and model) ...",
                file=sys.stderr,
                flush=True,
            )
        # The table's vector space, without torch: the exported graph of the same model.
        vector = query_embedder(config.embedding).encode([args.query])[0]
    try:
        hits = search(
            table,
            args.query,
            vector,
            mode=args.mode,
            k=args.k,
            source=args.source,
            tuning=QueryTuning.from_config(config.index),
            readers=caller,
        )
    except SearchInputError:
        raise
    except (RuntimeError, OSError, ValueError) as exc:  # LanceDB's errors: shown as one line naming the table
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise SearchInputError(
            f"{args.mode} search of {table.name} version {table.version} failed: "
            f"{first}; see `llm-platform index status`"
        ) from None
    print(
        f"{table.name} version {table.version} "
        f"({'latest' if args.latest else config.index.published_tag}), {args.mode} search, top "
        f"{args.k}, as {_as_label(caller)}:"
    )
    for rank, hit in enumerate(hits, 1):
        print(hit_line(rank, hit))
    if not hits:
        print("  (no results)")
    return 0


def _as_label(caller) -> str:
    if caller.unrestricted:
        return "operator (every reader group; --as GROUP shows what a group sees)"
    return caller.describe()


def run_index_status(args: argparse.Namespace) -> int:
    """Print the table's latest version, the served tag, and every published version with its scores."""
    from llm_platform.config import platform_home
    from llm_platform.datasets import DatasetStore
    from llm_platform.index.datasets import RETRIEVAL_EVAL_DATA
    from llm_platform.index.publishing import version_statuses
    from llm_platform.index.table import published_version

    config, table = _table(args, served=False)
    tag = config.index.published_tag
    print(
        f"table {table.name}: latest version {table.version}, {table.count_rows()} "
        f"rows; {tag!r} -> {published_version(table, tag)}"
    )
    store = DatasetStore(platform_home())
    statuses = version_statuses(table, store, tag)
    if not statuses:
        print("  no version published yet: materialize published_index")
    evaluated = store.read(RETRIEVAL_EVAL_DATA, None)
    last = evaluated.to_pylist()[-1] if evaluated is not None and evaluated.num_rows else None
    if last and last["table"] == table.name and last["version"] not in {row.version for row in statuses}:
        print(
            f"  version {last['version']:>4}  evaluated, not published  "
            f"hit_rate@{last['k']} {last['hit_rate']:.3f}  mrr {last['mrr']:.3f}"
        )
    for row in statuses:
        marks = [
            tag if row.served else "",
            "rollback target" if row.rollback_target and not row.served else "",
            "" if row.exists else "cleaned up",
        ]
        scores = f"hit_rate@{row.k} {row.hit_rate:.3f}  mrr {row.mrr:.3f}" if row.hit_rate is not None else "no scores"
        print(f"  version {row.version:>4}  published {row.at}  {scores}  {' '.join(m for m in marks if m)}".rstrip())
    return 0


def run_index_rollback(args: argparse.Namespace) -> int:
    """Move the served tag back to a version published before (any version only with --force)."""
    from llm_platform.config import platform_home
    from llm_platform.datasets import DatasetStore
    from llm_platform.home_layout import lancedb_uri
    from llm_platform.index.publishing import rollback
    from llm_platform.index.table import connect

    config, table = _table(args, served=False)
    db = connect(lancedb_uri(platform_home()))
    previous = rollback(
        db,
        DatasetStore(platform_home()),
        table.name,
        tag=config.index.published_tag,
        version=args.version,
        force=args.force,
    )
    print(f"{config.index.published_tag!r} of {table.name}: {previous} -> {args.version}")
    return 0


def run_index_publish(args: argparse.Namespace) -> int:
    """Score the latest table version and move the served tag to it if the retrieval gates pass (publish_index_job)."""
    from llm_platform.automation.jobs import PUBLISH_INDEX_JOB
    from llm_platform.automation.local_runs import failure_messages, local_instance, materialization, run_job
    from llm_platform.config import load_config, platform_home
    from llm_platform.definitions import build_definitions

    config = load_config(args.config)
    home = platform_home()
    # Only critical console lines: each failure is printed below as one line; its trace is in the run, in the UI.
    result = run_job(
        build_definitions(config, home=home, executor="in_process"),
        PUBLISH_INDEX_JOB,
        local_instance(home),
        log_level="CRITICAL",
    )
    evaluated, published = materialization(result, "retrieval_eval"), materialization(result, "published_index")
    k = config.index.retrieval_k
    if evaluated:
        print(
            f"retrieval_eval: version {evaluated.get('evaluated_version')} of {evaluated.get('table')}: "
            f"hit rate@{k} {evaluated.get(f'hit_rate_at_{k}', float('nan')):.3f}, "
            f"mrr@{k} {evaluated.get(f'mrr_at_{k}', float('nan')):.3f} (served: "
            f"{evaluated.get('published_hit_rate')}, {evaluated.get('compared_with')})"
        )
    for message in failure_messages(result):
        print(f"  {message}")
    if not published:
        print(
            f"not published: {config.index.published_tag!r} still points where it did; see "
            "the reasons above and `llm-platform index status`",
            file=sys.stderr,
        )
        return 1
    print(
        f"published: {published['tag']!r} of {published['table']}: {published['previous_version']} "
        f"-> {published['published_version']} ({published['rollback']})"
    )
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """Materialize the whole graph on the embedded defaults and print a summary."""
    from llm_platform.demo.run import run_demo as demo

    return demo(config_path=args.config)


def run_dagster(args: argparse.Namespace) -> int:
    """Run a `dagster` CLI command on the local instance (DAGSTER_HOME set and holding
    llm_platform/dagster.yaml), through `dg` where dg supersedes it.
    """
    import os
    import signal
    from pathlib import Path

    from llm_platform.config import CONFIG_ENV, load_config
    from llm_platform.dagster_commands import command_line
    from llm_platform.library_warnings import python_warnings_for_dagster, quiet_progress_bars
    from llm_platform.local_instance import (
        DAGSTER_HOME_ENV,
        config_drift_warning,
        default_dagster_home,
        latest_config_hash,
        prepare_dagster_home,
    )

    dagster_home = prepare_dagster_home(default_dagster_home())
    os.environ[DAGSTER_HOME_ENV] = str(dagster_home)
    if args.config:
        os.environ[CONFIG_ENV] = str(Path(args.config).resolve())
    warning = config_drift_warning(latest_config_hash(dagster_home), load_config(args.config))
    if warning:
        print(warning, file=sys.stderr)
    os.environ["PYTHONWARNINGS"] = python_warnings_for_dagster(os.environ.get("PYTHONWARNINGS"))
    quiet_progress_bars()
    # A shell starts a background job (`make ui &`) with SIGINT ignored, and `dagster dev` makes SIGTERM do
    # whatever SIGINT does: it ignored SIGTERM too. With SIGINT at its default, SIGTERM stops it gracefully.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    command = command_line(args.dagster_args, Path(sys.executable).parent)
    if Path(command[0]).name == "dg":
        os.environ["VIRTUAL_ENV"] = sys.prefix  # the environment dg runs in; unset, dg warns that none is active
    os.execv(command[0], command)
    return 0  # not reached: execv replaces this process


def _proposals(config, home: str):
    """Every correction proposal in the feedback, and the approved ids (with problems in the approvals file)."""
    from llm_platform.model.feedback import approvals_location, fold_feedback, read_approvals
    from llm_platform.model.sft_build import feedback_files

    location = approvals_location(config.sft.approved_corrections, home)
    approved, problems = read_approvals(location)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    return fold_feedback(feedback_files(config.sft.feedback_location, home)).proposals, approved, location


def run_feedback_review(args: argparse.Namespace) -> int:
    """List the correction proposals no reviewer has approved yet."""
    from llm_platform.config import load_config, platform_home

    proposals, approved, location = _proposals(load_config(args.config), platform_home())
    pending = sorted((p for p in proposals.values() if p.id not in approved), key=lambda p: p.proposed_at)
    print(f"{len(pending)} correction proposal(s) pending; {len(approved)} approved in {location}")
    for p in pending:
        print(
            f"{p.id}  answer {p.answer_id}  by {p.caller}  rated {p.rating}\n  question:   "
            f"{p.question[:200]}\n  correction: {p.corrected_answer[:400]}"
        )
    return 0


def run_feedback_approve(args: argparse.Namespace) -> int:
    """Approve correction proposals by id, so the next sft_dataset trains on them."""
    import getpass

    from llm_platform.config import load_config, platform_home
    from llm_platform.model.feedback import append_approvals

    proposals, approved, location = _proposals(load_config(args.config), platform_home())
    unknown = [pid for pid in args.proposal_ids if pid not in proposals]
    if unknown:
        raise LookupError(
            f"no correction proposal {', '.join(unknown)} in the feedback; "
            "`llm-platform feedback review` lists the pending ones"
        )
    new = [pid for pid in dict.fromkeys(args.proposal_ids) if pid not in approved]
    append_approvals(location, new, reviewer=args.reviewer or getpass.getuser())
    print(f"approved {len(new)} proposal(s) in {location}; the next sft_dataset trains on them")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """Answer questions over HTTP with the published index and the production adapter, following both pointers."""
    from llm_platform.config import load_config, platform_home
    from llm_platform.serving.server import serve
    from llm_platform.tiny_model_notice import tiny_model_notice

    config = load_config(
        args.config, check_folders=False
    )  # the service reads no source folder; a serving pod need not mount them
    host, port = args.host or config.serving.host, args.port or config.serving.port
    notice = tiny_model_notice(config)
    if notice:
        print(notice, file=sys.stderr)
    try:
        serve(config, platform_home(), host=host, port=port, insecure_no_auth=args.insecure_no_auth)
    except ValueError as exc:  # a setting the service cannot start with (cache, no key on an open address)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-platform", description=__doc__)
    parser.add_argument(
        "--config", default=None, help="platform YAML (default: $LLM_PLATFORM_CONFIG or the bundled demo)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    find = commands.add_parser(
        "search", help="search the served index (--latest: the newest version, published or not)"
    )
    find.add_argument("query")
    find.add_argument("--mode", choices=SEARCH_MODES, default="hybrid")
    find.add_argument("-k", type=int, default=5)
    find.add_argument("--source", default=None, help="only this source's chunks")
    find.add_argument("--latest", action="store_true", help="search the latest table version, not the published tag")
    find.add_argument(
        "--as",
        dest="as_groups",
        action="append",
        default=None,
        metavar="GROUP",
        help="search as a member of GROUP (repeatable): only its rows and public "
        "rows; without it, every row (an operator's view)",
    )
    find.set_defaults(func=run_search)
    index = commands.add_parser("index", help="inspect, publish or roll back the served index").add_subparsers(
        dest="index_command", required=True
    )
    index.add_parser("status", help="latest version and where the served tag points").set_defaults(
        func=run_index_status
    )
    index.add_parser(
        "publish",
        help="score the latest version and serve it if the retrieval gates pass "
        "(publish_index_job, recorded in the local Dagster instance)",
        description=run_index_publish.__doc__,
    ).set_defaults(func=run_index_publish)
    rollback = index.add_parser("rollback", help="point the served tag at an earlier version")
    rollback.add_argument("--version", type=int, required=True)
    rollback.add_argument(
        "--force", action="store_true", help="serve a version that was never published (it must still answer queries)"
    )
    rollback.set_defaults(func=run_index_rollback)
    commands.add_parser("demo", help="run the whole graph on the bundled sample corpus").set_defaults(func=run_demo)
    dagster = commands.add_parser(
        "dagster",
        help="run a dagster CLI command on the local instance (sets "
        "DAGSTER_HOME; `dagster dev` is the UI, as `make ui`)",
        description="`llm-platform dagster dev`, `llm-platform dagster asset materialize "
        "-m llm_platform.definitions --select ...`. "
        "`dev`, `asset materialize` and `job execute` run as `dg dev` and `dg launch` "
        "(what Dagster now recommends) when dg is installed.",
    )
    dagster.add_argument("dagster_args", nargs=argparse.REMAINDER, help="the dagster command and its arguments")
    dagster.set_defaults(func=run_dagster)
    served = commands.add_parser(
        "serve", help="answer questions over HTTP (OpenAI-compatible) with the production adapter and index"
    )
    served.add_argument("--host", default=None, help="bind address (default: serving.host, 127.0.0.1)")
    served.add_argument("--port", type=int, default=None, help="port (default: serving.port, 8000)")
    served.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve a non-loopback address without an API key (a trusted network only)",
    )
    served.set_defaults(func=run_serve)
    feedback = commands.add_parser("feedback", help="review the corrections callers proposed").add_subparsers(
        dest="feedback_command", required=True
    )
    feedback.add_parser("review", help="list correction proposals awaiting approval").set_defaults(
        func=run_feedback_review
    )
    approve = feedback.add_parser("approve", help="approve proposals by id: the next sft_dataset trains on them")
    approve.add_argument("proposal_ids", nargs="+", metavar="PROPOSAL_ID")
    approve.add_argument("--reviewer", default=None, help="who approved (default: the login name)")
    approve.set_defaults(func=run_feedback_approve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `llm-platform` command."""
    args = _parser().parse_args(argv)
    from llm_platform.config import ConfigError
    from llm_platform.index.publishing import PublishRefused
    from llm_platform.index.table import SearchInputError

    try:
        return args.func(args)
    except (ConfigError, LookupError, SearchInputError, PublishRefused) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `llm-platform search ... | head` closed the pipe: no traceback, and none at exit
        # either (Python's recipe: point stdout at devnull before the final flush).
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
