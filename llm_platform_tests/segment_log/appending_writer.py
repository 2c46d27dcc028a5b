"""Append numbered records to a segment folder until killed, printing each number once `append` returned.

`python -m llm_platform_tests.segment_log.appending_writer FOLDER`: what a test kills
with SIGKILL to see which acknowledged records survive.
"""

import json
import sys

from llm_platform.segment_log import SegmentWriter


def main(folder: str) -> None:
    writer = SegmentWriter(folder, max_bytes=4096, max_seconds=3600)  # small segments: kills also land near rotations
    number = 0
    while True:
        writer.append(json.dumps({"n": number, "padding": "x" * 100}).encode())
        print(number, flush=True)
        number += 1


if __name__ == "__main__":
    main(sys.argv[1])
