"""A small index whose rows belong to different reader groups, embedded with the real model, and services over it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import pyarrow as pa

from llm_platform.config import PlatformConfig
from llm_platform.index.embedding import configured_embedder
from llm_platform.index.table import connect, index_schema, open_table, sync_source
from llm_platform.serving.server import Service
from llm_platform.serving.state import Sources

SOURCE = "topics"
# Written so a salary question ranks HR's rows (and the draft nobody may read) first when nothing is filtered.
ROWS = {
    "hr-bands": (
        ["hr"],
        (
            "Salary bands for 2026: band four pays between 80,000 and 95,000 euros "
            "a year; salary raises are decided in March."
        ),
    ),
    "hr-review": (
        ["hr"],
        "Salary band reviews: managers propose salary band changes to HR in February, with the salary of each person.",
    ),
    "hr-bonus": (
        ["hr"],
        "Bonus and salary policy: the yearly bonus is paid with the March salary, at most two months of salary.",
    ),
    "draft-exec": (
        [],
        "Draft salary bands for executives: the executive salary bands are confidential until the board approves them.",
    ),
    "eng-deploy": (
        ["eng"],
        "Deploy checklist: run the database migrations, then roll the service out one replica at a time.",
    ),
    "eng-runners": (
        ["eng"],
        "Build machines: the CI budget pays for eight runners; ask the platform team for a bigger runner.",
    ),
    "public-office": (["*"], "The office opens at 8 and closes at 18; visitors sign in at reception and wear a badge."),
}
HR = {"hr-bands", "hr-review", "hr-bonus"}
ENG = {"eng-deploy", "eng-runners"}
PUBLIC = {"public-office"}
NOBODY = {"draft-exec"}
HR_WORDS = ("80,000", "band four", "February", "two months")
QUESTION = "What are the salary bands and when are salary raises decided?"
# Every key is an API key of the keys variable; the caller's groups are its value.
KEYS = {"hr-key": ["hr"], "eng-key": ["eng"], "both-key": ["eng", "hr"], "nogroup-key": []}
INDEX_VERSION = 1


def restricted_rows(config: PlatformConfig) -> pa.Table:
    embedder = configured_embedder(config.embedding)
    names = list(ROWS)
    vectors = embedder.encode([ROWS[name][1] for name in names])
    records = [
        {
            "chunk_id": name,
            "doc_id": f"doc-{name}",
            "source": SOURCE,
            "locator": f"{name}.md",
            "title": name,
            "heading": None,
            "position": 0,
            "text": ROWS[name][1],
            "text_hash": name,
            "embedding_model": config.embedding.model,
            "chunker_version": "test",
            "vector": vector.tolist(),
            "readers": ROWS[name][0],
        }
        for name, vector in zip(names, vectors, strict=True)
    ]
    return pa.Table.from_pylist(records, schema=index_schema(embedder.dimension))


def restricted_table(folder: Path, config: PlatformConfig):
    """The rows above in a LanceDB table under `folder`, with its full-text index (so fts and hybrid search work)."""
    rows = restricted_rows(config)
    table = open_table(
        connect(str(folder / "lancedb")), "chunks__restricted", rows.schema.field("vector").type.list_size
    )
    sync_source(table, SOURCE, rows, settings=config.index)
    return table


def over_restricted(sources: Sources, table) -> Sources:
    """`sources` (its adapter), with the restricted table as the published index."""
    return replace(sources, index_version=lambda: INDEX_VERSION, open_index=lambda number: table)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def chunk_ids(hits: Iterable[dict]) -> set[str]:
    return {hit["chunk_id"] for hit in hits}


def loaded(service: Service) -> Service:
    """`service` with its snapshot loaded now (no watcher thread)."""
    service.state.refresh()
    assert service.state.current.table is not None, service.state.last_error
    return service
