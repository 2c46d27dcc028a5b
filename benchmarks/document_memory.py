"""Peak memory and throughput of the document stages (raw_documents -> cleaned_corpus -> chunks) at two corpus sizes.

    .venv/bin/python benchmarks/document_memory.py                                  # 20 MB and 200 MB of text
    .venv/bin/python benchmarks/document_memory.py --sizes 20,60 --compare-with /work/main

The corpus is distinct text generated deterministically from a seeded pseudo-word
vocabulary (no two paragraphs alike, so nothing is deduplicated away): Markdown
files with sections, plain-text files and JSONL files of short records, in the
shares a documentation source might have. Each stage of each size runs as one
Dagster step in its own fresh Python process, on a fresh storage home, so its peak
RSS is its own (imports included; the RSS after imports is printed beside it).
MB/s is the corpus's megabytes over the step's duration (the whole asset
function, checks included); CPU seconds (all threads) are printed beside it,
since other work on a shared machine moves wall time.

`--compare-with PATH` runs the same case in another checkout (its .venv, or this
Python with PATH first on sys.path), in the same run on the same corpus, and
prints the two side by side. The target: peak RSS at most 2 GiB at any size,
which needs a slope near zero MiB per MB of text.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SOURCE = "corpus"
STAGES = ("raw_documents", "cleaned_corpus", "chunks")
TARGET_PEAK_MIB = 2048
SEED = 20260
_SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "sa",
    "ti",
    "vo",
    "an",
    "el",
    "is",
    "or",
    "un",
    "ber",
    "con",
    "dra",
    "fen",
    "gal",
    "hor",
    "jun",
    "mar",
    "pel",
    "qua",
    "ros",
    "tek",
    "vin",
    "wal",
    "zor",
)
# Shares of the corpus's bytes by kind of file, and each file's size.
_MARKDOWN_SHARE, _TEXT_SHARE = 0.5, 0.2
_FILE_BYTES = 40_000
_JSONL_FILE_BYTES = 2_000_000
_RECORD_BYTES = 1_500


def _vocabulary(rng: random.Random, size: int = 20_000) -> list[str]:
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def _sentence(rng: random.Random, words: list[str]) -> str:
    chosen = rng.choices(words, k=rng.randint(8, 20))
    return " ".join(chosen).capitalize() + "."


def _paragraph(rng: random.Random, words: list[str]) -> str:
    return " ".join(_sentence(rng, words) for _ in range(rng.randint(3, 6)))


def _document(rng: random.Random, words: list[str], size: int, markdown: bool) -> str:
    parts = [f"# {_sentence(rng, words)[:-1]}" if markdown else _sentence(rng, words)[:-1]]
    length = 0
    while length < size:
        if markdown and rng.random() < 0.2:
            parts.append(f"## {' '.join(rng.choices(words, k=3)).capitalize()}")
        parts.append(_paragraph(rng, words))
        length += len(parts[-1]) + 2
    return "\n\n".join(parts) + "\n"


def _records(rng: random.Random, words: list[str], size: int) -> str:
    lines, length = [], 0
    while length < size:
        text = _paragraph(rng, words)
        while len(text) < _RECORD_BYTES:
            text += " " + _paragraph(rng, words)
        lines.append(json.dumps({"title": _sentence(rng, words)[:-1], "text": text}))
        length += len(lines[-1]) + 1
    return "\n".join(lines) + "\n"


def write_corpus(folder: Path, megabytes: float, seed: int = SEED) -> int:
    """Distinct generated text of about `megabytes` MB as .md, .txt and .jsonl files; returns the bytes written."""
    rng = random.Random(seed)
    words = _vocabulary(rng)
    folder.mkdir(parents=True, exist_ok=True)
    total = int(megabytes * 1e6)
    written = 0
    index = 0
    for kind, share in (("md", _MARKDOWN_SHARE), ("txt", _TEXT_SHARE), ("jsonl", 1 - _MARKDOWN_SHARE - _TEXT_SHARE)):
        goal = written + total * share
        while written < goal:
            if kind == "jsonl":
                body = _records(rng, words, _JSONL_FILE_BYTES)
            else:
                body = _document(rng, words, rng.randint(_FILE_BYTES // 2, _FILE_BYTES * 3 // 2), markdown=kind == "md")
            path = folder / f"{index // 500:03d}" / f"doc-{index:06d}.{kind}"
            path.parent.mkdir(exist_ok=True)
            path.write_text(body, encoding="utf-8")
            written += path.stat().st_size
            index += 1
    return written


def write_config(path: Path, corpus: Path) -> None:
    path.write_text(f"sources:\n  - name: {SOURCE}\n    location: {corpus}\n    glob: '**/*'\n", encoding="utf-8")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_stage(config_path: str, home: str, stage: str, partition: str = SOURCE) -> dict:
    """Materialize one document asset for one partition (its upstream already in `home`); step seconds and peak RSS."""
    import dagster as dg

    from llm_platform.automation.jobs import INDEX_JOB
    from llm_platform.config import load_config
    from llm_platform.definitions import build_definitions

    defs = build_definitions(load_config(config_path), home=home, executor="in_process")
    job = defs.resolve_job_def(INDEX_JOB)
    before, cpu, started = _rss_mib(), _cpu_seconds(), time.perf_counter()
    # Real documents may hold what a blocking check flags: the stage is measured all the same, and the check named.
    result = job.execute_in_process(
        partition_key=partition,
        asset_selection=[dg.AssetKey(stage)],
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    wall = time.perf_counter() - started
    materializations = result.get_asset_materialization_events()
    if not materializations:
        sys.exit(f"{stage} {partition}: the step wrote nothing:\n{result.get_step_failure_events()}")
    # A step failed by a blocking check has no STEP_SUCCESS: its run's wall time stands in.
    seconds = (
        sum(
            event.event_specific_data.duration_ms / 1000
            for event in result.all_events
            if event.event_type == dg.DagsterEventType.STEP_SUCCESS
        )
        or wall
    )
    failed = sorted(e.check_name for e in result.get_asset_check_evaluations() if not e.passed)
    materialization = materializations[0].step_materialization_data.materialization
    counted = ("documents", "chunks", "computed", "upserted", "rows_for_source")
    rows = {k: v.value for k, v in materialization.metadata.items() if k in counted}
    import llm_platform

    code = str(Path(llm_platform.__file__).parents[1])
    return {
        "seconds": seconds,
        "cpu_seconds": _cpu_seconds() - cpu,
        "rss_after_imports_mib": before,
        "peak_rss_mib": _rss_mib(),
        "rows": rows,
        "code": code,
        "failed_checks": failed,
    }


def _python_for(checkout: Path) -> tuple[str, dict]:
    env = dict(os.environ)
    # The checkout's code first even with its own .venv: a caller run as `PYTHONPATH=$PWD ...` would import its own
    # code instead.
    env["PYTHONPATH"] = f"{checkout}{os.pathsep}{env.get('PYTHONPATH', '')}"
    venv = checkout / ".venv" / "bin" / "python"
    return (str(venv) if venv.exists() else sys.executable), env


def run_in_checkout(script: str, checkout: Path, *args: str) -> dict:
    """`script` run with `args` by `checkout`'s Python (its code first on the path); the JSON on its last line."""
    python, env = _python_for(checkout)
    done = subprocess.run(
        [python, str(Path(script).resolve()), *args], capture_output=True, text=True, cwd=checkout, env=env
    )
    if done.returncode:
        sys.exit(f"{checkout}: benchmark step {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(checkout: Path, config: Path, home: Path) -> dict:
    """The three stages in order, each in a fresh process on the same storage home."""
    shutil.rmtree(home, ignore_errors=True)
    return {stage: run_in_checkout(__file__, checkout, "_stage", str(config), str(home), stage) for stage in STAGES}


def _peak(stages: dict) -> float:
    return max(s["peak_rss_mib"] for s in stages.values())


def report(label: str, results: dict[float, dict], megabytes: dict[float, float]) -> None:
    code = next(iter(next(iter(results.values())).values()))["code"]
    print(f"{label} (llm_platform imported from {code}):")
    print(
        f"  {'MB':>6} {'stage':<15} {'seconds':>8} {'MB/s':>7} {'cpu s':>7} "
        f"{'RSS after imports':>18} {'peak RSS MiB':>13}  rows"
    )
    for size, stages in results.items():
        for stage, run in stages.items():
            print(
                f"  {megabytes[size]:6.1f} {stage:<15} {run['seconds']:8.1f} "
                f"{megabytes[size] / run['seconds']:7.2f} {run['cpu_seconds']:7.1f} "
                f"{run['rss_after_imports_mib']:18.0f} {run['peak_rss_mib']:13.0f}  {run['rows']}"
            )
    sizes = sorted(results)
    small, large = sizes[0], sizes[-1]
    slope = (
        (_peak(results[large]) - _peak(results[small])) / (megabytes[large] - megabytes[small])
        if large != small
        else 0.0
    )
    worst = max(_peak(s) for s in results.values())
    verdict = "ok" if worst <= TARGET_PEAK_MIB else "MISSED"
    print(
        f"  peak RSS {_peak(results[small]):.0f} MiB at {megabytes[small]:.1f} MB, "
        f"{_peak(results[large]):.0f} MiB at {megabytes[large]:.1f} MB; "
        f"slope {slope:.2f} MiB per MB of text; worst {worst:.0f} MiB (target <= {TARGET_PEAK_MIB})  {verdict}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes", default="20,200", help="corpus sizes in MB of text, comma-separated (default 20,200)"
    )
    parser.add_argument(
        "--compare-with", type=Path, help="another checkout (e.g. the code before streaming) to run the same case in"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print it")
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    checkouts = {"this checkout": Path(__file__).resolve().parents[1]}
    if args.compare_with:
        checkouts[f"compared: {args.compare_with}"] = args.compare_with.resolve()

    work = Path(tempfile.mkdtemp(prefix="llm_platform_docmem_"))
    megabytes, results = {}, {label: {} for label in checkouts}
    for size in sizes:
        corpus = work / f"corpus-{size:g}"
        started = time.perf_counter()
        megabytes[size] = write_corpus(corpus, size) / 1e6
        files = sum(1 for p in corpus.rglob("*") if p.is_file())
        print(
            f"corpus {size:g}: {megabytes[size]:.1f} MB in {files} files "
            f"(generated in {time.perf_counter() - started:.0f}s)",
            flush=True,
        )
        config = work / f"platform-{size:g}.yaml"
        write_config(config, corpus)
        for index, (label, checkout) in enumerate(checkouts.items()):
            started = time.perf_counter()
            results[label][size] = measure(checkout, config, work / f"home-{index}-{size:g}")
            print(f"  {label}: {time.perf_counter() - started:.0f}s", flush=True)
        shutil.rmtree(corpus) if not args.keep else None
    for label in checkouts:
        report(label, results[label], megabytes)
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_stage":
        print(json.dumps(run_stage(*sys.argv[2:])))
    else:
        sys.exit(main())
