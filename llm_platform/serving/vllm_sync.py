"""`python -m llm_platform.serving.vllm_sync --vllm-url URL --dest DIR`: a promotion reaches a running vLLM with no
restart.

A sidecar in the vLLM pod. Every poll it reads the MLflow `production` alias
and the adapter vLLM serves under the stable name (`production`). When the
alias moves to version N it fetches that adapter into DIR/adapters/vN, loads it
under `<registered model>-vN` (the old adapter keeps serving the stable name
meanwhile), re-points the stable name at it (unload, load: vLLM cannot rename
an adapter or load a name twice), unloads the versioned name and deletes the
old folder. A failed step leaves a served adapter in place, is logged, counted
in DIR/sync-status.json and tried again at the next poll. The same file's
heartbeat is the sidecar's liveness signal (`--probe`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llm_platform.serving.vllm_client import VllmClient

SERVED_NAME = "production"
STATUS_FILE = "sync-status.json"
VERSION_FILE = "version.json"  # written by fetch_adapter next to each adapter folder
ADAPTERS_DIR = "adapters"
_log = logging.getLogger("llm_platform.serving.vllm_sync")


class SwitchRefused(RuntimeError):
    """A version vLLM cannot serve without a rollout (another base model); not retried until the alias moves."""


@dataclass(frozen=True)
class SyncSettings:
    """The sidecar's settings, checked once at start."""

    vllm_url: str
    dest: Path
    registered_model: str
    served_name: str = SERVED_NAME
    poll_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not self.vllm_url.startswith(("http://", "https://")):
            raise ValueError(f"--vllm-url must be an http(s) URL such as http://127.0.0.1:8000, got {self.vllm_url!r}")
        if self.poll_seconds <= 0:
            raise ValueError(f"--poll-seconds must be positive, got {self.poll_seconds}")
        if not self.served_name or self.served_name.startswith(f"{self.registered_model}-v"):
            raise ValueError(
                f"--served-name {self.served_name!r} must be non-empty and not look like "
                f"a versioned name ({self.registered_model}-vN)"
            )


@dataclass
class SyncStatus:
    """What DIR/sync-status.json says: the version served, the last error, counts, the loop's heartbeat."""

    served_name: str
    version: str | None = None
    adapter_dir: str | None = None
    last_error: str | None = None
    switches: int = 0
    failed_polls: int = 0
    heartbeat_at: float = field(default_factory=time.time)

    def write(self, path: Path) -> None:
        staging = path.with_suffix(".tmp")
        staging.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        staging.replace(path)  # atomic: a probe never reads half a file


def versioned_name(registered_model: str, version: str) -> str:
    return f"{registered_model}-v{version}"


def adapter_version(adapter_dir: str) -> str | None:
    """The registered version of an adapter folder fetch_adapter wrote (its sibling version.json), None if unknown."""
    info = Path(adapter_dir).parent / VERSION_FILE
    return str(json.loads(info.read_text(encoding="utf-8"))["version"]) if info.is_file() else None


class AdapterSync:
    """Keeps vLLM's stable adapter name on the version the registry alias points at."""

    def __init__(self, settings: SyncSettings, registry_client, vllm: VllmClient) -> None:
        self.settings = settings
        self.registry_client = registry_client
        self.vllm = vllm
        self.status = SyncStatus(settings.served_name)
        self._refused: dict[str, str] = {}

    @property
    def status_path(self) -> Path:
        return self.settings.dest / STATUS_FILE

    def poll_once(self) -> None:
        """One reconcile; errors are logged, counted and left for the next poll."""
        self.status.heartbeat_at = time.time()
        try:
            self._reconcile()
        except Exception as error:  # noqa: BLE001 (a registry or vLLM outage must not kill the sidecar: the next poll retries)
            self.status.failed_polls += 1
            self.status.last_error = f"{type(error).__name__}: {error}"
            _log.error(
                "adapter sync failed (vLLM served version %s as %r before it); retrying in %ss: %s",
                self.status.version,
                self.settings.served_name,
                self.settings.poll_seconds,
                self.status.last_error,
            )
        finally:
            self.status.write(self.status_path)

    def _reconcile(self) -> None:
        from llm_platform.serving.model_source import registered_version

        served = self.vllm.served_adapters()
        current_dir = served.get(self.settings.served_name)
        self.status.adapter_dir = current_dir
        self.status.version = adapter_version(current_dir) if current_dir else None
        wanted = registered_version(self.registry_client, self.settings.registered_model)
        if wanted is None or wanted == self.status.version:
            return
        if wanted in self._refused:
            self.status.last_error = self._refused[wanted]
            return
        try:
            folder = self._fetch(wanted)
        except SwitchRefused as refused:
            self._refused[wanted] = str(refused)
            raise
        self._switch(folder, served)

    def _fetch(self, wanted: str) -> Path:
        """DIR/adapters/vN with the adapter the alias points at (kept from an earlier poll when complete)."""
        from llm_platform.serving.fetch_adapter import fetch_production_adapter

        adapters = self.settings.dest / ADAPTERS_DIR
        folder = adapters / f"v{wanted}"
        if not (folder / VERSION_FILE).is_file():
            staging = adapters / ".fetching"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            info = fetch_production_adapter(self.registry_client, self.settings.registered_model, staging)
            folder = adapters / f"v{info['version']}"  # the alias may have moved again since the poll
            shutil.rmtree(folder, ignore_errors=True)
            staging.rename(folder)
        self._check_same_base(folder)
        return folder

    def _check_same_base(self, folder: Path) -> None:
        started = self.settings.dest / VERSION_FILE  # the init container's fetch: the base vLLM was started on
        if not started.is_file():
            raise SwitchRefused(
                f"{started} is missing: the init container (fetch_adapter --dest "
                f"{self.settings.dest}) records the base model vLLM serves there"
            )
        base = json.loads(started.read_text(encoding="utf-8")).get("base_model", "")
        info = json.loads((folder / VERSION_FILE).read_text(encoding="utf-8"))
        if info.get("base_model", "") != base:
            raise SwitchRefused(
                f"{self.settings.registered_model} version {info['version']} was trained on base model "
                f"{info.get('base_model')!r} but vLLM serves {base!r}; a LoRA "
                "adapter cannot switch base models at run time: "
                "kubectl rollout restart deployment/vllm"
            )

    def _switch(self, folder: Path, served: dict[str, str]) -> None:
        adapter = str(folder / "adapter")
        version = adapter_version(adapter) or folder.name.removeprefix("v")
        candidate = versioned_name(self.settings.registered_model, version)
        stable = self.settings.served_name
        self._load_listed(candidate, adapter)  # the old adapter still serves `stable` while the new one loads
        old_dir = served.get(stable)
        if old_dir is not None:
            self._unload(stable)  # from here until the load below, `stable` is missing (vLLM has no rename)
        try:
            self._load_listed(stable, adapter)
        except Exception:
            if old_dir is not None:
                self._restore(stable, old_dir)
            raise
        for name in self.vllm.served_adapters():
            if name.startswith(f"{self.settings.registered_model}-v"):
                self._unload(name)
        self._prune(keep=folder)
        self.status.switches += 1
        self.status.version, self.status.adapter_dir, self.status.last_error = version, adapter, None
        _log.info("vLLM serves %s version %s as %r", self.settings.registered_model, version, stable)

    def _load_listed(self, name: str, path: str) -> None:
        """Load `path` as `name` unless it is already, and check that vLLM lists it afterwards."""
        if self.vllm.served_adapters().get(name) == path:
            return
        self.vllm.load_adapter(name, path)
        listed = self.vllm.served_adapters()
        if listed.get(name) != path:
            raise RuntimeError(
                f"vLLM accepted loading {path} as {name!r} but /v1/models does not list it (it lists {sorted(listed)})"
            )

    def _restore(self, name: str, path: str) -> None:
        try:
            self._load_listed(name, path)
        except Exception as error:  # noqa: BLE001 (the switch error is the one raised; this one is logged beside it)
            _log.error(
                "could not restore %s as %r; the versioned name still serves the new adapter: %s", path, name, error
            )

    def _unload(self, name: str) -> None:
        """Unload `name`, refusing when it is the only adapter vLLM serves
        (clients would get the bare base model or 404).
        """
        if not set(self.vllm.served_adapters()) - {name}:
            raise RuntimeError(f"refusing to unload {name!r}: it is the only adapter vLLM serves")
        self.vllm.unload_adapter(name)

    def _prune(self, keep: Path) -> None:
        """Delete every other versioned folder; DIR/adapter (the init
        container's, vLLM's --lora-modules at start) stays.
        """
        for folder in (self.settings.dest / ADAPTERS_DIR).iterdir():
            if folder != keep:
                shutil.rmtree(folder, ignore_errors=True)


def heartbeat_age(dest: Path, now: float | None = None) -> float | None:
    """Seconds since the sync loop last ran, None when it never wrote a status."""
    path = dest / STATUS_FILE
    if not path.is_file():
        return None
    return (time.time() if now is None else now) - float(json.loads(path.read_text(encoding="utf-8"))["heartbeat_at"])


def probe(dest: Path, max_age_seconds: float) -> int:
    """Exit status for a liveness probe: 0 while the loop keeps polling, whatever the registry or vLLM answer."""
    age = heartbeat_age(dest)
    if age is None or age > max_age_seconds:
        when = "never polled" if age is None else f"not polled for {age:.0f}s"
        print(f"the adapter sync loop has {when} (limit {max_age_seconds:.0f}s, heartbeat in {dest / STATUS_FILE})")
        return 1
    return 0


def run_forever(sync: AdapterSync) -> None:
    while True:
        sync.poll_once()
        time.sleep(sync.settings.poll_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llm_platform.serving.vllm_sync", description=__doc__)
    parser.add_argument("--dest", required=True, help="the folder shared with vLLM (fetch_adapter's --dest)")
    parser.add_argument("--vllm-url", default="http://127.0.0.1:8000")
    parser.add_argument("--poll-seconds", type=float, default=30.0)
    parser.add_argument("--served-name", default=SERVED_NAME, help="the stable model name clients send")
    parser.add_argument("--config", default=None)
    parser.add_argument("--once", action="store_true", help="reconcile once and exit (1 when it failed)")
    parser.add_argument("--probe", action="store_true", help="liveness: exit 1 when the loop stopped polling")
    parser.add_argument(
        "--max-age-seconds", type=float, default=300.0, help="with --probe: the oldest heartbeat still alive"
    )
    args = parser.parse_args(argv)
    dest = Path(args.dest)
    if args.probe:
        return probe(dest, args.max_age_seconds)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from llm_platform.config import load_config, platform_home
    from llm_platform.resources.mlflow import mlflow_resource

    config = load_config(args.config)
    settings = SyncSettings(args.vllm_url, dest, config.mlflow.registered_model, args.served_name, args.poll_seconds)
    vllm = VllmClient(settings.vllm_url, api_key=os.environ.get("VLLM_API_KEY") or None)
    sync = AdapterSync(settings, mlflow_resource(config.mlflow, platform_home(), in_dagster=False).client(), vllm)
    if args.once:
        sync.poll_once()
        return 1 if sync.status.last_error else 0
    run_forever(sync)
    return 0


if __name__ == "__main__":
    sys.exit(main())
