"""What `llm-platform dagster ARGS` runs: `dg` for the `dagster` commands Dagster 1.13 supersedes, `dagster` for the
rest.

`dagster dev`, `dagster asset materialize` and `dagster job execute` print a SupersessionWarning
("Use 'dg launch'") on every call. `dg dev` and `dg launch` (dagster-dg-cli) run the same code in
the same process, so users keep typing the commands the docs show and see no warning. Where `dg`
has no equivalent (`--tags` other than the partition, `--op-selection`, a repository name) or is not
installed, the `dagster` command runs as typed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

PARTITION_TAG = "dagster/partition"
# `dagster job execute` options `dg launch --job` has no counterpart for.
_JOB_ONLY_OPTIONS = ("-o", "--op-selection", "-r", "--repository")
# The `dagster dev` options `dg dev` also takes; any other (`-v`, `--dagit-port`, `-m` ...) runs `dagster dev`.
_DEV_OPTIONS = (
    "-p",
    "--port",
    "-h",
    "--host",
    "--log-level",
    "--log-format",
    "--code-server-log-level",
    "--live-data-poll-rate",
)


def dg_arguments(dagster_args: Sequence[str]) -> list[str] | None:
    """The `dg` arguments that do what `dagster <dagster_args>` does, or None where dg has no equivalent."""
    match list(dagster_args):
        case ["dev", *rest]:
            options = [arg.partition("=")[0] for arg in rest if arg.startswith("-")]
            return ["dev", *rest] if all(option in _DEV_OPTIONS for option in options) else None
        case ["asset", "materialize", *rest]:
            return ["launch", *_renamed(rest, {"--select": "--assets"})]
        case ["job", "execute", *rest]:
            return _job_launch(rest)
    return None


def _renamed(args: list[str], names: dict[str, str]) -> list[str]:
    """`args` with each option in `names` renamed, in both the `--name value` and `--name=value` forms."""
    out = []
    for arg in args:
        name, equals, value = arg.partition("=")
        out.append(names[name] + equals + value if name in names else arg)
    return out


def _job_launch(args: list[str]) -> list[str] | None:
    args = _renamed(args, {"-j": "--job", "--job-name": "--job"})
    args = [part for arg in args for part in (arg.split("=", 1) if arg.startswith("--tags=") else [arg])]
    if any(arg.partition("=")[0] in _JOB_ONLY_OPTIONS for arg in args):
        return None
    if "--tags" not in args:
        return ["launch", *args]
    i = args.index("--tags")
    partition = _partition_of(args[i + 1]) if i + 1 < len(args) else None
    rest = args[:i] + args[i + 2 :]
    if partition is None or "--tags" in rest:
        return None
    return ["launch", *rest, "--partition", partition]


def _partition_of(tags_json: str) -> str | None:
    """The partition when the tags name only the partition (`dg launch` takes no other tags), else None."""
    try:
        tags = json.loads(tags_json)
    except ValueError:
        return None
    if isinstance(tags, dict) and set(tags) == {PARTITION_TAG} and isinstance(tags[PARTITION_TAG], str):
        return tags[PARTITION_TAG]
    return None


def in_dg_project(folder: Path) -> bool:
    """Whether `folder` or a folder above it has a pyproject.toml with `[tool.dg]` (dg refuses to run elsewhere)."""
    for candidate in (folder, *folder.parents):
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file():
            return "[tool.dg]" in pyproject.read_text(encoding="utf-8", errors="replace")
    return False


def command_line(dagster_args: Sequence[str], bin_dir: Path, cwd: Path | None = None) -> list[str]:
    """The full command line: `bin_dir/dg ...` where dg supersedes the command, is installed and
    runs in this folder (a project with `[tool.dg]`), else `bin_dir/dagster ...`.
    """
    dg = bin_dir / "dg"
    translated = dg_arguments(dagster_args)
    if translated is not None and dg.exists() and in_dg_project(cwd or Path.cwd()):
        return [str(dg), *translated]
    return [str(bin_dir / "dagster"), *dagster_args]
