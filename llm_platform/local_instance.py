"""The local Dagster instance: one config for `make ui`, the demo and every `dagster` command.

`llm_platform/dagster.yaml` is the only source. Each entry point copies it into
$DAGSTER_HOME (default: `dagster/` under the storage root) before Dagster starts,
so the UI, the demo and CLI runs share one instance with the same run retries,
run monitoring and pools.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from llm_platform.config import CONFIG_ENV, DEFAULT_HOME, PlatformConfig, platform_home

INSTANCE_CONFIG = Path(__file__).parent / "dagster.yaml"
DAGSTER_HOME_ENV = "DAGSTER_HOME"
_HEADER = "# Copied from llm_platform/dagster.yaml by llm_platform; edit that file, this copy is replaced.\n"
_DAGSTER_COMMANDS = {"dagster", "dagster-webserver", "dagster-daemon"}
# dg's commands that run on an instance; `dg check defs` and `dg list defs` only load the code.
_DG_INSTANCE_COMMANDS = {"launch", "dev"}


def default_dagster_home(home: str | None = None) -> Path:
    """$DAGSTER_HOME, else `dagster/` under the storage root `home` (a local folder even when the root is a URL)."""
    if os.environ.get(DAGSTER_HOME_ENV):
        return Path(os.environ[DAGSTER_HOME_ENV]).resolve()
    home = home or platform_home()
    return (Path(DEFAULT_HOME).resolve() if "://" in home else Path(home)) / "dagster"


def prepare_dagster_home(folder: Path) -> Path:
    """Create `folder` with the instance config; a copy we wrote earlier
    is refreshed, one written by a person is kept.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "dagster.yaml"
    wanted = _HEADER + INSTANCE_CONFIG.read_text(encoding="utf-8")
    current = target.read_text(encoding="utf-8") if target.exists() else None
    if current is None or (current.startswith(_HEADER) and current != wanted):
        target.write_text(wanted, encoding="utf-8")
    return folder


def dagster_home_warning(argv0: str | None = None, subcommand: str | None = None) -> str | None:
    """A warning for a `dagster` (or `dg launch`, `dg dev`) command started
    without DAGSTER_HOME (its runs go to a throwaway instance).
    """
    if argv0 is None:
        argv0, subcommand = sys.argv[0], (sys.argv[1] if len(sys.argv) > 1 else None)
    name = Path(argv0).name
    if os.environ.get(DAGSTER_HOME_ENV) or not (
        name in _DAGSTER_COMMANDS or (name == "dg" and subcommand in _DG_INSTANCE_COMMANDS)
    ):
        return None
    return (
        "llm_platform: DAGSTER_HOME is not set, so this command uses a temporary Dagster instance: its runs are "
        "deleted when it exits and the UI never shows them. Run it as `llm-platform dagster <command>` "
        f"(or `make dagster ARGS='<command>'`), which uses {default_dagster_home()}, or export DAGSTER_HOME."
    )


def warn_if_dagster_home_unset() -> None:
    message = dagster_home_warning()
    if message:
        print(message, file=sys.stderr)


def latest_config_hash(dagster_home: Path) -> tuple[str, str] | None:
    """(run id, config sha256) of the newest run on the instance at
    `dagster_home` that carries the platform's config tag.
    """
    import dagster as dg

    from llm_platform.resources.platform import CONFIG_TAG

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for run in instance.get_runs(limit=50):
            if CONFIG_TAG in run.tags:
                return run.run_id, run.tags[CONFIG_TAG]
    return None


def config_drift_warning(latest: tuple[str, str] | None, config: PlatformConfig) -> str | None:
    """A warning when the instance's latest platform run used another config
    than `config`: the UI would show other sources.
    """
    if latest is None or latest[1] == config.config_sha256:
        return None
    run_id, recorded = latest
    return (
        "llm_platform: warning: the latest run on this Dagster instance (run "
        f"{run_id[:8]}) used a config with sha256 {recorded[:12]}, "
        f"but this command loads {config.config_path} (sha256 "
        f"{config.config_sha256[:12]}). The UI and jobs will show this config's "
        "sources and partitions, not those runs'. If you meant the config of those runs, start again with the same "
        f"{CONFIG_ENV} (or --config), e.g. `{CONFIG_ENV}=/path/to/your.yaml make ui`."
    )
