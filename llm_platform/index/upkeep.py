"""Index upkeep of the chunk table: missing or stale indexes, compaction, and cleanup of old versions.

Upkeep looks at the table, not at what the last write did: a process killed after
its insert but before the full-text index existed leaves a table with rows and no
index, and the next sync (even one with nothing new) builds it. Each index's name
carries a digest of its settings, so changing the tokenizer or the vector index
type in the config rebuilds that index instead of keeping the old one.

Compaction (which also folds new rows into the indexes) and cleanup are separate
calls, because LanceDB refuses a cleanup whose window reaches a tagged version:
left together, a served tag older than the window stopped compaction forever.
Cleanup's window is widened to just past the oldest tagged version, so tagged
(served and roll-back-able) versions stay and everything older goes.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from llm_platform.config import IndexConfig

# A window no version can be older than: optimize() then compacts and re-indexes only.
_COMPACT_ONLY = timedelta(days=365 * 100)
_TAG_MARGIN = timedelta(seconds=1)
_T = TypeVar("_T")


def is_commit_conflict(error: BaseException) -> bool:
    """Whether `error` is LanceDB losing a race with another writer's commit (safe to retry)."""
    message = str(error).lower()
    return "conflict" in message or "incompatible transaction" in message


def retry_on_conflict(commit: Callable[[], _T], *, attempts: int, refresh: Callable[[], object]) -> _T:
    """Run `commit`, retrying with jittered backoff while it meets another writer's commit.

    `refresh` (the table's checkout_latest) runs before each retry, and every caller must
    give it: a commit that LanceDB found incompatible with a concurrent one (an Overwrite)
    fails again on the same stale handle however often it is retried.
    """
    for attempt in range(1, attempts + 1):
        try:
            return commit()
        except (RuntimeError, OSError, ValueError) as exc:
            if attempt == attempts or not is_commit_conflict(exc):
                raise
            time.sleep(random.uniform(0.05, 0.2) * 2 ** min(attempt, 5))
            refresh()
    raise AssertionError("unreachable: the last attempt returns or raises")


def _digest(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]


def fts_settings(config: IndexConfig) -> dict:
    """Tokenizer settings of the full-text index (they name it, so a change rebuilds it)."""
    return {"language": config.fts_language, "stem": config.fts_stem, "remove_stop_words": config.fts_remove_stop_words}


def fts_index_name(config: IndexConfig) -> str:
    return f"text_fts_{_digest(fts_settings(config))}"


def ann_settings(config: IndexConfig, rows: int, dimension: int) -> dict:
    """Vector index type and build parameters for a table of `rows` vectors."""
    if config.ann_index == "ivf_hnsw_sq":
        partitions = config.ann_partitions or max(1, rows // 4096)
    else:
        partitions = config.ann_partitions or max(1, int(rows**0.5))
    settings = {"type": config.ann_index, "partitions": partitions}
    if config.ann_index == "ivf_pq":
        settings["sub_vectors"] = config.ann_sub_vectors or max(1, dimension // 8)
    return settings


def ann_index_name(config: IndexConfig) -> str:
    # Partitions follow the row count, so only the chosen parameters name the index.
    chosen = {"type": config.ann_index, "partitions": config.ann_partitions, "sub_vectors": config.ann_sub_vectors}
    return f"vector_{config.ann_index}_{_digest(chosen)}"


def _ann_config(settings: dict):
    from lancedb.index import IvfFlat, IvfHnswSq, IvfPq, IvfSq

    kind, partitions = settings["type"], settings["partitions"]
    if kind == "ivf_pq":
        return IvfPq(distance_type="cosine", num_partitions=partitions, num_sub_vectors=settings["sub_vectors"])
    if kind == "ivf_hnsw_sq":
        return IvfHnswSq(distance_type="cosine", num_partitions=partitions)
    if kind == "ivf_sq":
        return IvfSq(distance_type="cosine", num_partitions=partitions)
    return IvfFlat(distance_type="cosine", num_partitions=partitions)


@dataclass(frozen=True)
class IndexHealth:
    """Which wanted indexes are missing, and how many rows each existing one does not cover."""

    missing: list[str]
    unindexed: dict[str, int]
    obsolete: list[str]

    @property
    def needs_upkeep(self) -> bool:
        return bool(self.missing or self.obsolete or any(self.unindexed.values()))


def wanted_indexes(table, config: IndexConfig) -> list[str]:
    rows = table.count_rows()
    wanted = [fts_index_name(config)] if rows else []
    if rows >= config.ann_min_rows:
        wanted.append(ann_index_name(config))
    return wanted


def index_health(table, config: IndexConfig) -> IndexHealth:
    """Compare the table's indexes with the ones the config asks for."""
    present = {i.name: i for i in table.list_indices()}
    wanted = wanted_indexes(table, config)
    obsolete = [
        name for name, index in present.items() if name not in wanted and index.columns in (["text"], ["vector"])
    ]
    unindexed = {}
    for name in wanted:
        if name in present:
            stats = table.index_stats(name)
            unindexed[name] = stats.num_unindexed_rows if stats else 0
    return IndexHealth(missing=[n for n in wanted if n not in present], unindexed=unindexed, obsolete=obsolete)


@dataclass
class UpkeepReport:
    """What one upkeep pass did, and what failed (a failure never stops the later steps)."""

    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    compacted: bool = False
    cleaned_up: bool = False
    cleanup_window_hours: float | None = None
    versions_removed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def create_missing_indexes(table, config: IndexConfig, health: IndexHealth, report: UpkeepReport) -> None:
    from lancedb.index import FTS

    for name in health.obsolete:
        table.drop_index(name)
        report.dropped.append(name)
    for name in health.missing:
        if name == fts_index_name(config):
            table.create_index("text", config=FTS(**fts_settings(config)), name=name)
        else:
            dimension = table.schema.field("vector").type.list_size
            table.create_index(
                "vector", config=_ann_config(ann_settings(config, table.count_rows(), dimension)), name=name
            )
        report.created.append(name)


def compact(table) -> None:
    """Merge small files and fold unindexed rows into the indexes; removes no version."""
    table.optimize(cleanup_older_than=_COMPACT_ONLY)


def cleanup_window(table, configured: timedelta, now: datetime | None = None) -> timedelta:
    """`configured`, widened past the oldest tagged version so that cleanup keeps it."""
    now = now or datetime.now(UTC)
    tagged = {tag["version"] for tag in table.tags.list().values()}
    stamps = [_aware(v["timestamp"]) for v in table.list_versions() if v["version"] in tagged]
    if not stamps:
        return configured
    return max(configured, now - min(stamps) + _TAG_MARGIN)


def _aware(stamp: datetime) -> datetime:
    # LanceDB returns naive local timestamps.
    return stamp if stamp.tzinfo else stamp.astimezone().astimezone(UTC)


def cleanup(table, configured: timedelta) -> tuple[timedelta, int]:
    """Remove versions older than the window except tagged ones; returns (window, versions removed)."""
    window = cleanup_window(table, configured)
    before = len(table.list_versions())
    table.optimize(cleanup_older_than=window)
    return window, max(0, before - len(table.list_versions()))


def maintain(table, config: IndexConfig, *, cleanup_after: timedelta | None = None) -> UpkeepReport:
    """Bring indexes up to date, compact, then clean up; each step's failure is reported, not raised."""
    report = UpkeepReport()
    attempts = config.write_attempts
    try:
        health = index_health(table, config)
        retry_on_conflict(
            lambda: create_missing_indexes(table, config, health, report),
            attempts=attempts,
            refresh=table.checkout_latest,
        )
    except Exception as exc:  # noqa: BLE001 - reported in the check results, and later steps still run
        report.errors.append(f"index build: {exc}")
    try:
        retry_on_conflict(lambda: compact(table), attempts=attempts, refresh=table.checkout_latest)
        report.compacted = True
    except Exception as exc:  # noqa: BLE001
        report.errors.append(f"compaction: {exc}")
    try:
        window, removed = retry_on_conflict(
            lambda: cleanup(table, cleanup_after or timedelta(hours=config.cleanup_after_hours)),
            attempts=attempts,
            refresh=table.checkout_latest,
        )
        report.cleaned_up, report.cleanup_window_hours, report.versions_removed = (
            True,
            window.total_seconds() / 3600,
            removed,
        )
    except Exception as exc:  # noqa: BLE001
        report.errors.append(f"cleanup: {exc}")
    return report
