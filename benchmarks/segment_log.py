"""The service's state writer on local disk and on an S3-compatible server: cost of a durable record, cost of reading
all back.

    .venv/bin/python benchmarks/segment_log.py [records]

Writes `records` (default 500) feedback-sized records through `SegmentWriter` from
three writers (replicas) into one folder, once in a temp folder (fsync per record)
and once in a bucket of a moto server on loopback (one PUT per record; a real S3
adds network latency on top), then reads every segment back with `read_segments`,
the call `sft_dataset` and `serving_log` make. Needs the test extra (moto[server]).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.local_s3 import CREDENTIALS, running_s3_server
from llm_platform.segment_log import SegmentWriter, read_segments
from llm_platform.storage_files import ENDPOINT_ENV

REPLICAS = 3
RECORD = {
    "answer_id": "chatcmpl-0",
    "question": "How does the with statement use a context manager?",
    "answer": "x" * 200,
    "rating": 4,
    "caller": "anonymous",
    "versions": {"adapter_version": "1", "index_version": 3},
    "rated_at": 0.0,
}


def measure(folder: str, records: int) -> dict[str, float]:
    writers = [SegmentWriter(folder, max_bytes=64 * 1024 * 1024, max_seconds=3600) for _ in range(REPLICAS)]
    latencies = []
    for n in range(records):
        line = json.dumps({**RECORD, "answer_id": f"chatcmpl-{n}"}).encode()
        started = time.perf_counter()
        writers[n % REPLICAS].append(line)
        latencies.append(time.perf_counter() - started)
    started = time.perf_counter()
    read = sum(len(data.splitlines()) for _, data in read_segments(folder))
    assert read == records, f"wrote {records} records, read {read}"
    return {
        "append, median (ms)": statistics.median(latencies) * 1000,
        "append, p95 (ms)": sorted(latencies)[int(0.95 * records)] * 1000,
        f"read all {records} back (s)": time.perf_counter() - started,
    }


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    with tempfile.TemporaryDirectory() as scratch:
        local = measure(f"{scratch}/local/serving/feedback", records)
        with running_s3_server(Path(scratch) / "moto") as endpoint:
            os.environ.update({**CREDENTIALS, ENDPOINT_ENV: endpoint})
            import fsspec

            fsspec.filesystem("s3").mkdir("bench")
            remote = measure("s3://bench/home/serving/feedback", records)
    print(f"{'':40}{'local folder':>14}{'S3 (moto)':>12}")
    for name in local:
        print(f"{name:40}{local[name]:14.2f}{remote[name]:12.2f}")


if __name__ == "__main__":
    main()
