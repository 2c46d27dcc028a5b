"""Speed of the document stages (raw_documents -> cleaned_corpus -> chunks) on real READMEs, per core and on all cores.

    .venv/bin/python benchmarks/document_speed.py
    .venv/bin/python benchmarks/document_speed.py --compare-with /path/to/older/checkout --workers 1,2
    .venv/bin/python benchmarks/document_speed.py --compare-with /path/to/older/checkout --compare-workers 1 --workers 1

The corpus is the long description (Markdown or reStructuredText) of every package
installed in this environment (as `document_prose.py` finds them), one file each.
Each stage runs as one Dagster step in its own fresh Python process, on a fresh
storage home, with `documents.workers` set to each count asked for. MB/s is the
corpus's megabytes over the run of that one step (the asset function, its
checks and Dagster's own work for the step); "MB/cpu-s" is over the CPU seconds of the step's process and its
worker processes, which other work on a shared machine moves far less than wall
time: it is the rate per core.

`--compare-with PATH` runs the same corpus through another checkout (its .venv,
or this Python with PATH first on sys.path) with its own defaults, or with
`documents.workers` set to `--compare-workers` (compare like with like: a
default of several workers adds each worker's imports to the CPU seconds), and says
whether each stage wrote the same dataset (the content hash in its version) as
this checkout did.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from document_memory import run_in_checkout
from document_prose import readmes

SOURCE = "corpus"
STAGES = ("raw_documents", "cleaned_corpus", "chunks")
TARGET_MB_PER_CPU_SECOND = 2.0


def write_readmes(folder: Path) -> float:
    """One file per installed package's README; returns the megabytes of text written."""
    folder.mkdir(parents=True)
    written = 0
    for index, (name, fmt, text) in enumerate(readmes()):
        path = folder / f"{index:04d}-{name}.{fmt}"
        path.write_text(text, encoding="utf-8")
        written += path.stat().st_size
    return written / 1e6


def write_config(path: Path, corpus: Path, workers: int | None) -> None:
    documents = f"documents:\n  workers: {workers}\n" if workers else ""
    path.write_text(
        f"sources:\n  - name: {SOURCE}\n    location: {corpus}\n    glob: '**/*'\n{documents}", encoding="utf-8"
    )


def _all_cpu_seconds() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _stage_dataset(stage: str):
    """The stage's dataset handle; the stage's name where the measured checkout
    predates handles (a reference run of older code).
    """
    from llm_platform import datasets

    if not hasattr(datasets, "Dataset"):
        return stage
    from llm_platform.documents.datasets import CHUNKS_DATA, CLEANED_CORPUS_DATA, RAW_DOCUMENTS_DATA

    return {dataset.name: dataset for dataset in (RAW_DOCUMENTS_DATA, CLEANED_CORPUS_DATA, CHUNKS_DATA)}[stage]


def timed_stage(config_path: str, home: str, stage: str) -> dict:
    """Materialize one document asset (its upstream already in `home`): step
    seconds, CPU of the process and its workers, output hash.
    """
    import dagster as dg

    from llm_platform.automation.jobs import INDEX_JOB
    from llm_platform.config import load_config
    from llm_platform.datasets import DatasetStore
    from llm_platform.definitions import build_definitions

    defs = build_definitions(load_config(config_path), home=home, executor="in_process")
    job = defs.resolve_job_def(INDEX_JOB)
    cpu, started = _all_cpu_seconds(), time.perf_counter()
    # Real READMEs hold addresses and numbers a blocking check may flag; the speed is measured all the same.
    result = job.execute_in_process(
        partition_key=SOURCE,
        asset_selection=[dg.AssetKey(stage)],
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    cpu, seconds = _all_cpu_seconds() - cpu, time.perf_counter() - started
    failed = sorted(
        e.check_name
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.check_name != "source_not_empty"
    )
    version = DatasetStore(home).current_version(_stage_dataset(stage), SOURCE) or ""
    import llm_platform

    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "content_hash": version.rsplit("-", 1)[-1],
        "failed_checks": failed,
        "code": str(Path(llm_platform.__file__).parents[1]),
    }


def measure(checkout: Path, config: Path, home: Path) -> dict:
    shutil.rmtree(home, ignore_errors=True)
    return {
        stage: run_in_checkout(__file__, checkout, "_timed_stage", str(config), str(home), stage) for stage in STAGES
    }


def report(label: str, stages: dict, megabytes: float, reference: dict | None) -> None:
    print(f"{label} (llm_platform imported from {stages['raw_documents']['code']}):")
    print(
        f"  {'stage':<15} {'seconds':>8} {'MB/s':>7} {'cpu s':>7} {'MB/cpu-s':>9} "
        f"{'peak RSS MiB':>13} {'same output':>12}  failed checks"
    )
    for stage, run in stages.items():
        same = (
            "-" if reference is None else ("yes" if run["content_hash"] == reference[stage]["content_hash"] else "NO")
        )
        print(
            f"  {stage:<15} {run['seconds']:8.2f} {megabytes / run['seconds']:7.2f} {run['cpu_seconds']:7.2f} "
            f"{megabytes / run['cpu_seconds']:9.2f} {run['peak_rss_mib']:13.0f} "
            f"{same:>12}  {', '.join(run['failed_checks'])}"
        )
    seconds = sum(run["seconds"] for run in stages.values())
    cpu = sum(run["cpu_seconds"] for run in stages.values())
    verdict = "ok" if megabytes / cpu >= TARGET_MB_PER_CPU_SECOND else "below"
    print(
        f"  {'end to end':<15} {seconds:8.2f} {megabytes / seconds:7.2f} {cpu:7.2f} {megabytes / cpu:9.2f}  "
        f"(target >= {TARGET_MB_PER_CPU_SECOND} MB per CPU second: {verdict})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--workers",
        default=None,
        help="documents.workers counts to run, comma-separated (default: 1 and this machine's CPU limit)",
    )
    parser.add_argument(
        "--compare-with", type=Path, help="another checkout (e.g. the code before) to run the same corpus through"
    )
    parser.add_argument(
        "--compare-workers",
        type=int,
        default=None,
        help="documents.workers for the compared checkout (default: its own default)",
    )
    args = parser.parse_args()
    here = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(here))
    from llm_platform.documents.worker_pool import cpu_limit

    counts = [int(n) for n in args.workers.split(",")] if args.workers else sorted({1, cpu_limit()})
    runs: list[tuple[str, Path, int | None]] = [(f"this checkout, {n} worker(s)", here, n) for n in counts]
    if args.compare_with:
        runs.insert(
            0,
            (
                f"compared: {args.compare_with}, {args.compare_workers or 'default'} worker(s)",
                args.compare_with.resolve(),
                args.compare_workers,
            ),
        )

    work = Path(tempfile.mkdtemp(prefix="llm_platform_docspeed_"))
    try:
        megabytes = write_readmes(work / "corpus")
        files = sum(1 for p in (work / "corpus").iterdir())
        print(f"corpus: {files} READMEs of installed packages, {megabytes:.2f} MB", flush=True)
        results = {}
        for index, (label, checkout, workers) in enumerate(runs):
            config = work / f"platform-{index}.yaml"
            write_config(config, work / "corpus", workers)
            started = time.perf_counter()
            results[label] = measure(checkout, config, work / f"home-{index}")
            print(f"  {label}: {time.perf_counter() - started:.0f}s", flush=True)
        reference = next(iter(results.values()))
        for label, stages in results.items():
            report(label, stages, megabytes, reference if stages is not reference else None)
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_timed_stage":
        print(json.dumps(timed_stage(sys.argv[2], sys.argv[3], sys.argv[4])))
    else:
        sys.exit(main())
