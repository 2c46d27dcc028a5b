"""serving_log: the service's redacted query log folded into a dataset, with a query-drift check."""

import dagster as dg

from llm_platform.index.assets import PUBLISHED_INDEX
from llm_platform.metadata import markdown_table
from llm_platform.model.assets import PRODUCTION_MODEL
from llm_platform.resources.platform import PlatformConfigResource, StorageResource
from llm_platform.serving.datasets import SERVING_LOG_DATA

QUERY_DRIFT = "query_drift"
SERVING_LOG = dg.AssetKey(SERVING_LOG_DATA.name)


def _drift_check(config, storage: StorageResource, questions: list[str]) -> dg.AssetCheckResult:
    from llm_platform.index.embedding import configured_embedder
    from llm_platform.index.table import configured_table_name, open_published
    from llm_platform.serving.query_drift import corpus_vectors, measure_query_drift

    settings = config.serving
    recent = questions[-settings.query_drift_window :]
    if not recent:
        return dg.AssetCheckResult(
            check_name=QUERY_DRIFT, passed=True, description="no questions logged yet", metadata={"questions": 0}
        )
    table = open_published(storage.lancedb(), configured_table_name(config), config.index.published_tag)
    embedder = configured_embedder(config.embedding)
    drift = measure_query_drift(
        embedder.encode(recent), corpus_vectors(table), threshold=settings.query_drift_threshold
    )
    verdict = "moved away from the corpus" if drift.drifted else "within the threshold"
    return dg.AssetCheckResult(
        check_name=QUERY_DRIFT,
        passed=not drift.drifted,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"the last {drift.questions} questions' centroid is {drift.distance:.3f} "
        f"(cosine distance) from the corpus's: {verdict} "
        f"(serving.query_drift_threshold {drift.threshold})",
        metadata={
            "centroid_distance": drift.distance,
            "threshold": drift.threshold,
            "questions": drift.questions,
            "corpus_rows": drift.corpus_rows,
            "index_version": table.version,
        },
    )


@dg.asset(
    group_name="serving",
    kinds={"parquet"},
    deps=[PUBLISHED_INDEX, PRODUCTION_MODEL],
    check_specs=[
        dg.AssetCheckSpec(
            QUERY_DRIFT, asset=SERVING_LOG, description="questions' embedding centroid stays near the corpus's"
        )
    ],
)
def serving_log(context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource):
    """Every answered question (PII redacted), its answer, citations,
    latency and versions, from the service's log files.
    """
    from llm_platform.serving.query_drift import log_table
    from llm_platform.serving.query_log import query_log_folder, questions, read_query_log

    records, problems = read_query_log(storage.root)
    for problem in problems[:20]:
        context.log.warning(f"query log: {problem}")
    written = storage.datasets.write(SERVING_LOG_DATA, None, [log_table(records)], run_id=context.run.run_id)
    latencies = sorted(r["latency_ms"] for r in records if isinstance(r.get("latency_ms"), int | float))
    by_adapter: dict[str, int] = {}
    for record in records:
        by_adapter[str(record.get("adapter_version"))] = by_adapter.get(str(record.get("adapter_version")), 0) + 1
    yield dg.MaterializeResult(
        data_version=dg.DataVersion(written.version),
        metadata={
            "dataset_version": written.version,
            "path": written.path,
            "queries": len(records),
            "unreadable_lines": len(problems),
            "cached": sum(1 for r in records if r.get("cached")),
            "pii_redacted": sum(int(r.get("pii_redacted") or 0) for r in records),
            "p50_latency_ms": latencies[len(latencies) // 2] if latencies else 0.0,
            "by_adapter_version": dg.MetadataValue.json(by_adapter),
            "log_folder": query_log_folder(storage.root),
            "preview": markdown_table(records[-10:], ["question", "answer", "adapter_version", "latency_ms"]),
        },
    )
    yield _drift_check(platform.config, storage, questions(records))
