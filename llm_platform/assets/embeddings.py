"""chunks and embeddings: token-aware chunks of the corpus and their vectors."""


import time

import dagster as dg
import numpy as np
import pyarrow as pa

from llm_platform.assets.metadata import check_result, frame, markdown_table
from llm_platform.core.chunk_table import CHUNK_SCHEMA, chunk_corpus, chunker_version
from llm_platform.config import DriftSettings
from llm_platform.core.chunking import Chunker, load_tokenizer
from llm_platform.core.drift import measure_drift
from llm_platform.core.embedding import EmbeddingCache, embed_texts, load_embedder
from llm_platform.core.model_paths import resolve_sentence_transformer
from llm_platform.core.schemas import (
    ids_unique_and_present,
    text_length_within,
    tokens_at_most,
    validate_rule,
    vectors_finite,
    vectors_of_dimension,
    vectors_unit_norm,
)
from llm_platform.resources.platform import PlatformConfigResource, StorageResource

CHUNK_IDS_UNIQUE = "chunk_ids_unique"
CHUNK_TEXT_NOT_EMPTY = "text_not_empty"
CHUNK_TOKENS_WITHIN_LIMIT = "token_count_within_limit"
EMBEDDING_DIMENSION = "vector_dimension"
EMBEDDING_FINITE = "no_nan_values"
EMBEDDING_UNIT_NORM = "unit_norm"
EMBEDDING_DRIFT = "drift_vs_indexed"


def embeddings_schema(dimension: int) -> pa.Schema:
    """Columns of the per-source embeddings dataset."""
    return pa.schema(
        [("chunk_id", pa.string()), ("text_hash", pa.string()), ("token_count", pa.int32()), ("embedding_model", pa.string()), ("vector", pa.list_(pa.float32(), dimension))]
    )


def _drift_check(previous: pa.Table | None, vectors: np.ndarray, tokens: np.ndarray, settings: DriftSettings) -> dg.AssetCheckResult:
    if previous is None or previous.num_rows == 0:
        return dg.AssetCheckResult(check_name=EMBEDDING_DRIFT, passed=True, severity=dg.AssetCheckSeverity.WARN, description="first materialization: nothing indexed to compare with")
    indexed = np.stack(previous.column("vector").to_numpy(zero_copy_only=False)).astype(np.float32)
    # Datasets written before token counts were stored compare centroids only.
    indexed_tokens = np.asarray(previous.column("token_count").to_pylist() if "token_count" in previous.column_names else [])
    drift = measure_drift(indexed, vectors, indexed_tokens, tokens,
                          centroid_threshold=settings.centroid_threshold, ks_threshold=settings.token_length_ks_threshold)
    return dg.AssetCheckResult(
        check_name=EMBEDDING_DRIFT, passed=not drift.drifted, severity=dg.AssetCheckSeverity.WARN,
        description=f"centroid distance {drift.centroid_distance:.4f} (threshold {settings.centroid_threshold}), token-length KS {drift.token_length_ks:.3f} (threshold {settings.token_length_ks_threshold})",
        metadata={"centroid_distance": drift.centroid_distance, "token_length_ks": drift.token_length_ks,
                  "indexed_mean_tokens": drift.indexed_mean_tokens, "new_mean_tokens": drift.new_mean_tokens},
    )


def build_embedding_assets(sources: dg.PartitionsDefinition, upstream: dg.AssetsDefinition, op_tags: dict) -> list[dg.AssetsDefinition]:
    """chunks (after `upstream`, the cleaned corpus) and embeddings, partitioned by `sources`."""

    @dg.asset(
        partitions_def=sources,
        group_name="documents",
        kinds={"python", "parquet"},
        deps=[upstream],
        op_tags=op_tags,
        check_specs=[
            dg.AssetCheckSpec(CHUNK_IDS_UNIQUE, asset="chunks", blocking=True, description="chunk_id is unique and non-null"),
            dg.AssetCheckSpec(CHUNK_TEXT_NOT_EMPTY, asset="chunks", blocking=True, description="every chunk has text"),
            dg.AssetCheckSpec(CHUNK_TOKENS_WITHIN_LIMIT, asset="chunks", blocking=True, description="1 <= token_count <= chunking.max_tokens"),
        ],
    )
    def chunks(context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource) -> dg.MaterializeResult:
        """Chunks of at most chunking.max_tokens embedding-model tokens, with their section heading."""
        config = platform.config
        key = context.partition_key
        started = time.perf_counter()
        cleaned = storage.datasets.read("cleaned_corpus", key)
        if cleaned is None:
            raise dg.Failure(f"cleaned_corpus for source {key!r} has not been materialized; materialize it first")
        model_dir = resolve_sentence_transformer(config.embedding.model, allow_download=config.embedding.allow_download)
        factory = lambda: Chunker(load_tokenizer(model_dir), max_tokens=config.chunking.max_tokens, overlap=config.chunking.overlap)  # noqa: E731
        version = chunker_version(config.embedding.model, config.chunking.max_tokens, config.chunking.overlap)
        result = chunk_corpus(cleaned.to_pylist(), storage.datasets.read("chunks", key), factory, version=version)
        written = storage.datasets.write("chunks", key, [pa.Table.from_pylist(result.rows, schema=CHUNK_SCHEMA)], CHUNK_SCHEMA, context.run_id)
        tokens = [r["token_count"] for r in result.rows]
        return dg.MaterializeResult(
            data_version=dg.DataVersion(written.version),
            metadata={
                "dataset_version": written.version, "path": written.path, "bytes": written.bytes,
                "upstream_cleaned_corpus_version": storage.datasets.current_version("cleaned_corpus", key),
                "chunks": len(result.rows), "documents_chunked": result.documents_chunked, "documents_reused": result.documents_reused,
                "chunker_version": version, "max_tokens": config.chunking.max_tokens, "overlap": config.chunking.overlap,
                "mean_tokens": float(np.mean(tokens)) if tokens else 0.0, "p95_tokens": float(np.percentile(tokens, 95)) if tokens else 0.0,
                "seconds": time.perf_counter() - started,
                "preview": markdown_table(result.rows, ["locator", "heading", "position", "token_count", "text"]),
            },
            check_results=[
                check_result(CHUNK_IDS_UNIQUE, validate_rule(ids_unique_and_present("chunk_id"), frame(result.rows, ["chunk_id"]))),
                check_result(CHUNK_TEXT_NOT_EMPTY, validate_rule(text_length_within(1, 10**7), frame(result.rows, ["text"]))),
                check_result(CHUNK_TOKENS_WITHIN_LIMIT, validate_rule(tokens_at_most(config.chunking.max_tokens), frame(result.rows, ["token_count"]))),
            ],
        )

    @dg.asset(
        partitions_def=sources,
        group_name="documents",
        kinds={"pytorch", "parquet"},
        deps=[chunks],
        op_tags=op_tags,
        check_specs=[
            dg.AssetCheckSpec(EMBEDDING_DIMENSION, asset="embeddings", blocking=True, description="every vector has the model's dimension"),
            dg.AssetCheckSpec(EMBEDDING_FINITE, asset="embeddings", blocking=True, description="no NaN or infinite values"),
            dg.AssetCheckSpec(EMBEDDING_UNIT_NORM, asset="embeddings", blocking=True, description="every vector has unit L2 norm"),
            dg.AssetCheckSpec(EMBEDDING_DRIFT, asset="embeddings", description="centroid and token-length distribution against the previously indexed vectors"),
        ],
    )
    def embeddings(context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource) -> dg.MaterializeResult:
        """One unit-norm vector per chunk; text already embedded by this model is never embedded again."""
        settings = platform.config.embedding
        key = context.partition_key
        previous = storage.datasets.read("embeddings", key)
        chunk_table = storage.datasets.read("chunks", key, columns=["chunk_id", "text", "text_hash", "token_count"])
        if chunk_table is None:
            raise dg.Failure(f"chunks for source {key!r} have not been materialized; materialize them first")
        started = time.perf_counter()
        factory = lambda: load_embedder(settings.model, device=settings.device, allow_download=settings.allow_download, batch_size=settings.batch_size)  # noqa: E731
        run = embed_texts(
            chunk_table.column("text_hash").to_pylist(), chunk_table.column("text").to_pylist(),
            EmbeddingCache(storage.root, settings.model), factory, dimension=None, show_progress=False,
        )
        seconds = time.perf_counter() - started
        dimension = run.dimension or factory().dimension
        schema = embeddings_schema(dimension)
        table = pa.table(
            {
                "chunk_id": chunk_table.column("chunk_id"), "text_hash": chunk_table.column("text_hash"), "token_count": chunk_table.column("token_count"),
                "embedding_model": pa.array([settings.model] * chunk_table.num_rows, pa.string()),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(run.vectors.reshape(-1), pa.float32()), dimension),
            },
            schema=schema,
        )
        written = storage.datasets.write("embeddings", key, [table], schema, context.run_id)
        context.log.info(f"{key}: {run.computed} chunks embedded, {run.reused} reused from the cache in {seconds:.1f}s")
        vectors = frame([{"vector": v} for v in run.vectors], ["vector"])
        return dg.MaterializeResult(
            data_version=dg.DataVersion(written.version),
            metadata={
                "dataset_version": written.version, "path": written.path, "bytes": written.bytes,
                "upstream_chunks_version": storage.datasets.current_version("chunks", key),
                "embedding_model": settings.model, "dimension": dimension, "vectors": chunk_table.num_rows,
                "computed": run.computed, "reused": run.reused, "seconds": seconds,
                "chunks_per_second": run.computed / seconds if run.computed and seconds else 0.0,
            },
            check_results=[
                check_result(EMBEDDING_DIMENSION, validate_rule(vectors_of_dimension(dimension), vectors)),
                check_result(EMBEDDING_FINITE, validate_rule(vectors_finite(), vectors)),
                check_result(EMBEDDING_UNIT_NORM, validate_rule(vectors_unit_norm(), vectors)),
                _drift_check(previous, run.vectors, np.asarray(chunk_table.column("token_count").to_pylist()), platform.config.drift),
            ],
        )

    return [chunks, embeddings]
