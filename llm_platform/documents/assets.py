"""raw_documents, cleaned_corpus and chunks: a source's files to clean, deduplicated, chunked text.

One factory per asset, taking the source partitions (they come from the config) and
the op tags; each asset's checks are declared just above it and computed just below.
"""

import tempfile
import time
import warnings

import dagster as dg
import numpy as np
import pyarrow as pa

from llm_platform.config import CleaningConfig, PlatformConfig, SourceConfig
from llm_platform.datasets import Dataset
from llm_platform.documents import batching, chunk_table, corpus, sources
from llm_platform.documents.batching import RowSpool, observed, rows_of
from llm_platform.documents.chunk_table import ChunkedCorpus, chunk_batches, chunker_version
from llm_platform.documents.chunking import ChunkerSettings
from llm_platform.documents.cleaning import cleaning_version
from llm_platform.documents.corpus import CleanedCorpus, CleaningRules, cleaned_batches
from llm_platform.documents.datasets import (
    CHUNKS_DATA,
    CLEANED_CORPUS_DATA,
    CLEANED_QUARANTINE_DATA,
    CLEANED_SET_ASIDE_DATA,
    RAW_DOCUMENTS_DATA,
    RAW_QUARANTINE_DATA,
)
from llm_platform.documents.extraction import EXTRACTOR_VERSION
from llm_platform.documents.listing import GlobOutsideSourceError
from llm_platform.documents.pii import redacted_rows
from llm_platform.documents.previous_rows import PreviousRows
from llm_platform.documents.sources import RawDocuments, SuspiciousListingError, source_batches
from llm_platform.documents.stage_checks import ChunkRowChecks, CleanedRowChecks, RawRowChecks
from llm_platform.documents.worker_pool import worker_count
from llm_platform.metadata import check_result, counts, markdown_table, rate_check
from llm_platform.model_paths import resolve_sentence_transformer
from llm_platform.resources.platform import PlatformConfigResource, StorageResource
from llm_platform.shards import Shard

RAW_DOCUMENTS = dg.AssetKey(RAW_DOCUMENTS_DATA.name)
CLEANED_CORPUS = dg.AssetKey(CLEANED_CORPUS_DATA.name)
CHUNKS = dg.AssetKey(CHUNKS_DATA.name)
GROUP = "documents"
KINDS = {"python", "parquet"}

RAW_IDS_UNIQUE = "doc_ids_unique"
RAW_TEXT_NOT_EMPTY = "text_not_empty"
RAW_QUARANTINE_RATE = "quarantine_rate"
RAW_SOURCE_NOT_EMPTY = "source_not_empty"
CLEAN_IDS_UNIQUE = "doc_ids_unique"
CLEAN_TEXT_LENGTH = "text_length_within_bounds"
CLEAN_QUALITY = "quality_above_minimum"
CLEAN_NO_PII = "no_pii_left"
CLEAN_NO_RANDOM_TOKENS = "no_random_tokens_left"
CLEAN_DUPLICATE_RATE = "duplicate_rate"
CLEAN_QUARANTINE_RATE = "quarantine_rate"
CHUNK_IDS_UNIQUE = "chunk_ids_unique"
CHUNK_TEXT_NOT_EMPTY = "text_not_empty"
CHUNK_TOKENS_WITHIN_LIMIT = "token_count_within_limit"


def _write_quarantine(
    storage: StorageResource, quarantine: Dataset, source: str, rows: list[dict], run_id: str
) -> None:
    table = pa.Table.from_pylist(rows, schema=quarantine.schema)
    storage.datasets.write(quarantine, source, [table], run_id=run_id)


def _raw_checks(
    checks: RawRowChecks, documents: int, quarantined: int, files: int, max_rate: float, source: SourceConfig
) -> list[dg.AssetCheckResult]:
    # Each row is a file, or a record of a record format (a JSONL line), and so
    # is each quarantine entry: one bad line of 100 is 1%, not "1 of 1 files".
    return [
        check_result(RAW_IDS_UNIQUE, checks.ids.outcome),
        check_result(RAW_TEXT_NOT_EMPTY, checks.text.outcome),
        rate_check(
            RAW_QUARANTINE_RATE, quarantined, documents + quarantined, max_rate, what="files or records quarantined"
        ),
        source_not_empty_check(files, source),
    ]


def source_not_empty_check(files: int, source: SourceConfig) -> dg.AssetCheckResult:
    """Warns when a source lists no file: an empty folder or a glob that matches nothing is rarely meant."""
    description = f"{files} files listed at {source.location} with glob {source.glob!r}"
    if not files:
        description = (
            f"source {source.name!r}: no file at {source.location} matches glob {source.glob!r}; "
            "check the folder and the glob of this source in the config"
        )
    return dg.AssetCheckResult(
        check_name=RAW_SOURCE_NOT_EMPTY,
        passed=files > 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={"files_listed": files, "location": source.location, "glob": source.glob},
    )


def access_summary(source: SourceConfig, readable_by_nobody: int, documents: int) -> str:
    """Who may read the source's documents, in words; says so plainly when some are served to nobody."""
    if source.public:
        readers = "everyone (public)"
    else:
        readers = f"groups {', '.join(source.readers)}" if source.readers else "nobody: the source has no readers"
    summary = f"source {source.name!r}: documents that declare no readers are read by {readers}"
    if readable_by_nobody:
        summary += (
            f"; {readable_by_nobody} of {documents} documents have no readers and are served to nobody "
            f"(set readers or public: true for source {source.name!r}, or declare readers in the documents)"
        )
    return summary


def listing_failure(config: PlatformConfig, source: SourceConfig, error: Exception) -> dg.Failure:
    """A failure naming the source, its config key and path: retrying cannot fix a missing folder or a bad glob."""
    index = config.source_names.index(source.name)
    if isinstance(error, FileNotFoundError):
        message = (
            f"source {source.name!r}: folder {source.location} (sources[{index}].location in {config.config_path}) "
            "does not exist or is not mounted; create or mount it, or correct the location"
        )
    elif isinstance(error, GlobOutsideSourceError):
        message = f"source {source.name!r}: sources[{index}].glob in {config.config_path}: {error}"
    else:
        message = str(error)
    return dg.Failure(message, allow_retries=False)


def _check_spec(name: str, asset: dg.AssetKey, sources: dg.PartitionsDefinition, **kwargs) -> dg.AssetCheckSpec:
    """A check spec partitioned like its asset, so each result names its source and the UI shows each source's state."""
    # Partitioned check specs are a preview feature in Dagster 1.13; its warning
    # would repeat on every load of the code location.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(name, asset=asset, partitions_def=sources, **kwargs)


def cleaning_rules(cleaning: CleaningConfig) -> CleaningRules:
    return CleaningRules(
        cleaning.min_chars,
        cleaning.min_quality,
        cleaning.near_duplicate_threshold,
        max_chars=cleaning.max_document_chars,
        min_record_chars=cleaning.min_record_chars,
    )


def document_assets(sources: dg.PartitionsDefinition, op_tags: dict) -> list[dg.AssetsDefinition]:
    """raw_documents, cleaned_corpus and chunks, each partitioned by `sources`."""
    return [
        raw_documents_asset(sources, op_tags),
        cleaned_corpus_asset(sources, op_tags),
        chunks_asset(sources, op_tags),
    ]


def _raw_check_specs(sources: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    return [
        _check_spec(RAW_IDS_UNIQUE, RAW_DOCUMENTS, sources, blocking=True, description="doc_id is unique and non-null"),
        _check_spec(RAW_TEXT_NOT_EMPTY, RAW_DOCUMENTS, sources, blocking=True, description="every document has text"),
        _check_spec(
            RAW_QUARANTINE_RATE,
            RAW_DOCUMENTS,
            sources,
            description="share of quarantined files or records under cleaning.max_quarantine_rate",
        ),
        _check_spec(
            RAW_SOURCE_NOT_EMPTY, RAW_DOCUMENTS, sources, description="the source lists at least one file (warns)"
        ),
    ]


def raw_documents_asset(sources: dg.PartitionsDefinition, op_tags: dict) -> dg.AssetsDefinition:
    @dg.asset(
        key=RAW_DOCUMENTS,
        partitions_def=sources,
        group_name=GROUP,
        kinds=KINDS,
        op_tags=op_tags,
        retry_policy=dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL),
        check_specs=_raw_check_specs(sources),
    )
    def raw_documents(
        context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource
    ) -> dg.MaterializeResult:
        """Every document of one source (or of one shard of it) as text, with
        its identity, and the diff against the last run.
        """
        config = platform.config
        shard = platform.shard(context.partition_key)
        source = config.source(shard.source)
        started = time.perf_counter()
        checks = RawRowChecks()
        result, written = _write_raw_documents(config, source, shard, storage, checks, context.run.run_id)
        _write_quarantine(storage, RAW_QUARANTINE_DATA, shard.key, result.quarantine, context.run.run_id)
        context.log.info(
            f"{shard.key}: {result.documents} documents ({len(result.added)} added, {len(result.changed)} "
            f"changed, {len(result.removed)} removed), {len(result.quarantine)} quarantined"
        )
        access = access_summary(source, result.readable_by_nobody, result.documents)
        if result.readable_by_nobody:
            context.log.warning(access)
        return dg.MaterializeResult(
            data_version=dg.DataVersion(written.version),
            metadata={
                **_written_metadata(written),
                **_raw_metadata(result, time.perf_counter() - started),
                "readers": dg.MetadataValue.json(source.default_readers),
                "readable_by_nobody": result.readable_by_nobody,
                "access": access,
            },
            check_results=_raw_checks(
                checks,
                result.documents,
                len(result.quarantine),
                result.files_listed,
                config.cleaning.max_quarantine_rate,
                source,
            ),
        )

    return raw_documents


def _write_raw_documents(
    config: PlatformConfig,
    source: SourceConfig,
    shard: Shard,
    storage: StorageResource,
    checks: RawRowChecks,
    run_id: str,
):
    """Read the shard's documents of the source batch by batch straight into
    a new raw_documents version; (result, written).
    """
    previous_quarantine = storage.datasets.read(RAW_QUARANTINE_DATA, shard.key)
    try:
        result, batches = source_batches(
            source.name,
            source.location,
            source.glob,
            PreviousRows.of_dataset(storage.datasets, RAW_DOCUMENTS_DATA, shard.key, sources.PREVIOUS_KEY_COLUMNS),
            previous_quarantine=previous_quarantine.to_pylist() if previous_quarantine is not None else [],
            text_field=source.jsonl_text_field,
            title_field=source.jsonl_title_field,
            readers_field=source.jsonl_readers_field,
            default_readers=source.default_readers,
            max_bytes=config.cleaning.max_bytes,
            allow_mass_deletion=source.allow_mass_deletion,
            max_removed_fraction=source.max_removed_fraction,
            batch_bytes=batching.BATCH_TEXT_BYTES,
            shard=shard,
        )
        return result, storage.datasets.write(
            RAW_DOCUMENTS_DATA, shard.key, observed(batches, checks.observe), run_id=run_id
        )
    except SuspiciousListingError as exc:
        # Retrying cannot fix a refused mass deletion; say so at once.
        raise dg.Failure(str(exc), allow_retries=False) from exc
    except (FileNotFoundError, GlobOutsideSourceError) as exc:
        raise listing_failure(config, source, exc) from exc


def _written_metadata(written) -> dict:
    return {"dataset_version": written.version, "path": written.path, "bytes": written.bytes}


def _raw_metadata(result: RawDocuments, seconds: float) -> dict:
    return {
        "documents": result.documents,
        "files_listed": result.files_listed,
        "files_read": result.files_read,
        "extractor_version": EXTRACTOR_VERSION,
        "added": len(result.added),
        "changed": len(result.changed),
        "removed": len(result.removed),
        "unchanged": len(result.unchanged),
        "quarantined": len(result.quarantine),
        "quarantined_by_reason": counts(result.quarantine_by_kind),
        "quarantine_preview": markdown_table(result.quarantine, ["locator", "kind", "reason"]),
        "seconds": seconds,
        "mb_per_second": result.bytes_read / 1e6 / seconds if seconds else 0.0,
        "preview": markdown_table(
            redacted_rows(result.preview, ["title", "text"], limit=5), ["locator", "format", "title", "text"]
        ),
    }


def _cleaned_check_specs(sources: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    return [
        _check_spec(
            CLEAN_IDS_UNIQUE, CLEANED_CORPUS, sources, blocking=True, description="doc_id is unique and non-null"
        ),
        _check_spec(
            CLEAN_TEXT_LENGTH,
            CLEANED_CORPUS,
            sources,
            blocking=True,
            description="text length within cleaning.min_chars and the maximum",
        ),
        _check_spec(
            CLEAN_QUALITY,
            CLEANED_CORPUS,
            sources,
            blocking=True,
            description="quality score at least cleaning.min_quality",
        ),
        _check_spec(
            CLEAN_NO_PII,
            CLEANED_CORPUS,
            sources,
            blocking=True,
            description="no PII or secret left in text, title or locator (neither the redaction "
            "detectors nor the independent audit find any)",
        ),
        _check_spec(
            CLEAN_NO_RANDOM_TOKENS,
            CLEANED_CORPUS,
            sources,
            description="no unnamed run of letters and digits that reads as a generated key in text, "
            "title or locator (a warning: links and ids look the same)",
        ),
        _check_spec(
            CLEAN_DUPLICATE_RATE,
            CLEANED_CORPUS,
            sources,
            description="share of duplicates under cleaning.max_duplicate_rate",
        ),
        _check_spec(
            CLEAN_QUARANTINE_RATE,
            CLEANED_CORPUS,
            sources,
            description="share set aside under cleaning.max_quarantine_rate",
        ),
    ]


def cleaned_corpus_asset(sources: dg.PartitionsDefinition, op_tags: dict) -> dg.AssetsDefinition:
    @dg.asset(
        key=CLEANED_CORPUS,
        partitions_def=sources,
        group_name=GROUP,
        kinds=KINDS,
        deps=[RAW_DOCUMENTS],
        op_tags=op_tags,
        check_specs=_cleaned_check_specs(sources),
    )
    def cleaned_corpus(
        context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource
    ) -> dg.MaterializeResult:
        """Unicode-repaired, boilerplate-free, PII-redacted, deduplicated text of one source."""
        config = platform.config
        key = context.partition_key
        started = time.perf_counter()
        upstream = _upstream(storage, RAW_DOCUMENTS_DATA, key)
        rules = cleaning_rules(config.cleaning)
        workers = worker_count(config.documents.workers)
        result = CleanedCorpus(rows=[], quarantine=[])
        checks = CleanedRowChecks(rules, config.cleaning.min_quality)
        written = _write_cleaned(storage, key, upstream, rules, result, checks, workers, context.run.run_id)
        _write_quarantine(storage, CLEANED_QUARANTINE_DATA, key, result.quarantine, context.run.run_id)
        return dg.MaterializeResult(
            data_version=dg.DataVersion(written.version),
            metadata={
                **_written_metadata(written),
                "upstream_raw_documents_version": upstream,
                **_cleaned_metadata(result),
                "seconds": time.perf_counter() - started,
                "workers": workers,
            },
            check_results=_cleaned_checks(result, checks, config.cleaning),
        )

    return cleaned_corpus


def _write_cleaned(
    storage: StorageResource,
    key: str,
    upstream: str,
    rules: CleaningRules,
    result: CleanedCorpus,
    checks: CleanedRowChecks,
    workers: int,
    run_id: str,
):
    """Clean the partition's raw documents into a new cleaned corpus version, and store the rows set aside beside it.

    Both are the previous rows the next run reuses: a document set aside is not cleaned again either.
    """
    previous = PreviousRows.joined(
        [
            PreviousRows.of_dataset(storage.datasets, dataset, key, corpus.PREVIOUS_KEY_COLUMNS)
            for dataset in (CLEANED_CORPUS_DATA, CLEANED_SET_ASIDE_DATA)
        ]
    )
    with tempfile.TemporaryDirectory(prefix="set-aside-") as folder:
        spool = RowSpool(folder, corpus.SET_ASIDE_SCHEMA)
        batches = cleaned_batches(
            _upstream_rows(storage, RAW_DOCUMENTS_DATA, key, upstream),
            previous,
            rules,
            result,
            set_aside=spool.add,
            batch_bytes=batching.BATCH_TEXT_BYTES,
            workers=workers,
        )
        written = storage.datasets.write(CLEANED_CORPUS_DATA, key, observed(batches, checks.observe), run_id=run_id)
        storage.datasets.write(CLEANED_SET_ASIDE_DATA, key, spool.batches(), run_id=run_id)
    return written


def _upstream(storage: StorageResource, dataset: Dataset, key: str) -> str:
    """The upstream version this run reads, pinned so every batch comes from the same file."""
    version = storage.datasets.current_version(dataset, key)
    if version is None:
        raise dg.Failure(f"{dataset.name} for source {key!r} has not been materialized; materialize it first")
    return version


def _upstream_rows(storage: StorageResource, dataset: Dataset, key: str, version: str):
    return rows_of(storage.datasets.iter_batches(dataset, key, version=version, batch_rows=batching.READ_ROWS))


def _cleaned_checks(
    result: CleanedCorpus, checks: CleanedRowChecks, cleaning: CleaningConfig
) -> list[dg.AssetCheckResult]:
    return [
        check_result(CLEAN_IDS_UNIQUE, checks.ids.outcome),
        check_result(CLEAN_TEXT_LENGTH, checks.length),
        check_result(CLEAN_QUALITY, checks.quality.outcome),
        check_result(CLEAN_NO_PII, checks.no_pii.outcome),
        check_result(CLEAN_NO_RANDOM_TOKENS, checks.random_tokens.outcome, severity=dg.AssetCheckSeverity.WARN),
        rate_check(
            CLEAN_DUPLICATE_RATE,
            len(result.duplicates),
            result.inputs,
            cleaning.max_duplicate_rate,
            what="documents are duplicates",
            severity=dg.AssetCheckSeverity.WARN,
        ),
        rate_check(
            CLEAN_QUARANTINE_RATE,
            len(result.rejected),
            result.inputs,
            cleaning.max_quarantine_rate,
            what="documents set aside",
        ),
    ]


def _cleaned_metadata(result: CleanedCorpus) -> dict:
    return {
        "documents": result.documents,
        "cleaned": result.cleaned,
        "reused": result.reused,
        "exact_duplicates": sum(d["kind"] == "exact_duplicate" for d in result.duplicates),
        "near_duplicates": sum(d["kind"] == "near_duplicate" for d in result.duplicates),
        "set_aside": len(result.rejected),
        "set_aside_preview": markdown_table(result.quarantine, ["locator", "kind", "reason"]),
        "pii_redactions_by_kind": counts(dict(result.pii_counts)),
        "cleaning_version": cleaning_version(),
        "mean_quality": result.mean_quality,
        "preview": markdown_table(result.preview, ["locator", "title", "quality", "text"]),
    }


def _chunk_check_specs(sources: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    return [
        _check_spec(CHUNK_IDS_UNIQUE, CHUNKS, sources, blocking=True, description="chunk_id is unique and non-null"),
        _check_spec(CHUNK_TEXT_NOT_EMPTY, CHUNKS, sources, blocking=True, description="every chunk has text"),
        _check_spec(
            CHUNK_TOKENS_WITHIN_LIMIT,
            CHUNKS,
            sources,
            blocking=True,
            description="1 <= token_count <= chunking.max_tokens",
        ),
    ]


def _write_chunks(
    config: PlatformConfig,
    storage: StorageResource,
    key: str,
    upstream: str,
    result: ChunkedCorpus,
    checks: ChunkRowChecks,
    run_id: str,
):
    """Chunk the partition's cleaned corpus into a new chunks version; (written, chunker version, workers)."""
    model_dir = resolve_sentence_transformer(config.embedding.model, allow_download=config.embedding.allow_download)
    version = chunker_version(config.embedding.model, config.chunking.max_tokens, config.chunking.overlap)
    chunker = ChunkerSettings(model_dir, config.chunking.max_tokens, config.chunking.overlap)
    workers = worker_count(config.documents.workers)
    previous = PreviousRows.of_dataset(storage.datasets, CHUNKS_DATA, key, chunk_table.PREVIOUS_KEY_COLUMNS)
    batches = chunk_batches(
        _upstream_rows(storage, CLEANED_CORPUS_DATA, key, upstream),
        previous,
        chunker,
        result,
        version=version,
        batch_bytes=batching.BATCH_TEXT_BYTES,
        workers=workers,
    )
    return storage.datasets.write(CHUNKS_DATA, key, observed(batches, checks.observe), run_id=run_id), version, workers


def chunks_asset(sources: dg.PartitionsDefinition, op_tags: dict) -> dg.AssetsDefinition:
    @dg.asset(
        key=CHUNKS,
        partitions_def=sources,
        group_name=GROUP,
        kinds=KINDS,
        deps=[CLEANED_CORPUS],
        op_tags=op_tags,
        check_specs=_chunk_check_specs(sources),
    )
    def chunks(
        context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource
    ) -> dg.MaterializeResult:
        """Chunks of at most chunking.max_tokens embedding-model tokens, with their section heading."""
        config = platform.config
        key = context.partition_key
        started = time.perf_counter()
        upstream = _upstream(storage, CLEANED_CORPUS_DATA, key)
        result, checks = ChunkedCorpus(rows=[]), ChunkRowChecks(config.chunking.max_tokens)
        written, version, workers = _write_chunks(config, storage, key, upstream, result, checks, context.run.run_id)
        return dg.MaterializeResult(
            data_version=dg.DataVersion(written.version),
            metadata={
                **_written_metadata(written),
                "upstream_cleaned_corpus_version": upstream,
                **_chunk_metadata(result, version, config.chunking),
                "seconds": time.perf_counter() - started,
                "workers": workers,
            },
            check_results=_chunk_checks(checks),
        )

    return chunks


def _chunk_metadata(result: ChunkedCorpus, version: str, chunking) -> dict:
    tokens = result.tokens
    return {
        "chunks": result.chunks,
        "documents_chunked": result.documents_chunked,
        "documents_reused": result.documents_reused,
        "chunker_version": version,
        "max_tokens": chunking.max_tokens,
        "overlap": chunking.overlap,
        "mean_tokens": float(np.mean(tokens)) if len(tokens) else 0.0,
        "p95_tokens": float(np.percentile(tokens, 95)) if len(tokens) else 0.0,
        "preview": markdown_table(result.preview, ["locator", "heading", "position", "token_count", "text"]),
    }


def _chunk_checks(checks: ChunkRowChecks) -> list[dg.AssetCheckResult]:
    return [
        check_result(CHUNK_IDS_UNIQUE, checks.ids.outcome),
        check_result(CHUNK_TEXT_NOT_EMPTY, checks.text.outcome),
        check_result(CHUNK_TOKENS_WITHIN_LIMIT, checks.tokens.outcome),
    ]
