"""embeddings: one unit-norm vector per chunk of a source, with its checks (dimension, finite, unit norm, drift).

The factory takes the chunks asset it reads and its op tags; the work is done by
the helpers below it and the plain modules `embedding` and `drift`.
"""

import time
from dataclasses import dataclass

import dagster as dg
import numpy as np
import pyarrow as pa

from llm_platform.config import DriftSettings, EmbeddingConfig
from llm_platform.documents.datasets import CHUNKS_DATA
from llm_platform.index.datasets import EMBEDDINGS_DATA
from llm_platform.index.drift import measure_drift
from llm_platform.index.embedding import (
    EmbeddingRun,
    Runtime,
    configured_cache,
    configured_embedder,
    embed_texts,
    resolve_runtime,
)
from llm_platform.metadata import check_result, frame
from llm_platform.resources.platform import PlatformConfigResource, StorageResource
from llm_platform.rules import validate_rule, vectors_finite, vectors_of_dimension, vectors_unit_norm

EMBEDDINGS = dg.AssetKey(EMBEDDINGS_DATA.name)

EMBEDDING_DIMENSION = "vector_dimension"
EMBEDDING_FINITE = "no_nan_values"
EMBEDDING_UNIT_NORM = "unit_norm"
EMBEDDING_DRIFT = "drift_vs_indexed"


def embeddings_schema(dimension: int) -> pa.Schema:
    """Columns of the per-source embeddings dataset."""
    return pa.schema(
        [
            ("chunk_id", pa.string()),
            ("text_hash", pa.string()),
            ("token_count", pa.int32()),
            ("embedding_model", pa.string()),
            ("vector", pa.list_(pa.float32(), dimension)),
        ]
    )


def _drift_check(
    previous: pa.Table | None, vectors: np.ndarray, tokens: np.ndarray, settings: DriftSettings
) -> dg.AssetCheckResult:
    if previous is None or previous.num_rows == 0:
        return dg.AssetCheckResult(
            check_name=EMBEDDING_DRIFT,
            passed=True,
            severity=dg.AssetCheckSeverity.WARN,
            description="first materialization: nothing indexed to compare with",
        )
    indexed = np.stack(previous.column("vector").to_numpy(zero_copy_only=False)).astype(np.float32)
    # Datasets written before token counts were stored compare centroids only.
    indexed_tokens = np.asarray(
        previous.column("token_count").to_pylist() if "token_count" in previous.column_names else []
    )
    drift = measure_drift(
        indexed,
        vectors,
        indexed_tokens,
        tokens,
        centroid_threshold=settings.centroid_threshold,
        ks_threshold=settings.token_length_ks_threshold,
    )
    return dg.AssetCheckResult(
        check_name=EMBEDDING_DRIFT,
        passed=not drift.drifted,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"centroid distance {drift.centroid_distance:.4f} (threshold {settings.centroid_threshold}), "
        f"token-length KS {drift.token_length_ks:.3f} (threshold {settings.token_length_ks_threshold})",
        metadata={
            "centroid_distance": drift.centroid_distance,
            "token_length_ks": drift.token_length_ks,
            "indexed_mean_tokens": drift.indexed_mean_tokens,
            "new_mean_tokens": drift.new_mean_tokens,
        },
    )


def _embedding_check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            EMBEDDING_DIMENSION, asset=EMBEDDINGS, blocking=True, description="every vector has the model's dimension"
        ),
        dg.AssetCheckSpec(EMBEDDING_FINITE, asset=EMBEDDINGS, blocking=True, description="no NaN or infinite values"),
        dg.AssetCheckSpec(
            EMBEDDING_UNIT_NORM, asset=EMBEDDINGS, blocking=True, description="every vector has unit L2 norm"
        ),
        dg.AssetCheckSpec(
            EMBEDDING_DRIFT,
            asset=EMBEDDINGS,
            description="centroid and token-length distribution against the previously indexed vectors",
        ),
    ]


def embeddings_asset(
    sources: dg.PartitionsDefinition, chunks: dg.AssetsDefinition, op_tags: dict, *, pool: str | None = None
) -> dg.AssetsDefinition:
    """embeddings (after the chunks), partitioned by `sources`; `op_tags` and `pool` place its step."""

    @dg.asset(
        partitions_def=sources,
        group_name="documents",
        kinds={"pytorch", "parquet"},
        deps=[chunks],
        op_tags=op_tags,
        pool=pool,
        check_specs=_embedding_check_specs(),
    )
    def embeddings(
        context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource
    ) -> dg.MaterializeResult:
        """One unit-norm vector per chunk; text already embedded by this model is never embedded again."""
        settings = platform.config.embedding
        key = context.partition_key
        previous = storage.datasets.read(EMBEDDINGS_DATA, key)
        chunk_table = storage.datasets.read(CHUNKS_DATA, key, columns=["chunk_id", "text", "text_hash", "token_count"])
        if chunk_table is None:
            raise dg.Failure(f"chunks for source {key!r} have not been materialized; materialize them first")
        embedded = _embed_chunks(chunk_table, settings, storage.root)
        table = _embeddings_table(chunk_table, settings.model, embedded)
        written = storage.datasets.write(EMBEDDINGS_DATA, key, [table], table.schema, context.run.run_id)
        context.log.info(
            f"{key}: {embedded.run.computed} chunks embedded, {embedded.run.reused} "
            f"reused from the cache in {embedded.seconds:.1f}s"
        )
        return dg.MaterializeResult(
            data_version=dg.DataVersion(written.version),
            metadata={
                "dataset_version": written.version,
                "path": written.path,
                "bytes": written.bytes,
                "upstream_chunks_version": storage.datasets.current_version(CHUNKS_DATA, key),
                **_embedding_metadata(settings.model, chunk_table.num_rows, embedded),
            },
            check_results=_embedding_checks(
                embedded, previous, np.asarray(chunk_table.column("token_count").to_pylist()), platform.config.drift
            ),
        )

    return embeddings


@dataclass(frozen=True)
class _Embedded:
    run: EmbeddingRun
    runtime: Runtime
    seconds: float
    dimension: int


def _embed_chunks(chunk_table: pa.Table, settings: EmbeddingConfig, root: str) -> _Embedded:
    """The chunks' vectors, in order; text already in the cache for this model is not embedded again."""
    started = time.perf_counter()
    runtime = resolve_runtime(settings.backend, settings.device)
    factory = lambda: configured_embedder(settings)
    # The chunks' stored token counts order the batches by length: no second tokenization to sort.
    run = embed_texts(
        chunk_table.column("text_hash").to_pylist(),
        chunk_table.column("text").to_pylist(),
        configured_cache(settings, root),
        factory,
        token_counts=chunk_table.column("token_count").to_pylist(),
    )
    seconds = time.perf_counter() - started
    return _Embedded(run, runtime, seconds, run.dimension or factory().dimension)


def _embeddings_table(chunk_table: pa.Table, model: str, embedded: _Embedded) -> pa.Table:
    schema = embeddings_schema(embedded.dimension)
    return pa.table(
        {
            "chunk_id": chunk_table.column("chunk_id"),
            "text_hash": chunk_table.column("text_hash"),
            "token_count": chunk_table.column("token_count"),
            "embedding_model": pa.array([model] * chunk_table.num_rows, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(
                pa.array(embedded.run.vectors.reshape(-1), pa.float32()), embedded.dimension
            ),
        },
        schema=schema,
    )


def _embedding_metadata(model: str, vectors: int, embedded: _Embedded) -> dict:
    run, runtime, seconds = embedded.run, embedded.runtime, embedded.seconds
    return {
        "embedding_model": model,
        "dimension": embedded.dimension,
        "vectors": vectors,
        "backend": runtime.backend,
        "device": runtime.device,
        "precision": runtime.precision,
        "computed": run.computed,
        "reused": run.reused,
        "seconds": seconds,
        "chunks_per_second": run.computed / seconds if run.computed and seconds else 0.0,
    }


def _embedding_checks(
    embedded: _Embedded, previous: pa.Table | None, tokens: np.ndarray, drift: DriftSettings
) -> list[dg.AssetCheckResult]:
    vectors = frame([{"vector": v} for v in embedded.run.vectors], ["vector"])
    return [
        check_result(EMBEDDING_DIMENSION, validate_rule(vectors_of_dimension(embedded.dimension), vectors)),
        check_result(EMBEDDING_FINITE, validate_rule(vectors_finite(), vectors)),
        check_result(EMBEDDING_UNIT_NORM, validate_rule(vectors_unit_norm(), vectors)),
        _drift_check(previous, embedded.run.vectors, tokens, drift),
    ]
