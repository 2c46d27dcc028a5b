"""vector_index, retrieval_eval and published_index: the LanceDB table and its served tag.

One factory per asset, taking the document assets it reads (the chunks) and its op tags;
each asset's checks are declared just above it, and its work is done by the helpers below
it and the plain modules `embedding`, `table`, `retrieval` and `publishing`. The embeddings
asset they read is in `embedding_assets`.
"""

import time
from dataclasses import dataclass

import dagster as dg
import pyarrow as pa

from llm_platform.config import IndexConfig, PlatformConfig
from llm_platform.documents.datasets import CHUNKS_DATA
from llm_platform.index.access import ReaderGroups
from llm_platform.index.datasets import EMBEDDINGS_DATA, RETRIEVAL_EVAL_DATA, RETRIEVAL_EVAL_SCHEMA
from llm_platform.index.embedding import query_embedder
from llm_platform.index.embedding_assets import EMBEDDINGS
from llm_platform.index.publishing import PublishRefused, Score, publish_version, served_baseline
from llm_platform.index.retrieval import (
    RetrievalQuestion,
    RetrievalScore,
    questions_from_chunks,
    score_by_reader_group,
    score_table,
)
from llm_platform.index.retrieval_gates import RETRIEVAL_HIT_RATE_MINIMUM, RETRIEVAL_NO_REGRESSION, retrieval_gates
from llm_platform.index.table import (
    QueryTuning,
    SourceSync,
    configured_table_name,
    index_schema,
    open_table,
    published_version,
    sync_source,
)
from llm_platform.metadata import markdown_table
from llm_platform.resources.platform import PlatformConfigResource, StorageResource

VECTOR_INDEX = dg.AssetKey("vector_index")
RETRIEVAL_EVAL = dg.AssetKey(RETRIEVAL_EVAL_DATA.name)
PUBLISHED_INDEX = dg.AssetKey("published_index")
GROUP = "index"

INDEX_ROWS_MATCH_CHUNKS = "row_count_matches_chunks"
INDEX_UPKEEP = "index_upkeep_succeeded"
LANCEDB_POOL = "lancedb_writes"


def _index_rows(storage: StorageResource, source: str, model: str) -> pa.Table:
    chunks = storage.datasets.read(CHUNKS_DATA, source)
    vectors = storage.datasets.read(EMBEDDINGS_DATA, source, columns=["chunk_id", "vector"])
    if chunks is None or vectors is None:
        raise dg.Failure(f"chunks and embeddings for source {source!r} must be materialized before vector_index")
    if chunks.column("chunk_id").to_pylist() != vectors.column("chunk_id").to_pylist():
        raise dg.Failure(f"embeddings for source {source!r} are out of date with its chunks; re-materialize embeddings")
    dimension = vectors.schema.field("vector").type.list_size
    schema = index_schema(dimension)
    columns = {name: chunks.column(name) for name in schema.names if name in chunks.column_names}
    columns["embedding_model"] = pa.array([model] * chunks.num_rows, pa.string())
    columns["vector"] = vectors.column("vector")
    return pa.table(columns).select(schema.names).cast(schema)


def _all_chunks(storage: StorageResource, partitions: list[str]) -> list[dict]:
    rows: list[dict] = []
    for partition in partitions:
        schema = storage.datasets.schema(CHUNKS_DATA, partition)
        if schema is None:
            continue
        # Chunks written before access control have no readers: their questions count for no group.
        table = storage.datasets.read(
            CHUNKS_DATA,
            partition,
            columns=[c for c in ("chunk_id", "doc_id", "title", "heading", "readers") if c in schema.names],
        )
        if table is not None:
            rows.extend(table.to_pylist())
    return rows


def _embedder(config, model: str, space: str | None = None):
    """The question encoder for `model`'s table in `space` (default: the
    configured backend's), never another space's.
    """
    return query_embedder(config.embedding.model_copy(update={"model": model}), space)


def _served_score(db, config, name: str, questions, embedder) -> tuple[str, float] | None:
    """(table@version, hit rate) of what readers are served now: this
    table's tag, else an older model's served table.
    """
    tuning, k = QueryTuning.from_config(config.index), config.index.retrieval_k
    table = open_table(db, name)
    version = published_version(table, config.index.published_tag)
    if version is not None:
        table.checkout(version)
        return f"{name}@{version}", score_table(
            table, questions, embedder.encode, k=k, tuning=tuning, readers=ReaderGroups.everyone()
        ).hit_rate
    baseline = served_baseline(db, config.index.table, config.index.published_tag, name)
    if baseline is None:
        return None
    served = open_table(db, baseline.name)
    served.checkout(baseline.version)
    try:
        encoder = _embedder(config, baseline.model, baseline.space)
    except Exception as exc:  # noqa: BLE001 - the gate cannot pass without a comparison
        raise dg.Failure(
            f"cannot score the served table {baseline.name}@{baseline.version}: its "
            f"embedding model {baseline.model!r} does not load ({exc}); "
            "a new model's table is published only after beating the served one on the same questions"
        ) from None
    return f"{baseline.name}@{baseline.version} ({baseline.model})", score_table(
        served, questions, encoder.encode, k=k, tuning=tuning, readers=ReaderGroups.everyone()
    ).hit_rate


def _upkeep_check(upkeep) -> dg.AssetCheckResult:
    done = (
        f"created {', '.join(upkeep.created) or 'no index'}; compacted: "
        f"{upkeep.compacted}; cleaned up: {upkeep.cleaned_up}"
    )
    return dg.AssetCheckResult(
        check_name=INDEX_UPKEEP,
        passed=upkeep.ok,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(upkeep.errors) if upkeep.errors else done,
        metadata={"errors": dg.MetadataValue.json(upkeep.errors), "versions_removed": upkeep.versions_removed},
    )


def _vector_index_check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            INDEX_ROWS_MATCH_CHUNKS,
            asset=VECTOR_INDEX,
            blocking=True,
            description="the table holds exactly the source's (or shard's) chunks",
        ),
        dg.AssetCheckSpec(
            INDEX_UPKEEP,
            asset=VECTOR_INDEX,
            description="index build, compaction and cleanup of old versions all succeeded",
        ),
    ]


def vector_index_asset(
    sources: dg.PartitionsDefinition, chunks: dg.AssetsDefinition, op_tags: dict
) -> dg.AssetsDefinition:
    """vector_index (per source, or source shard): the partition's rows of the one LanceDB table."""

    @dg.asset(
        partitions_def=sources,
        group_name=GROUP,
        kinds={"lancedb"},
        deps=[EMBEDDINGS, chunks],
        op_tags=op_tags,
        pool=LANCEDB_POOL,
        retry_policy=dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL),
        check_specs=_vector_index_check_specs(),
    )
    def vector_index(
        context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource
    ) -> dg.MaterializeResult:
        """The source's (or shard's) rows in the LanceDB table: new chunks
        upserted, gone ones deleted, indexes refreshed.
        """
        config = platform.config
        key = context.partition_key
        shard = platform.shard(key)
        started = time.perf_counter()
        rows = _index_rows(storage, key, config.embedding.model)
        name = configured_table_name(config)
        table = open_table(storage.lancedb(), name, rows.schema.field("vector").type.list_size)
        sync = sync_source(table, shard, rows, settings=config.index)
        context.log.info(
            f"{key}: {sync.inserted} rows upserted, {sync.deleted} deleted, "
            f"{sync.unchanged} unchanged; table {name} at version {sync.version}"
        )
        return dg.MaterializeResult(
            data_version=dg.DataVersion(f"{name}@{sync.version}"),
            metadata={
                **_sync_metadata(name, sync, table.count_rows(), storage.lancedb_uri),
                "upstream_chunks_version": storage.datasets.current_version(CHUNKS_DATA, key),
                "upstream_embeddings_version": storage.datasets.current_version(EMBEDDINGS_DATA, key),
                "seconds": time.perf_counter() - started,
            },
            check_results=[_rows_match_check(sync.rows_for_source, rows.num_rows, key), _upkeep_check(sync.upkeep)],
        )

    return vector_index


def _sync_metadata(name: str, sync: SourceSync, rows_total: int, uri: str) -> dict:
    return {
        "table": name,
        "lance_version": sync.version,
        "uri": uri,
        "upserted": sync.inserted,
        "deleted": sync.deleted,
        "unchanged": sync.unchanged,
        "readers_updated": sync.readers_updated,
        "rows_for_source": sync.rows_for_source,
        "rows_total": rows_total,
        "indexes": dg.MetadataValue.json(sync.indexes),
        "duplicates_removed": sync.duplicates_removed,
        "indexes_created": dg.MetadataValue.json(sync.upkeep.created),
        "compacted": sync.upkeep.compacted,
        "cleanup_window_hours": sync.upkeep.cleanup_window_hours,
        "versions_removed": sync.upkeep.versions_removed,
    }


def _rows_match_check(table_rows: int, chunks: int, source: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=INDEX_ROWS_MATCH_CHUNKS,
        passed=table_rows == chunks,
        description=f"{table_rows} rows in the table for {source!r}, {chunks} chunks",
        metadata={"table_rows": table_rows, "chunks": chunks},
    )


def _retrieval_eval_check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            RETRIEVAL_HIT_RATE_MINIMUM,
            asset=RETRIEVAL_EVAL,
            blocking=True,
            description="hit rate@k at least index.min_retrieval_hit_rate",
        ),
        dg.AssetCheckSpec(
            RETRIEVAL_NO_REGRESSION,
            asset=RETRIEVAL_EVAL,
            blocking=True,
            description="hit rate@k not below the published version's by more than index.max_retrieval_regression",
        ),
    ]


def retrieval_eval_asset(op_tags: dict) -> dg.AssetsDefinition:
    """retrieval_eval (whole table): the latest version scored against the served one."""

    @dg.asset(
        group_name=GROUP,
        kinds={"lancedb"},
        deps=[VECTOR_INDEX],
        op_tags=op_tags,
        check_specs=_retrieval_eval_check_specs(),
    )
    def retrieval_eval(
        context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource
    ) -> dg.MaterializeResult:
        """Hit rate and MRR of the latest table version, next to the served one's
        (an older model's table if this model has none).
        """
        config = platform.config
        name = configured_table_name(config)
        evaluation = _evaluate_latest(storage, config, name)
        record = _retrieval_record(name, evaluation)
        written = storage.datasets.write(
            RETRIEVAL_EVAL_DATA,
            None,
            [pa.Table.from_pylist([record], schema=RETRIEVAL_EVAL_SCHEMA)],
            run_id=context.run.run_id,
        )
        gates = retrieval_gates(
            evaluation.score.hit_rate,
            evaluation.served_hit_rate,
            minimum=config.index.min_retrieval_hit_rate,
            margin=config.index.max_retrieval_regression,
        )
        return dg.MaterializeResult(
            data_version=dg.DataVersion(f"{name}@{evaluation.score.version}"),
            metadata={
                **_retrieval_metadata(name, evaluation),
                "dataset_version": written.version,
                "questions_preview": markdown_table([q.__dict__ for q in evaluation.questions], ["question", "doc_id"]),
            },
            check_results=[
                dg.AssetCheckResult(check_name=g.check, passed=g.passed, description=g.description) for g in gates
            ],
        )

    return retrieval_eval


@dataclass(frozen=True)
class _Evaluation:
    score: RetrievalScore
    questions: list[RetrievalQuestion]
    published_version: int | None
    served_hit_rate: float | None
    compared_with: str | None
    by_group: dict[str, RetrievalScore]


def _evaluate_latest(storage: StorageResource, config: PlatformConfig, name: str) -> _Evaluation:
    """The latest version of table `name` and the served one, scored on the same questions from the chunks."""
    db = storage.lancedb()
    latest = open_table(db, name)
    questions = questions_from_chunks(_all_chunks(storage, config.partition_keys), limit=config.index.eval_questions)
    embedder = _embedder(config, config.embedding.model)
    k, tuning = config.index.retrieval_k, QueryTuning.from_config(config.index)
    score = score_table(latest, questions, embedder.encode, k=k, tuning=tuning, readers=ReaderGroups.everyone())
    by_group = score_by_reader_group(latest, questions, embedder.encode, k=k, tuning=tuning)
    baseline = _served_score(db, config, name, questions, embedder)
    served = published_version(latest, config.index.published_tag)
    served_hit_rate, compared_with = (baseline[1], baseline[0]) if baseline else (None, None)
    return _Evaluation(score, questions, served, served_hit_rate, compared_with, by_group)


def _retrieval_record(name: str, evaluation: _Evaluation) -> dict:
    score = evaluation.score
    return {
        "table": name,
        "version": score.version,
        "hit_rate": score.hit_rate,
        "mrr": score.mrr,
        "k": score.k,
        "questions": score.questions,
        "published_version": evaluation.published_version,
        "published_hit_rate": evaluation.served_hit_rate,
        "compared_with": evaluation.compared_with,
    }


def _retrieval_metadata(name: str, evaluation: _Evaluation) -> dict:
    score, k = evaluation.score, evaluation.score.k
    return {
        "table": name,
        "evaluated_version": score.version,
        "published_version": evaluation.published_version,
        f"hit_rate_at_{k}": score.hit_rate,
        f"mrr_at_{k}": score.mrr,
        "questions": score.questions,
        "published_hit_rate": evaluation.served_hit_rate,
        "compared_with": evaluation.compared_with or "nothing served yet",
        f"hit_rate_at_{k}_by_reader_group": dg.MetadataValue.json(reader_group_rates(evaluation.by_group)),
    }


def reader_group_rates(by_group: dict[str, RetrievalScore]) -> dict[str, dict]:
    """Per reader group (`*`: a caller in no group), its hit rate and how many questions it was asked."""
    return {group: {"hit_rate": score.hit_rate, "questions": score.questions} for group, score in by_group.items()}


def published_index_asset(op_tags: dict) -> dg.AssetsDefinition:
    """published_index: the tag readers follow, moved only to a version retrieval_eval passed."""

    @dg.asset(group_name=GROUP, kinds={"lancedb"}, deps=[RETRIEVAL_EVAL], op_tags=op_tags, pool=LANCEDB_POOL)
    def published_index(
        context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource
    ) -> dg.MaterializeResult:
        """The table version readers are served: the `production` tag moved to the version
        retrieval_eval passed, once it answers every kind of query.
        """
        config = platform.config
        record = storage.read_record(RETRIEVAL_EVAL_DATA)
        _refuse_failed_gates(record, config.index)
        previous = _publish(storage, record, config.index, context.run.run_id)
        context.log.info(f"tag {config.index.published_tag!r} of {record['table']}: {previous} -> {record['version']}")
        return dg.MaterializeResult(
            data_version=dg.DataVersion(f"{record['table']}@{record['version']}"),
            metadata={
                "table": record["table"],
                "tag": config.index.published_tag,
                "published_version": record["version"],
                "previous_version": previous,
                "hit_rate": record["hit_rate"],
                "mrr": record["mrr"],
                "compared_with": record.get("compared_with") or "nothing served yet",
                "rollback": f"llm-platform index rollback --version {previous}"
                if previous is not None
                else "nothing to roll back to",
            },
        )

    return published_index


def _refuse_failed_gates(record: dict, settings: IndexConfig) -> None:
    gates = retrieval_gates(
        record["hit_rate"],
        record["published_hit_rate"],
        minimum=settings.min_retrieval_hit_rate,
        margin=settings.max_retrieval_regression,
    )
    failed = [g.description for g in gates if not g.passed]
    if failed:
        raise dg.Failure(f"not publishing version {record['version']} of {record['table']}: " + "; ".join(failed))


def _publish(storage: StorageResource, record: dict, settings: IndexConfig, run_id: str) -> int | None:
    """Moves the published tag to the record's version; returns the version it was on."""
    score = Score(
        hit_rate=record["hit_rate"],
        mrr=record["mrr"],
        k=record["k"],
        questions=record["questions"],
        compared_with=record.get("compared_with"),
    )
    try:
        return publish_version(
            storage.lancedb(),
            storage.datasets,
            record["table"],
            tag=settings.published_tag,
            version=record["version"],
            score=score,
            keep=settings.keep_published_versions,
            run_id=run_id,
        )
    except PublishRefused as exc:
        raise dg.Failure(f"not publishing: {exc}") from None
