"""Which table versions may be served: publication records, the answer probe, and rollback.

A version is served only after retrieval_eval scored it and published_index checked
that it answers vector, full-text and hybrid queries. Each publication is recorded
(version, scores, time) in a dataset beside the table and tagged `published-v<N>`,
so it survives cleanup; the last `keep` publications stay tagged and are the
versions rollback may return to. Anything else needs `--force`, and even then the
version must answer all three kinds of query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

from llm_platform.datasets import DatasetStore
from llm_platform.index.access import ReaderGroups
from llm_platform.index.datasets import PUBLICATION_SCHEMA, PUBLICATIONS_DATA
from llm_platform.index.table import publish, published_version, search, space_of
from llm_platform.readers import EVERYONE

_TAG_PREFIX = "published-v"


class PublishRefused(ValueError):
    """A version that must not be served: the message says why and what to do."""


def publication_tag(version: int) -> str:
    return f"{_TAG_PREFIX}{version}"


def read_publications(store: DatasetStore, table_name: str) -> list[dict]:
    """Every publish and rollback of `table_name`, oldest first."""
    found = store.read(PUBLICATIONS_DATA, table_name)
    return found.to_pylist() if found is not None else []


def published_scores(store: DatasetStore, table_name: str) -> dict[int, dict]:
    """Version -> its latest publish record (with scores), for versions that passed the checks."""
    return {row["version"]: row for row in read_publications(store, table_name) if row["action"] == "publish"}


def _append(store: DatasetStore, table_name: str, row: dict, run_id: str) -> None:
    rows = [*read_publications(store, table_name), row]
    store.write(PUBLICATIONS_DATA, table_name, [pa.Table.from_pylist(rows, schema=PUBLICATION_SCHEMA)], run_id=run_id)


def open_version(db, name: str, version: int):
    """A separate handle on `name`, checked out at `version`."""
    table = db.open_table(name)
    table.checkout(version)
    return table


def probe_answers(table) -> list[str]:
    """Problems found asking the checked-out version one vector, full-text and hybrid query (empty: none)."""
    sample = table.search().select(["text", "vector", "readers"]).limit(1).to_list()
    if not sample:
        return [f"version {table.version} has no rows"]
    words = [w for w in re.findall(r"[A-Za-z]{4,}", sample[0]["text"])][:3] or ["the"]
    query, vector = " ".join(words), sample[0]["vector"]
    problems = []
    for mode in ("vector", "fts", "hybrid"):
        try:
            hits = search(table, query, vector, mode=mode, k=1, readers=_caller_who_reads(sample[0]["readers"]))
        except Exception as exc:  # noqa: BLE001 - any failure means readers would fail the same way
            problems.append(f"{mode} search fails: {str(exc).splitlines()[0][:200]}")
            continue
        if not hits:
            problems.append(f"{mode} search for {query!r} finds nothing")
    return problems


def _caller_who_reads(readers: list[str] | None) -> ReaderGroups:
    """A caller who may read a row with `readers`, so the probe also runs the readers filter a service runs."""
    groups = [g for g in readers or [] if g != EVERYONE]
    if groups:
        return ReaderGroups.of(groups)
    return ReaderGroups.public_only() if readers else ReaderGroups.everyone()


def verify_servable(db, name: str, version: int) -> None:
    """Raise PublishRefused unless `version` exists and answers all three kinds of query."""
    known = {v["version"] for v in db.open_table(name).list_versions()}
    if version not in known:
        raise PublishRefused(
            f"version {version} of {name} does not exist (or was cleaned up); see `llm-platform index status`"
        )
    problems = probe_answers(open_version(db, name, version))
    if problems:
        raise PublishRefused(f"version {version} of {name} cannot be served: " + "; ".join(problems))


def _keep_recent_tags(table, keep: int) -> None:
    tagged = sorted(
        (tag for tag in table.tags.list() if tag.startswith(_TAG_PREFIX)), key=lambda t: int(t[len(_TAG_PREFIX) :])
    )
    for tag in tagged[:-keep]:
        table.tags.delete(tag)


def _tag(table, tag: str, version: int) -> None:
    if tag not in table.tags.list():
        table.tags.create(tag, version)


@dataclass(frozen=True)
class Score:
    """What retrieval_eval measured for the version being published."""

    hit_rate: float
    mrr: float
    k: int
    questions: int
    compared_with: str | None = None


def publish_version(
    db, store: DatasetStore, name: str, *, tag: str, version: int, score: Score, keep: int, run_id: str
) -> int | None:
    """Verify `version`, point `tag` at it, tag it for rollback and record it; returns the previous version."""
    verify_servable(db, name, version)
    table = db.open_table(name)
    previous = publish(table, tag, version)
    _tag(table, publication_tag(version), version)
    _keep_recent_tags(table, keep)
    _append(
        store,
        name,
        {
            "table": name,
            "version": version,
            "action": "publish",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "hit_rate": score.hit_rate,
            "mrr": score.mrr,
            "k": score.k,
            "questions": score.questions,
            "previous_version": previous,
            "compared_with": score.compared_with,
            "run_id": run_id,
        },
        run_id,
    )
    return previous


def rollback(db, store: DatasetStore, name: str, *, tag: str, version: int, force: bool = False) -> int | None:
    """Point `tag` back at a version published before; others only with `force`. Returns the previous version."""
    scores = published_scores(store, name)
    if version not in scores and not force:
        allowed = ", ".join(str(v) for v in sorted(scores)) or "none yet"
        raise PublishRefused(
            f"version {version} of {name} was never published (it did not pass retrieval_eval and the answer checks); "
            f"versions you can roll back to: {allowed}. Pass --force to serve it anyway."
        )
    verify_servable(db, name, version)
    table = db.open_table(name)
    previous = publish(table, tag, version)
    earlier = scores.get(version, {})
    _append(
        store,
        name,
        {
            "table": name,
            "version": version,
            "action": "rollback" if version in scores else "forced",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "hit_rate": earlier.get("hit_rate"),
            "mrr": earlier.get("mrr"),
            "k": earlier.get("k"),
            "questions": earlier.get("questions"),
            "previous_version": previous,
            "compared_with": None,
            "run_id": "cli",
        },
        "cli",
    )
    return previous


@dataclass(frozen=True)
class VersionStatus:
    """One published version as `llm-platform index status` shows it."""

    version: int
    at: str
    hit_rate: float | None
    mrr: float | None
    k: int | None
    served: bool
    rollback_target: bool
    exists: bool


def version_statuses(table, store: DatasetStore, tag: str) -> list[VersionStatus]:
    """Published versions of `table`, newest first, with scores and whether rollback can return to them."""
    served = published_version(table, tag)
    existing = {v["version"] for v in table.list_versions()}
    tags = table.tags.list()
    return [
        VersionStatus(
            version=row["version"],
            at=row["at"],
            hit_rate=row["hit_rate"],
            mrr=row["mrr"],
            k=row["k"],
            served=row["version"] == served,
            rollback_target=publication_tag(row["version"]) in tags,
            exists=row["version"] in existing,
        )
        for row in sorted(published_scores(store, table.name).values(), key=lambda r: r["version"], reverse=True)
    ]


@dataclass(frozen=True)
class ServedTable:
    """The table readers are served now, and the embedding model and vector space that wrote it."""

    name: str
    version: int
    model: str
    space: str = ""


def served_baseline(db, base: str, tag: str, current: str) -> ServedTable | None:
    """The most recently served table of another embedding model, to compare a new model's table with."""
    candidates = []
    for name in db.list_tables().tables:
        if name == current or not name.startswith(f"{base}__"):
            continue
        table = db.open_table(name)
        version = published_version(table, tag)
        if version is None:
            continue
        stamp = next(v["timestamp"] for v in table.list_versions() if v["version"] == version)
        candidates.append((stamp, name, version))
    if not candidates:
        return None
    _, name, version = max(candidates)
    served = open_version(db, name, version)
    model = served.search().select(["embedding_model"]).limit(1).to_list()
    return ServedTable(
        name=name, version=version, model=model[0]["embedding_model"] if model else "", space=space_of(name)
    )
