"""The document stages over a large source split into shards, each stage of each shard one step in its own process.

    .venv/bin/python benchmarks/sharded_scale.py --megabytes 40 --shards 4
    .venv/bin/python benchmarks/sharded_scale.py --megabytes 2000 --shards 64 --keep
        # the issue's 2 GB: hours on one core

The source is built from real documents: the README (Markdown or reST) of every
installed package, as `document_prose.py` finds them, copied until it holds
`--megabytes` of text. Copy 0 is the README itself; in copy k every lowercase
word of four or more letters that does not touch markup (no `:`, `-`, `/`, `.`,
`_` or `\\` beside it, so directives, roles, URLs and code names stay) becomes
another word of the same length from the READMEs' own vocabulary, by a
permutation drawn for copy k, and every digit of a number that touches no
letter becomes another digit, by a permutation of 0-9 drawn for copy k (so the
phone matcher, which remembers the stretches of digits it has read, reads new
ones, as it would in distinct documents). Lengths stay, so reST tables and
underlines still line up; a 5-word shingle survives only where none of its
words was replaced, so no copy is an exact or near duplicate of another (the
run prints how many documents cleaning kept), and each README's addresses,
keys and number shapes, which redaction must read, are in every copy.

The source has `--shards` shards (`corpus.<i>-of-<N>` partitions, split by
doc_id hash as `llm_platform.shards` says). Each stage of each shard runs as one
Dagster step in a fresh Python process (`document_memory.run_in_checkout`) with
`documents.workers: 1`, `--parallel` shards at a time (default one), so each step's figures are one core's:
MB/s over the step's duration, MB per CPU second (which other work on a shared
machine moves less), and the process's peak RSS (imports included). The shard's
MB are the bytes of its own files. The summary gives each stage's rate over all
shards and the largest peak RSS of any step (target: at most 2 GiB).

Embedding is not run unless `--embed` says so: on the CPU it would dominate for
hours over all shards, and its GPU rate is not measured here (`--keys 3 --embed 1`
embeds and syncs one full-size shard, for its steps' memory). The summary prints
chunks per MB, which with a GPU's chunks per second gives the embedding time;
docs/scale.md has the estimate.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from document_memory import run_in_checkout
from document_prose import readmes

SOURCE = "corpus"
STAGES = ("raw_documents", "cleaned_corpus", "chunks")
# With --embed: the shard's chunks embedded on this machine (its CPU, unless the config says a device) and synced.
INDEX_STAGES = ("embeddings", "vector_index")
TARGET_PEAK_MIB = 2048
SEED = 15
# A lowercase word that no markup character touches: replacing it changes prose, never structure.
_PROSE_WORD = re.compile(r"(?<![\w:\-/.\\])[a-z]{4,}(?![\w:\-/\\])")
_NUMBER = re.compile(r"(?<![A-Za-z_])\d+(?![A-Za-z_])")


def _permutations(texts: list[str], copies: int) -> list[dict[str, str]]:
    """For each copy, a mapping of every replaceable word to a word of the same
    length and of each digit to a digit (copy 0: none).
    """
    by_length: dict[int, list[str]] = defaultdict(list)
    for word in sorted({word for text in texts for word in _PROSE_WORD.findall(text)}):
        by_length[len(word)].append(word)
    rng = random.Random(SEED)
    mappings: list[dict[str, str]] = [{}]
    for _ in range(1, copies):
        mapping = dict(zip("0123456789", rng.sample("0123456789", 10), strict=True))
        for words in by_length.values():
            shuffled = rng.sample(words, len(words))
            mapping.update(zip(words, shuffled, strict=True))
        mappings.append(mapping)
    return mappings


def _perturbed(text: str, mapping: dict[str, str]) -> str:
    """`text` with its prose words and the digits of its numbers replaced as `mapping` says (digits are keys too)."""
    words = _PROSE_WORD.sub(lambda m: mapping.get(m.group(), m.group()), text)
    return _NUMBER.sub(lambda m: "".join(mapping.get(digit, digit) for digit in m.group()), words)


def write_source(folder: Path, megabytes: float) -> tuple[float, dict[str, int]]:
    """The perturbed copies of the READMEs, about `megabytes` MB; (MB written, bytes per file locator)."""
    docs = readmes()
    size = sum(len(text.encode("utf-8")) for _, _, text in docs)
    copies = max(1, round(megabytes * 1e6 / size))
    sizes: dict[str, int] = {}
    for copy, mapping in enumerate(_permutations([text for _, _, text in docs], copies)):
        (folder / f"copy-{copy:04d}").mkdir(parents=True)
        for index, (name, fmt, text) in enumerate(docs):
            locator = f"copy-{copy:04d}/{index:04d}-{name}.{fmt}"
            body = _perturbed(text, mapping) if mapping else text
            (folder / locator).write_text(body, encoding="utf-8")
            sizes[locator] = (folder / locator).stat().st_size
    return sum(sizes.values()) / 1e6, sizes


def write_config(path: Path, source: Path, shards: int) -> None:
    path.write_text(
        f"sources:\n  - name: {SOURCE}\n    location: {source}\n    glob: '**/*'\n  "
        f"  shards: {shards}\ndocuments:\n  workers: 1\n",
        encoding="utf-8",
    )


def shard_megabytes(sizes: dict[str, int], shards: int) -> dict[str, float]:
    """MB of the files each shard owns, by partition key."""
    from llm_platform.identity import doc_id_for
    from llm_platform.shards import shards_of

    owned: dict[str, float] = defaultdict(float)
    parts = shards_of(SOURCE, shards)
    for locator, size in sizes.items():
        doc_id = doc_id_for(SOURCE, locator)
        owned[next(shard.key for shard in parts if shard.owns(doc_id))] += size / 1e6
    return {shard.key: owned[shard.key] for shard in parts}


def run_shards(
    here: Path,
    config: Path,
    home: Path,
    megabytes: dict[str, float],
    parallel: int = 1,
    embedded: frozenset[str] = frozenset(),
) -> dict[str, dict[str, dict]]:
    """Every stage of every shard in `megabytes` (and the index stages of those in `embedded`), each a step in a
    fresh process, `parallel` shards at a time (shards are independent, as on separate pods): {key: {stage: figures}}.
    """
    from concurrent.futures import ThreadPoolExecutor

    import document_memory

    def one_shard(key: str) -> dict[str, dict]:
        started = time.perf_counter()
        figures = {
            stage: run_in_checkout(document_memory.__file__, here, "_stage", str(config), str(home), stage, key)
            for stage in (STAGES + INDEX_STAGES if key in embedded else STAGES)
        }
        with print_lock:
            print(f"  {key}: {time.perf_counter() - started:.0f}s", flush=True)
            print_shard(key, figures, megabytes[key])
        return figures

    print_lock = threading.Lock()
    print(HEADER, flush=True)
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return dict(zip(megabytes, pool.map(one_shard, megabytes), strict=True))


HEADER = (
    f"  {'shard':<16} {'stage':<15} {'MB':>7} {'seconds':>8} {'MB/s':>6} {'cpu s':>7} "
    f"{'MB/cpu-s':>9} {'peak RSS MiB':>13}  rows, failed checks"
)


def print_shard(key: str, stages: dict[str, dict], megabytes: float) -> None:
    """One shard's figures, a line per stage, printed as soon as the shard is done (a long run shows progress)."""
    for stage, run in stages.items():
        print(
            f"  {key:<16} {stage:<15} {megabytes:7.1f} {run['seconds']:8.1f} "
            f"{megabytes / run['seconds']:6.2f} {run['cpu_seconds']:7.1f} "
            f"{megabytes / run['cpu_seconds']:9.2f} {run['peak_rss_mib']:13.0f}  "
            f"{run['rows']} {' '.join(run['failed_checks'])}",
            flush=True,
        )


def report(runs: dict[str, dict[str, dict]], megabytes: dict[str, float]) -> None:
    total = sum(megabytes.values())
    print(f"per stage over {len(runs)} shards, {total:.1f} MB (one core per step):")
    inverse_rate = 0.0
    for stage in STAGES:
        seconds = sum(runs[key][stage]["seconds"] for key in runs)
        cpu = sum(runs[key][stage]["cpu_seconds"] for key in runs)
        peak = max(runs[key][stage]["peak_rss_mib"] for key in runs)
        inverse_rate += cpu / total
        print(
            f"  {stage:<15} {total / seconds:6.2f} MB/s  {total / cpu:6.2f} MB/cpu-s  largest peak RSS {peak:5.0f} MiB"
        )
    peak = max(run["peak_rss_mib"] for stages in runs.values() for run in stages.values())
    print(
        f"  {'end to end':<15} {1 / inverse_rate:6.2f} MB/cpu-s  largest peak RSS of any step {peak:.0f} MiB "
        f"(target <= {TARGET_PEAK_MIB}: {'ok' if peak <= TARGET_PEAK_MIB else 'over'})"
    )
    for stage in INDEX_STAGES:
        ran = [runs[key][stage] for key in runs if stage in runs[key]]
        if ran:
            rows = sum(run["rows"].get("computed", run["rows"].get("upserted", 0)) for run in ran)
            cpu = sum(run["cpu_seconds"] for run in ran)
            print(
                f"  {stage:<15} {rows} rows in {cpu:.0f} cpu-s ({rows / cpu:.0f} per cpu-s)  largest peak RSS "
                f"{max(run['peak_rss_mib'] for run in ran):5.0f} MiB"
            )
    cleaned = sum(runs[key]["cleaned_corpus"]["rows"].get("documents", 0) for key in runs)
    raw = sum(runs[key]["raw_documents"]["rows"].get("documents", 0) for key in runs)
    chunks = sum(runs[key]["chunks"]["rows"].get("chunks", 0) for key in runs)
    print(
        f"  documents: {raw} raw, {cleaned} cleaned (the rest set aside: duplicates, low "
        f"quality); chunks: {chunks}, {chunks / total:.0f} per MB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=float, default=40.0, help="size of the source in MB of text (default 40)")
    parser.add_argument("--shards", type=int, default=4, help="shards of the source (default 4)")
    parser.add_argument(
        "--only", type=int, default=None, help="run only the first ONLY shards (the rest are built but not run)"
    )
    parser.add_argument(
        "--keys",
        default=None,
        help="run only these shards, by index, comma-separated (e.g. 3,4,6: to re-run the shards a change concerns "
        "on the same source; the rest are built but not run)",
    )
    parser.add_argument(
        "--parallel",
        type=int,
        default=1,
        help="shards run at once, each step still one process with one worker (default 1; per-step CPU figures "
        "are unchanged, wall-clock MB/s falls when the machine has fewer free cores than this)",
    )
    parser.add_argument(
        "--embed",
        type=int,
        default=0,
        metavar="N",
        help="also embed the first N shards run and sync them to the LanceDB table (embeddings and vector_index "
        "steps, on this machine's CPU: about 15 minutes per 30 MB shard; default 0)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print it")
    args = parser.parse_args()
    here = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(here))

    work = Path(tempfile.mkdtemp(prefix="llm_platform_scale_"))
    try:
        started = time.perf_counter()
        total, sizes = write_source(work / "source", args.megabytes)
        megabytes = shard_megabytes(sizes, args.shards)
        print(
            f"source: {total:.1f} MB in {len(sizes)} files, {args.shards} shards "
            f"(built in {time.perf_counter() - started:.0f}s)",
            flush=True,
        )
        write_config(work / "platform.yaml", work / "source", args.shards)
        keys = list(megabytes)[: args.only]
        if args.keys:
            keys = [f"{SOURCE}.{int(index)}-of-{args.shards}" for index in args.keys.split(",")]
        chosen = {key: megabytes[key] for key in keys}
        embedded = frozenset(list(chosen)[: args.embed])
        report(run_shards(here, work / "platform.yaml", work / "home", chosen, args.parallel, embedded), chosen)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
