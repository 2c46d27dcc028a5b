"""Folders of files (model weights, adapters, checkpoints) on a local disk or an object store.

torch, transformers and peft read and write local folders only. Where the storage
root is an object-store URL, a folder is built locally and then published, and a
published folder is copied into a local cache before it is loaded. Object stores
have no atomic rename, so a publish uploads every file and then writes a marker
(`_PUBLISHED`, listing the files); a folder without its marker is an interrupted
upload and is never staged in. Local paths pass through untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import fsspec

MARKER = "_PUBLISHED"
CACHE_ENV = "LLM_PLATFORM_CACHE"
ENDPOINT_ENV = "AWS_ENDPOINT_URL"


def read_listings_fresh() -> None:
    """Make every S3 filesystem list the store on each call instead of caching listings for the process.

    s3fs keeps a process-wide listing cache: a long-lived process (the daemon's
    sensors, an in-process run) would go on seeing a `CURRENT` pointer another
    process has since replaced, and fail to open it ("no longer exists").
    """
    fsspec.config.conf.setdefault("s3", {}).setdefault("use_listings_cache", False)


# On import: the resources import this module, so every Dagster process is covered
# before its first S3 filesystem is made (fsspec applies the setting at creation).
read_listings_fresh()


def is_remote(location: str) -> bool:
    """True for an fsspec URL other than a plain local file URL."""
    return "://" in location and not location.startswith("file://")


def cache_root() -> Path:
    """Where published folders are staged in: `LLM_PLATFORM_CACHE`, else ~/.cache/llm_platform."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "llm_platform")


def staging_dir(url: str) -> Path:
    """The local folder that stands for `url`: the same path for the same URL, in every process."""
    digest = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
    return cache_root() / "staged" / f"{Path(url.rstrip('/')).name}-{digest}"


def publish(local_dir: str | os.PathLike[str], url: str) -> str:
    """Upload every file of `local_dir` to `url`, then the marker that makes it readable; returns `url`."""
    fs, root = fsspec.core.url_to_fs(url.rstrip("/"))
    local = Path(local_dir)
    files = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    if fs.exists(f"{root}/{MARKER}"):
        fs.rm(f"{root}/{MARKER}")  # a republish: readers must not see a half-replaced folder as complete
    for name in files:
        fs.put_file(str(local / name), f"{root}/{name}")
    with fs.open(f"{root}/{MARKER}", "w") as handle:
        json.dump({"files": files}, handle)
    return url.rstrip("/")


def is_published(url: str) -> bool:
    """True when `url` holds a folder whose publish finished."""
    fs, root = fsspec.core.url_to_fs(url.rstrip("/"))
    return fs.exists(f"{root}/{MARKER}")


def stage_in(url: str, local_dir: str | os.PathLike[str] | None = None) -> Path:
    """Copy the published folder at `url` to `local_dir` (default: its staging dir); returns the local folder."""
    fs, root = fsspec.core.url_to_fs(url.rstrip("/"))
    marker = f"{root}/{MARKER}"
    if not fs.exists(marker):
        raise FileNotFoundError(
            f"{url} is not a complete published folder (no {MARKER} marker): it was never written, or its "
            "upload was interrupted; materialize the asset that writes it again"
        )
    with fs.open(marker, "r") as handle:
        files = json.load(handle)["files"]
    local = Path(local_dir) if local_dir is not None else staging_dir(url)
    for name in files:
        target = local / name
        if target.is_file() and target.stat().st_size == fs.size(f"{root}/{name}"):
            continue  # staged before: published folders are immutable once marked
        target.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(f"{root}/{name}", str(target))
    return local


def local_path(location: str) -> str:
    """A local folder holding `location`: itself when local (or a hub id), else its staged copy."""
    return str(stage_in(location)) if is_remote(location) else location


def remove(url: str) -> None:
    """Delete the folder at `url` (its marker first, so no reader takes it for complete meanwhile)."""
    fs, root = fsspec.core.url_to_fs(url.rstrip("/"))
    if fs.exists(f"{root}/{MARKER}"):
        fs.rm(f"{root}/{MARKER}")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def published_children(url: str) -> list[str]:
    """Names of the subfolders of `url` that are complete published folders."""
    fs, root = fsspec.core.url_to_fs(url.rstrip("/"))
    if not fs.exists(root):
        return []
    found = fs.glob(f"{root}/*/{MARKER}")
    return sorted(Path(path).parent.name for path in found)


def mirror_children(local_root: str | os.PathLike[str], url: str, complete: Callable[[Path], bool]) -> list[str]:
    """Make `url`'s published subfolders equal `local_root`'s complete ones; returns what was uploaded.

    A subfolder is uploaded once (checkpoints are immutable); remote ones that are
    gone locally (pruned) are removed, so the remote copy keeps as few as the local.
    """
    local = Path(local_root)
    wanted = sorted(p.name for p in local.iterdir() if p.is_dir() and complete(p)) if local.is_dir() else []
    remote = set(published_children(url))
    uploaded = [name for name in wanted if name not in remote]
    for name in uploaded:
        publish(local / name, f"{url.rstrip('/')}/{name}")
    for name in sorted(remote - set(wanted)):
        remove(f"{url.rstrip('/')}/{name}")
    return uploaded


def stage_children(url: str, local_root: str | os.PathLike[str]) -> list[str]:
    """Copy every published subfolder of `url` into `local_root`; returns their names."""
    names = published_children(url)
    for name in names:
        stage_in(f"{url.rstrip('/')}/{name}", Path(local_root) / name)
    return names


def lance_storage_options(uri: str) -> dict[str, str]:
    """Options for LanceDB's object store at `uri`: the endpoint of an S3-compatible server from AWS_ENDPOINT_URL.

    botocore (so s3fs and MLflow) reads AWS_ENDPOINT_URL itself; Lance's object
    store needs it passed, and `allow_http` for a plain-HTTP endpoint (MinIO, moto).
    """
    endpoint = os.environ.get(ENDPOINT_ENV)
    if not uri.startswith("s3://") or not endpoint:
        return {}
    options = {"aws_endpoint": endpoint}
    if endpoint.startswith("http://"):
        options["allow_http"] = "true"
    return options


class RemoteFolder:
    """A folder under the storage root that torch code writes locally: `local` stands for `url`.

    For a local `url` both are the same folder and publishing does nothing.
    """

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.remote = is_remote(self.url)
        self.local = str(staging_dir(self.url)) if self.remote else self.url
        self._mirrored: dict[str, set[str]] = {}

    def location(self, local: str) -> str:
        """The storage location of `local` (a path inside this folder): its URL when remote."""
        if not self.remote:
            return local
        relative = Path(local).resolve().relative_to(Path(self.local).resolve()).as_posix()
        return self.url if relative == "." else f"{self.url}/{relative}"

    def publish(self, sub: str = "") -> str:
        """Publish `local/sub` to `url/sub`; returns that storage location."""
        local = str(Path(self.local) / sub) if sub else self.local
        if not self.remote:
            return local
        return publish(local, f"{self.url}/{sub}" if sub else self.url)

    def stage_children(self, sub: str) -> list[str]:
        """Copy the published subfolders of `url/sub` (e.g. checkpoints) into `local/sub`."""
        return stage_children(f"{self.url}/{sub}", Path(self.local) / sub) if self.remote else []

    def mirror_children(self, sub: str, complete: Callable[[Path], bool]) -> list[str]:
        """Publish the complete subfolders of `local/sub` not yet in `url/sub`, remove pruned ones.

        Cheap to call every training step: the store is listed only when the local set changed.
        """
        if not self.remote:
            return []
        root = Path(self.local) / sub
        now = {p.name for p in root.iterdir() if p.is_dir() and complete(p)} if root.is_dir() else set()
        if self._mirrored.get(sub) == now:
            return []
        uploaded = mirror_children(root, f"{self.url}/{sub}", complete)
        self._mirrored[sub] = now
        return uploaded
