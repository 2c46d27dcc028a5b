"""Prometheus metrics of one service instance, in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ServingMetrics:
    """Requests, latencies, tokens, cache results and the versions being served."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "llm_platform_requests", "Requests by endpoint and HTTP status.", ["endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            "llm_platform_request_seconds", "Whole-request latency.", ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.retrieval = Histogram(
            "llm_platform_retrieval_seconds",
            "Embedding plus index search per question.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.generation = Histogram(
            "llm_platform_generation_seconds", "Generation per answer.", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.tokens = Counter(
            "llm_platform_tokens", "Tokens in prompts (in) and completions (out).", ["direction"], registry=r
        )
        self.in_flight = Gauge("llm_platform_requests_in_flight", "Requests being handled now.", registry=r)
        self.cache = Counter(
            "llm_platform_cache", "Response cache lookups by result (hit, miss, error).", ["result"], registry=r
        )
        self.index_version = Gauge("llm_platform_served_index_version", "Lance table version being served.", registry=r)
        self.adapter_version = Gauge(
            "llm_platform_served_adapter_version", "Registered adapter version being served.", registry=r
        )
        self.served = Info("llm_platform_served", "Versions being served.", registry=r)
        self.swaps = Counter("llm_platform_swaps", "Version swaps completed.", registry=r)
        self.load_failures = Counter(
            "llm_platform_load_failures", "Failed loads of a new version (the previous kept serving).", registry=r
        )

    def set_versions(self, versions: dict[str, object]) -> None:
        self.served.info({k: str(v) for k, v in versions.items()})
        # -1 until a version is served: either pointer can load first, and this must not raise then.
        self.index_version.set(_number(versions.get("index_version")))
        self.adapter_version.set(_number(versions.get("adapter_version")))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _number(version: object) -> float:
    """A served version as a gauge value; -1 when none is served."""
    return float(str(version)) if version is not None and str(version).isdigit() else -1.0
