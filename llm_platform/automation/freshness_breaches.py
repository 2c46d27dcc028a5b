"""Which asset partitions are past their freshness limit, and which of those nobody was told about yet.

Dagster's freshness daemon evaluates a whole asset (its latest materialization of any
partition) and only shows the result in the UI. Here each partition is aged on its
own, so a source that stopped updating is named even while other sources are fresh.
A breach is identified by its asset, partition and the materialization it is stale
since: it is alerted once, and again only after a newer materialization went stale.
"""

from __future__ import annotations

from dataclasses import dataclass

UNPARTITIONED = ""


@dataclass(frozen=True)
class Breach:
    asset: str
    partition: str
    age_seconds: float
    limit_seconds: float
    materialized_at: float

    @property
    def key(self) -> str:
        return f"{self.asset}|{self.partition}"


def find_breaches(
    last_materialized: dict[tuple[str, str], float | None], limits: dict[str, float], now: float
) -> list[Breach]:
    """Partitions whose last materialization is at least their asset's limit
    old; never-materialized ones are unknown, not stale.
    """
    breaches = []
    for (asset, partition), materialized_at in sorted(last_materialized.items()):
        if materialized_at is None:
            continue
        age, limit = now - materialized_at, limits[asset]
        if age >= limit:
            breaches.append(Breach(asset, partition, age, limit, materialized_at))
    return breaches


def unannounced(breaches: list[Breach], announced: dict[str, float]) -> list[Breach]:
    """Breaches not yet alerted: `announced` maps a breach key to the materialization time it was alerted for."""
    return [b for b in breaches if announced.get(b.key) != b.materialized_at]


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def breach_message(breach: Breach, ui_url: str | None = None) -> str:
    """One line a person can act on: which asset and partition, how old, what limit."""
    where = f"{breach.asset} partition {breach.partition}" if breach.partition else breach.asset
    link = f" {ui_url.rstrip('/')}/assets/{breach.asset}" if ui_url else ""
    return (
        f"llm_platform: {where} is stale: last materialized {_hours(breach.age_seconds)} ago, "
        f"freshness limit {_hours(breach.limit_seconds)}{link}"
    )
