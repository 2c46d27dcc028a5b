"""Load on the answer service over loopback: throughput, p50/p95/p99 latency and errors, cold vs cached vs during a hot swap.

    .venv/bin/python benchmarks/serving_load.py --build-tiny              # the test suite's tiny platform, built in a temp folder
    .venv/bin/python benchmarks/serving_load.py --home .llm_platform      # after `make demo` (demo config)

Every phase sends a bounded number of requests from `--clients` concurrent
clients to a service started in this process on 127.0.0.1, then stops it.
cold: distinct questions, so each one is embedded, retrieved and generated.
cached: the same questions again (the response cache answers).
hot swap: the cold questions plus cached ones while the index tag is moved and
the production alias is re-pointed to a freshly registered version (a real
adapter load and swap); errors and the versions seen are counted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_platform.config import load_config
from llm_platform.serving.server import build_service, mlflow_resource, running, wait_ready

TOPICS = ["for loops", "while loops", "the with statement", "context managers", "dictionaries", "exceptions", "augmented assignment",
          "boolean operations", "class definitions", "try statements", "raising exceptions", "dict comprehension"]
FORMS = ["How do {} work?", "Explain {}.", "What should I know about {}?", "Give an example of {}."]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", help="storage root with a published index and a production adapter")
    parser.add_argument("--config", help="platform YAML (default: $LLM_PLATFORM_CONFIG or the demo)")
    parser.add_argument("--build-tiny", action="store_true", help="build the tests' tiny platform in a temp folder first")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--questions", type=int, default=24, help="distinct questions in the cold phase")
    parser.add_argument("--cached-rounds", type=int, default=10, help="times each question is asked again in the cached phase")
    parser.add_argument("--max-tokens", type=int, default=16)
    return parser.parse_args(argv)


def build_tiny(folder: Path):
    """Index, publish, train and promote the tests' tiny platform (Python help topics) under `folder`."""
    import dagster as dg

    from llm_platform.automation.jobs import INDEX_JOB, PUBLISH_INDEX_JOB, TRAINING_JOB
    from llm_platform_tests.model_assets.conftest import Platform, write_corpus

    platform = Platform(folder, write_corpus(folder / "corpus"), str(folder / "home"), dg.DagsterInstance.ephemeral())
    config = platform.config("bench")
    for job, partition in ((INDEX_JOB, "topics"), (PUBLISH_INDEX_JOB, None), (TRAINING_JOB, None)):
        assert platform.run(job, config, partition=partition).success, f"{job} failed"
    return config, platform.home


def questions(count: int) -> list[str]:
    return [FORMS[i // len(TOPICS) % len(FORMS)].format(TOPICS[i % len(TOPICS)]) + ("" if i < len(TOPICS) * len(FORMS) else f" ({i})") for i in range(count)]


class Phase:
    """Latencies, errors and versions of one bounded batch of requests."""

    def __init__(self, name: str) -> None:
        self.name, self.latencies, self.errors, self.versions, self.seconds = name, [], [], [], 0.0
        self._lock = threading.Lock()

    def run(self, url: str, model: str, batch: list[str], clients: int, max_tokens: int) -> Phase:
        local = threading.local()

        def ask(question: str) -> None:
            client = getattr(local, "client", None) or setattr(local, "client", httpx.Client(timeout=120)) or local.client
            began = time.perf_counter()
            try:
                response = client.post(f"{url}/v1/chat/completions", json={"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": question}]})
                ok = response.status_code == 200
                versions = response.json().get("versions") if ok else None
            except httpx.HTTPError as exc:
                ok, versions = False, str(exc)
            with self._lock:
                self.latencies.append(time.perf_counter() - began)
                (self.versions.append(tuple(versions.values())) if ok else self.errors.append(versions or response.text[:200]))

        began = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(ask, batch))
        self.seconds = time.perf_counter() - began
        return self

    def row(self) -> str:
        ms = sorted(x * 1000 for x in self.latencies)
        pct = lambda p: ms[min(len(ms) - 1, int(p / 100 * len(ms)))]
        return (f"{self.name:<22}{len(ms):>9}{len(ms) / self.seconds:>10.1f}{statistics.median(ms):>10.1f}{pct(95):>10.1f}{pct(99):>10.1f}"
                f"{len(self.errors):>8}{len(set(self.versions)):>10}")


def hot_swap(service, config, home: str, stop: threading.Event) -> None:
    """Move the index tag to the previous version and back, and register the production adapter again as a new version."""
    from llm_platform.index.table import connect, open_table, publish, table_name

    table = open_table(connect(f"{home}/lancedb"), table_name(config.index.table, config.embedding.model))
    served = service.state.current.index_version
    mlflow = mlflow_resource(config, home)
    production = mlflow.production()
    time.sleep(0.5)
    publish(table, config.index.published_tag, served - 1)
    mlflow.promote(run_id=production["run_id"], artifact_path="adapter", tags=production["tags"])
    while not stop.is_set() and service.state.current.adapter_version == production["version"]:
        time.sleep(0.05)
    publish(table, config.index.published_tag, served)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.build_tiny:
        folder = Path(tempfile.mkdtemp(prefix="serving-load-"))
        config, home = build_tiny(folder)
    else:
        config, home = load_config(args.config), args.home or ".llm_platform"
    service = build_service(config, home)
    model = config.mlflow.registered_model
    cold_questions = questions(args.questions)
    with running(service, poll_seconds=0.5) as url:
        wait_ready(service)
        Phase("warm-up").run(url, model, ["warm up the model please"], 1, args.max_tokens)
        cold = Phase("cold (RAG + generate)").run(url, model, cold_questions, args.clients, args.max_tokens)
        cached = Phase("cached").run(url, model, cold_questions * args.cached_rounds, args.clients, args.max_tokens)
        stop = threading.Event()
        swapper = threading.Thread(target=hot_swap, args=(service, config, home, stop))
        swapper.start()
        swap = Phase("during hot swap").run(url, model, [q + " (swap)" for q in cold_questions] + cold_questions * args.cached_rounds, args.clients, args.max_tokens)
        stop.set()
        swapper.join()
    print(f"service on 127.0.0.1, {args.clients} concurrent clients, max_tokens {args.max_tokens}, versions now {service.state.current.versions()}")
    print(f"{'phase':<22}{'requests':>9}{'req/s':>10}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'errors':>8}{'versions':>10}")
    for phase in (cold, cached, swap):
        print(phase.row())
    for phase in (cold, cached, swap):
        for error in phase.errors[:3]:
            print(f"  {phase.name} error: {error}")
    return 1 if any(p.errors for p in (cold, cached, swap)) else 0


if __name__ == "__main__":
    sys.exit(main())
