"""What start-up costs: the code location, the CLI, one search, and an unchanged re-run.

    .venv/bin/python benchmarks/startup.py [--repeats 5]

Every figure is the median wall time of fresh processes (cold imports each time; the
OS page cache is warm after the first, as it is on a machine that runs the platform).
Beside each figure stands what a user would otherwise pay:

- `import llm_platform.definitions` beside `import dagster` (the floor: Dagster itself)
  and beside importing the libraries the old layout loaded eagerly (torch,
  transformers, peft, lancedb, scipy, pandas, datasketch);
- `dagster asset list` and `llm-platform --help`;
- `llm-platform search` end to end on the demo index (built first, in-process, in a
  temporary home; the query encoder, the model's exported fp32 ONNX graph, loads
  inside the timed process; the first search, which exports it, is timed apart);
- an unchanged re-run of one demo source through `dagster asset materialize` (the
  default multiprocess executor: one process per step, each importing the code
  location) beside the same run in-process.

Targets (issue 10): definitions <= 2 s, asset list <= 4 s, --help <= 0.5 s,
search <= 3 s, CLI re-run <= 3x in-process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
DEMO_CONFIG = Path(__file__).resolve().parents[1] / "llm_platform" / "demo" / "config.yaml"
EAGER = "import torch, transformers, peft, lancedb, scipy.stats, pandas, pandera.pandas, datasketch"
SOURCE = "faq"
DOCUMENT_ASSETS = "raw_documents,cleaned_corpus,chunks,embeddings,vector_index"


def _wall(command: list[str], env: dict[str, str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _build_demo_index(env: dict[str, str]) -> None:
    """The demo's index job for every source, in-process, in the benchmark's home."""
    code = (
        "import dagster as dg\n"
        "from llm_platform.config import load_config\n"
        "from llm_platform.definitions import build_definitions\n"
        "from llm_platform.automation.jobs import INDEX_JOB, PUBLISH_INDEX_JOB\n"
        "config = load_config()\n"
        "defs = build_definitions(config, executor='in_process')\n"
        "instance = dg.DagsterInstance.get()\n"
        "for source in config.source_names:\n"
        "    assert "
        "defs.resolve_job_def(INDEX_JOB).execute_in_process(instance=instance, "
        "partition_key=source).success\n"
        "assert defs.resolve_job_def(PUBLISH_INDEX_JOB).execute_in_process(instance=instance).success\n"
    )
    subprocess.run(_python(code), env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _in_process_rerun(env: dict[str, str]) -> list[str]:
    code = (
        "import dagster as dg\n"
        "from llm_platform.definitions import build_definitions\n"
        "from llm_platform.config import load_config\n"
        "defs = build_definitions(load_config(), executor='in_process')\n"
        f"job = defs.resolve_implicit_global_asset_job_def()\n"
        f"selection = [dg.AssetKey(k) for k in {DOCUMENT_ASSETS.split(',')!r}]\n"
        "assert "
        "job.get_subset(asset_selection=set(selection)).execute_in_process(instance=dg.DagsterInstance.get(), "
        f"partition_key={SOURCE!r}).success\n"
    )
    return _python(code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "LLM_PLATFORM_CONFIG": str(DEMO_CONFIG),
            "LLM_PLATFORM_HOME": f"{tmp}/home",
            "DAGSTER_HOME": f"{tmp}/dagster",
        }
        Path(env["DAGSTER_HOME"]).mkdir()
        rows = [
            ("python -c pass", _wall(_python("pass"), env, args.repeats), None, None),
            ("import dagster (floor)", _wall(_python("import dagster"), env, args.repeats), None, None),
            ("import eager heavy libraries (old layout)", _wall(_python(EAGER), env, args.repeats), None, None),
            (
                "import llm_platform.definitions",
                _wall(_python("import llm_platform.definitions"), env, args.repeats),
                2.0,
                None,
            ),
            (
                "dagster asset list",
                _wall([str(BIN / "dagster"), "asset", "list", "-m", "llm_platform.definitions"], env, args.repeats),
                4.0,
                None,
            ),
            ("llm-platform --help", _wall([str(BIN / "llm-platform"), "--help"], env, args.repeats), 0.5, None),
        ]
        print("building the demo index (in-process) ...", file=sys.stderr, flush=True)
        _build_demo_index(env)
        search = [str(BIN / "llm-platform"), "search", "How do I reset my password?", "-k", "5"]
        # The first search on a machine exports the model's ONNX graphs (once per machine
        # and model); it is timed on its own, in an empty export cache.
        env["LLM_PLATFORM_ONNX_CACHE"] = f"{tmp}/onnx"
        rows.append(("first search on a machine (ONNX export, once)", _wall(search, env, 1), None, None))
        rows.append(("llm-platform search (hybrid, demo index)", _wall(search, env, args.repeats), 3.0, None))
        in_process = _wall(_in_process_rerun(env), env, max(1, args.repeats // 2))
        cli = [
            str(BIN / "dagster"),
            "asset",
            "materialize",
            "-m",
            "llm_platform.definitions",
            "--select",
            DOCUMENT_ASSETS,
            "--partition",
            SOURCE,
        ]
        through_cli = _wall(cli, env, max(1, args.repeats // 2))
        rows.append((f"unchanged re-run of {SOURCE!r}, in-process", in_process, None, None))
        rows.append((f"unchanged re-run of {SOURCE!r}, dagster CLI (multiprocess)", through_cli, None, None))
        rows.append(("  CLI / in-process", through_cli / in_process, 3.0, "x"))
    width = max(len(name) for name, *_ in rows)
    print(f"{'what':<{width}}  {'median':>8}  target")
    for name, value, target, unit in rows:
        unit = unit or "s"
        verdict = "" if target is None else f"<= {target:g}{unit}  {'ok' if value <= target else 'MISSED'}"
        print(f"{name:<{width}}  {value:>7.2f}{unit}  {verdict}")


if __name__ == "__main__":
    main()
