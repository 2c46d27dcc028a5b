"""Sensors: new, changed or removed source files request a run of the shards that read them only."""

import json

import dagster as dg

from llm_platform.automation.jobs import INDEX_JOB
from llm_platform.config import PlatformConfig
from llm_platform.documents.sources import files_read_by, list_source, listing_fingerprint
from llm_platform.shards import shards_of

SOURCE_SENSOR = "source_files_sensor"


def source_run_requests(
    config: PlatformConfig, cursor: dict[str, str]
) -> tuple[list[dg.RunRequest], dict[str, str], list[str]]:
    """Run requests for partitions whose files changed since `cursor`, the new cursor and any listing errors.

    The cursor holds one fingerprint per partition key, over the files that partition
    reads: a changed file requests its shard only (a JSONL file, read by every shard,
    requests them all); a source of one shard is one key, its name.
    """
    keys = set(config.partition_keys)
    requests, errors, updated = [], [], {key: value for key, value in cursor.items() if key in keys}
    for source in config.sources:
        try:
            files = list_source(source.location, source.glob)
        except (OSError, ValueError) as exc:
            errors.append(f"{source.name}: {exc}")
            continue
        for shard in shards_of(source.name, source.shards):
            fingerprint = listing_fingerprint(files_read_by(shard, files))
            if cursor.get(shard.key) == fingerprint:
                continue
            updated[shard.key] = fingerprint
            requests.append(
                dg.RunRequest(
                    run_key=f"{shard.key}:{fingerprint}",
                    partition_key=shard.key,
                    tags={"llm_platform/source": source.name},
                )
            )
    return requests, updated, errors


def build_source_sensor(config: PlatformConfig, minimum_interval_seconds: int = 30) -> dg.SensorDefinition:
    """One sensor over all configured sources (off until turned on in the UI or by the CLI)."""

    @dg.sensor(
        name=SOURCE_SENSOR,
        job_name=INDEX_JOB,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def source_files_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        """Requests an index_job run for each source (or shard) whose files were added, changed or removed."""
        cursor = json.loads(context.cursor) if context.cursor else {}
        requests, updated, errors = source_run_requests(config, cursor)
        for error in errors:
            context.log.warning(f"cannot list source {error}")
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(updated, sort_keys=True))

    return source_files_sensor
