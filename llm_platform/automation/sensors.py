"""Sensors: new, changed or removed source files request a run of that source only."""


import json

import dagster as dg

from llm_platform.automation.jobs import INDEX_JOB
from llm_platform.config import PlatformConfig
from llm_platform.documents.sources import list_source, listing_fingerprint

SOURCE_SENSOR = "source_files_sensor"


def source_run_requests(config: PlatformConfig, cursor: dict[str, str]) -> tuple[list[dg.RunRequest], dict[str, str], list[str]]:
    """Run requests for sources whose listing changed since `cursor`, the new cursor and any listing errors."""
    requests, errors, updated = [], [], dict(cursor)
    for source in config.sources:
        try:
            fingerprint = listing_fingerprint(list_source(source.location, source.glob))
        except (OSError, ValueError) as exc:
            errors.append(f"{source.name}: {exc}")
            continue
        if cursor.get(source.name) == fingerprint:
            continue
        updated[source.name] = fingerprint
        requests.append(dg.RunRequest(run_key=f"{source.name}:{fingerprint}", partition_key=source.name, tags={"llm_platform/source": source.name}))
    return requests, updated, errors


def build_source_sensor(config: PlatformConfig, minimum_interval_seconds: int = 30) -> dg.SensorDefinition:
    """One sensor over all configured sources (off until turned on in the UI or by the CLI)."""

    @dg.sensor(name=SOURCE_SENSOR, job_name=INDEX_JOB, minimum_interval_seconds=minimum_interval_seconds, default_status=dg.DefaultSensorStatus.STOPPED)
    def source_files_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        """Requests an index_job run for each source whose files were added, changed or removed."""
        cursor = json.loads(context.cursor) if context.cursor else {}
        requests, updated, errors = source_run_requests(config, cursor)
        for error in errors:
            context.log.warning(f"cannot list source {error}")
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(updated, sort_keys=True))

    return source_files_sensor
