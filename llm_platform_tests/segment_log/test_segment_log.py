"""Per-replica segments: durable per record, rotated by size and age on a
disk, one object per record on S3, all read back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fsspec
import pytest

from llm_platform.segment_log import SegmentWriter, read_segments
from llm_platform_tests.processes import stop_process_group

ROOMY = 1024 * 1024
KILLED_AFTER = 200  # acknowledged records before the SIGKILL: several 4 KiB segments


def lines(n: int) -> list[bytes]:
    return [json.dumps({"n": i, "text": "x" * 40}).encode() for i in range(n)]


def read_back(folder: str) -> list[int]:
    return [json.loads(line)["n"] for _, data in read_segments(folder) for line in data.splitlines()]


def test_a_local_segment_past_max_bytes_rotates_and_every_record_is_read_back_in_order(tmp_path):
    writer = SegmentWriter(str(tmp_path), max_bytes=200, max_seconds=3600)

    for line in lines(10):
        writer.append(line)

    segments = sorted(tmp_path.glob("*.jsonl"))
    assert len(segments) > 1 and all(p.stat().st_size <= 200 for p in segments)
    assert read_back(str(tmp_path)) == list(range(10))


def test_a_local_segment_older_than_max_seconds_rotates(tmp_path):
    now = [0.0]
    writer = SegmentWriter(str(tmp_path), max_bytes=ROOMY, max_seconds=60, clock=lambda: now[0])

    writer.append(lines(1)[0])
    now[0] = 59.0
    writer.append(lines(2)[1])
    now[0] = 60.0
    writer.append(lines(3)[2])

    assert [len(p.read_text().splitlines()) for p in sorted(tmp_path.glob("*.jsonl"))] == [2, 1]


def test_each_local_record_is_fsynced_before_append_returns(tmp_path, monkeypatch):
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    writer = SegmentWriter(str(tmp_path / "log"), max_bytes=ROOMY, max_seconds=3600)

    for line in lines(3):
        writer.append(line)
        assert Path(writer.current).read_bytes().endswith(line + b"\n")

    # the folder once (the new segment's name), then the file once per record
    assert len(synced) == 4


def test_after_a_failed_write_the_next_record_starts_a_new_segment(tmp_path, monkeypatch):
    writer = SegmentWriter(str(tmp_path), max_bytes=ROOMY, max_seconds=3600)
    writer.append(b'{"n": 0}')
    failing = writer.current
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space left on device")))

    with pytest.raises(OSError):
        writer.append(b'{"n": 1}')
    monkeypatch.undo()
    writer.append(b'{"n": 2}')

    assert writer.current != failing and Path(writer.current).read_bytes() == b'{"n": 2}\n'


def test_two_writers_in_one_process_never_share_a_segment(tmp_path):
    first, second = (SegmentWriter(str(tmp_path), max_bytes=ROOMY, max_seconds=3600) for _ in range(2))

    first.append(b'{"n": 0}')
    second.append(b'{"n": 1}')

    assert first.current != second.current and len(list(tmp_path.glob("*.jsonl"))) == 2


def test_a_local_writer_killed_mid_stream_keeps_every_acknowledged_record_once(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "llm_platform_tests.segment_log.appending_writer", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        acknowledged = [int(process.stdout.readline()) for _ in range(KILLED_AFTER)]
        os.kill(process.pid, signal.SIGKILL)
        acknowledged += [int(line) for line in process.stdout.read().split()]
    finally:
        stop_process_group(process)

    segments = read_segments(str(tmp_path))
    records = [line for _, data in segments for line in data.decode().splitlines()]
    parsed = [json.loads(line)["n"] for line in records[:-1]]
    parsed += [json.loads(records[-1])["n"]] if records[-1].endswith("}") else []  # a torn last line may be the kill's
    assert len(segments) > 1 and parsed == sorted(set(parsed))
    assert set(acknowledged) <= set(parsed)


def test_a_missing_folder_reads_as_no_segments(tmp_path):
    assert read_segments(str(tmp_path / "never-written")) == []


def test_on_s3_each_record_is_its_own_object_read_back_in_order(bucket):
    folder = f"{bucket}/home/serving/query_log"
    writer = SegmentWriter(folder, max_bytes=1024, max_seconds=3600)

    for line in lines(12):
        writer.append(line)

    fs, root = fsspec.core.url_to_fs(folder)
    assert len(fs.find(root)) == 12
    assert read_back(folder) == list(range(12))


def test_on_s3_concurrent_appends_each_land_as_their_own_object(bucket):
    folder = f"{bucket}/home/serving/feedback"
    writer = SegmentWriter(folder, max_bytes=1024, max_seconds=3600)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(writer.append, lines(24)))

    assert sorted(read_back(folder)) == list(range(24))
