"""Load on the answer service over loopback: throughput, p50/p95/p99 latency and errors, cold vs cached vs during a hot
swap.

    .venv/bin/python benchmarks/serving_load.py --build-tiny          # a tiny platform (help topics) in a temp folder
    .venv/bin/python benchmarks/serving_load.py --home .llm_platform  # after `make demo` (demo config)
    .venv/bin/python benchmarks/serving_load.py --build-tiny --chaos 60 --clients 20   # the abuse mode below

Every phase sends a bounded number of requests from `--clients` concurrent
clients to a service started in this process on 127.0.0.1, then stops it.
cold: distinct questions, so each one is embedded, retrieved and generated.
cached: the same questions again (the response cache answers).
hot swap: the cold questions plus cached ones while the index tag is moved and
the production alias is re-pointed to a freshly registered version (a real
adapter load and swap); errors and the versions seen are counted.

--chaos SECONDS replaces the phases: `--clients` clients for that long each
pick at random a cached question, a new question, a stream read to the end, a
stream dropped after a few events, or a request that must be refused (a
temperature too small to sample, a lone surrogate, a blank full-text query);
then it waits for the service to drain and reports good answers, refusals,
errors by kind, p50/p95 of the good answers, and the requests in flight and
generation slots held afterwards (both must be 0).
"""

from __future__ import annotations

import argparse
import json
import random
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
from llm_platform.resources.mlflow import mlflow_resource
from llm_platform.serving.server import build_service, running, wait_ready

TOPICS = [
    "for loops",
    "while loops",
    "the with statement",
    "context managers",
    "dictionaries",
    "exceptions",
    "augmented assignment",
    "boolean operations",
    "class definitions",
    "try statements",
    "raising exceptions",
    "dict comprehension",
]
FORMS = ["How do {} work?", "Explain {}.", "What should I know about {}?", "Give an example of {}."]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", help="storage root with a published index and a production adapter")
    parser.add_argument("--config", help="platform YAML (default: $LLM_PLATFORM_CONFIG or the demo)")
    parser.add_argument("--build-tiny", action="store_true", help="build the tiny platform in a temp folder first")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--questions", type=int, default=24, help="distinct questions in the cold phase")
    parser.add_argument(
        "--cached-rounds", type=int, default=10, help="times each question is asked again in the cached phase"
    )
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument(
        "--chaos", type=float, metavar="SECONDS", help="run the abuse mode for this long instead of the phases"
    )
    return parser.parse_args(argv)


def build_tiny(folder: Path):
    """Index, publish, train and promote the tiny platform (Python help topics) under `folder`."""
    import dagster as dg

    from benchmarks.help_topics import TINY_SOURCE, write_tiny_platform_config
    from llm_platform.automation.jobs import INDEX_JOB, PUBLISH_INDEX_JOB, TRAINING_JOB
    from llm_platform.definitions import build_definitions

    config = load_config(write_tiny_platform_config(folder))
    home, instance = str(folder / "home"), dg.DagsterInstance.ephemeral()
    definitions = build_definitions(config, home=home, executor="in_process")
    for job, partition in ((INDEX_JOB, TINY_SOURCE), (PUBLISH_INDEX_JOB, None), (TRAINING_JOB, None)):
        result = definitions.resolve_job_def(job).execute_in_process(
            instance=instance, partition_key=partition, raise_on_error=False
        )
        assert result.success, f"{job} failed"
    return config, home


def questions(count: int) -> list[str]:
    return [
        FORMS[i // len(TOPICS) % len(FORMS)].format(TOPICS[i % len(TOPICS)])
        + ("" if i < len(TOPICS) * len(FORMS) else f" ({i})")
        for i in range(count)
    ]


class Phase:
    """Latencies, errors and versions of one bounded batch of requests."""

    def __init__(self, name: str) -> None:
        self.name, self.latencies, self.errors, self.versions, self.seconds = name, [], [], [], 0.0
        self._lock = threading.Lock()

    def run(self, url: str, model: str, batch: list[str], clients: int, max_tokens: int) -> Phase:
        local = threading.local()

        def ask(question: str) -> None:
            client = (
                getattr(local, "client", None) or setattr(local, "client", httpx.Client(timeout=120)) or local.client
            )
            began = time.perf_counter()
            try:
                response = client.post(
                    f"{url}/v1/chat/completions",
                    json={
                        "model": model,
                        "max_tokens": max_tokens,
                        "messages": [{"role": "user", "content": question}],
                    },
                )
                ok = response.status_code == 200
                versions = response.json().get("versions") if ok else None
            except httpx.HTTPError as exc:
                ok, versions = False, str(exc)
            with self._lock:
                self.latencies.append(time.perf_counter() - began)
                (
                    self.versions.append(tuple(versions.values()))
                    if ok
                    else self.errors.append(versions or response.text[:200])
                )

        began = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(ask, batch))
        self.seconds = time.perf_counter() - began
        return self

    def row(self) -> str:
        ms = sorted(x * 1000 for x in self.latencies)
        pct = lambda p: ms[min(len(ms) - 1, int(p / 100 * len(ms)))]
        return (
            f"{self.name:<22}{len(ms):>9}{len(ms) / self.seconds:>10.1f}"
            f"{statistics.median(ms):>10.1f}{pct(95):>10.1f}{pct(99):>10.1f}"
            f"{len(self.errors):>8}{len(set(self.versions)):>10}"
        )


def hot_swap(service, config, home: str, stop: threading.Event) -> None:
    """Move the index tag to the previous version and back, and register
    the production adapter again as a new version.
    """
    from llm_platform.home_layout import lancedb_uri
    from llm_platform.index.table import connect, open_table, publish, table_name

    table = open_table(connect(lancedb_uri(home)), table_name(config.index.table, config.embedding.model))
    served = service.state.current.index_version
    mlflow = mlflow_resource(config.mlflow, home, in_dagster=False)
    production = mlflow.production()
    time.sleep(0.5)
    publish(table, config.index.published_tag, served - 1)
    mlflow.promote(run_id=production["run_id"], artifact_path="adapter", tags=production["tags"])
    while not stop.is_set() and service.state.current.adapter_version == production["version"]:
        time.sleep(0.05)
    publish(table, config.index.published_tag, served)


BAD_REQUESTS = ({"temperature": 1e-300}, {"messages": [{"role": "user", "content": "why \ud800?"}]}, {"colour": "red"})


class Chaos:
    """Outcomes of the abuse mode, by kind, and the latencies of the good answers."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.latencies: list[float] = []
        self._lock = threading.Lock()

    def count(self, kind: str, seconds: float | None = None) -> None:
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if seconds is not None and kind.startswith("good"):
                self.latencies.append(seconds)

    def client(self, url: str, model: str, cached: list[str], until: float, max_tokens: int, seed: int) -> None:
        rng, http = random.Random(seed), httpx.Client(timeout=180)
        body = lambda question, **extra: {
            "model": model,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": question}],
            **extra,
        }
        while time.monotonic() < until:
            action, began = rng.choice(["cached", "new", "stream", "drop", "bad"]), time.perf_counter()
            question = (
                rng.choice(cached) if action == "cached" else f"What about {rng.choice(TOPICS)} ({rng.random():.6f})?"
            )
            try:
                if action in ("cached", "new"):
                    response = http.post(f"{url}/v1/chat/completions", json=body(question))
                    self.count(
                        f"good {action}" if response.status_code == 200 else f"error {action} {response.status_code}",
                        time.perf_counter() - began,
                    )
                elif action in ("stream", "drop"):
                    self.count(
                        self._stream(
                            http,
                            url,
                            body(question, stream=True, max_tokens=256 if action == "drop" else max_tokens),
                            rng.randint(1, 4) if action == "drop" else None,
                        ),
                        time.perf_counter() - began,
                    )
                elif rng.random() < 0.25:
                    response = http.post(f"{url}/v1/search", json={"query": "   ", "mode": "fts"})
                    self.count(
                        "refused (4xx)" if 400 <= response.status_code < 500 else f"error bad {response.status_code}"
                    )
                else:
                    payload = json.dumps({**body(question), **rng.choice(BAD_REQUESTS)})
                    response = http.post(
                        f"{url}/v1/chat/completions", content=payload, headers={"content-type": "application/json"}
                    )
                    self.count(
                        "refused (4xx)" if 400 <= response.status_code < 500 else f"error bad {response.status_code}"
                    )
            except httpx.HTTPError as exc:
                self.count(f"error {action} {type(exc).__name__}")

    @staticmethod
    def _stream(http: httpx.Client, url: str, body: dict, drop_after: int | None) -> str:
        events = 0
        with http.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
            if response.status_code != 200:
                return f"error stream {response.status_code}"
            for line in response.iter_lines():
                if line.startswith('data: {"error"'):
                    return "error stream event"
                events += line.startswith("data: ")
                if drop_after is not None and events >= drop_after:
                    return "dropped stream"
        return "good stream"


def run_chaos(service, url: str, model: str, args: argparse.Namespace) -> int:
    chaos, cached = Chaos(), questions(8)
    Phase("fill the cache").run(url, model, cached, 2, args.max_tokens)
    until = time.monotonic() + args.chaos
    with ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(lambda seed: chaos.client(url, model, cached, until, args.max_tokens, seed), range(args.clients)))
    drain_until = time.monotonic() + 120  # the clients stopped; what is still running must end by its deadline
    in_flight = lambda: service.chat.metrics.registry.get_sample_value("llm_platform_requests_in_flight")
    while (in_flight() or service.state.current.slots.in_use()) and time.monotonic() < drain_until:
        time.sleep(0.1)
    ms = sorted(x * 1000 for x in chaos.latencies)
    print(
        f"chaos: {args.clients} clients for {args.chaos:.0f} s, max_tokens "
        f"{args.max_tokens} (dropped streams ask for 256)"
    )
    for kind, number in sorted(chaos.counts.items()):
        print(f"  {kind:<28}{number:>7}")
    print(
        f"  good answers p50 {statistics.median(ms):.0f} ms, p95 "
        f"{ms[int(0.95 * (len(ms) - 1))]:.0f} ms ({len(ms)} timed)"
    )
    print(
        f"  afterwards: requests in flight {in_flight():.0f}, generation slots held "
        f"{service.state.current.slots.in_use()}, /readyz {httpx.get(f'{url}/readyz').status_code}"
    )
    failed = (
        any(kind.startswith("error") for kind in chaos.counts) or in_flight() or service.state.current.slots.in_use()
    )
    return 1 if failed else 0


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
        if args.chaos:
            return run_chaos(service, url, model, args)
        Phase("warm-up").run(url, model, ["warm up the model please"], 1, args.max_tokens)
        cold = Phase("cold (RAG + generate)").run(url, model, cold_questions, args.clients, args.max_tokens)
        cached = Phase("cached").run(url, model, cold_questions * args.cached_rounds, args.clients, args.max_tokens)
        stop = threading.Event()
        swapper = threading.Thread(target=hot_swap, args=(service, config, home, stop))
        swapper.start()
        swap = Phase("during hot swap").run(
            url,
            model,
            [q + " (swap)" for q in cold_questions] + cold_questions * args.cached_rounds,
            args.clients,
            args.max_tokens,
        )
        stop.set()
        swapper.join()
    print(
        f"service on 127.0.0.1, {args.clients} concurrent clients, max_tokens "
        f"{args.max_tokens}, versions now {service.state.current.versions()}"
    )
    print(
        f"{'phase':<22}{'requests':>9}{'req/s':>10}{'p50 ms':>10}{'p95 ms':>10}"
        f"{'p99 ms':>10}{'errors':>8}{'versions':>10}"
    )
    for phase in (cold, cached, swap):
        print(phase.row())
    for phase in (cold, cached, swap):
        for error in phase.errors[:3]:
            print(f"  {phase.name} error: {error}")
    return 1 if any(p.errors for p in (cold, cached, swap)) else 0


if __name__ == "__main__":
    sys.exit(main())
