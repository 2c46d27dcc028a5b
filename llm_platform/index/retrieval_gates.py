"""The two retrieval gates a table version must pass before it is published: a
minimum hit rate, and no regression against the served version.
"""

from __future__ import annotations

from dataclasses import dataclass

RETRIEVAL_HIT_RATE_MINIMUM = "hit_rate_above_minimum"
RETRIEVAL_NO_REGRESSION = "hit_rate_not_regressed"


@dataclass(frozen=True)
class RetrievalGateResult:
    """One retrieval gate's verdict: the check it answers, whether it passed, and why, in words."""

    check: str
    passed: bool
    description: str


def retrieval_gates(
    hit_rate: float, published_hit_rate: float | None, *, minimum: float, margin: float
) -> list[RetrievalGateResult]:
    """Both gates for a version scoring `hit_rate`, against the served
    version's `published_hit_rate` (None: nothing served).
    """
    gates = [
        RetrievalGateResult(
            RETRIEVAL_HIT_RATE_MINIMUM, hit_rate >= minimum, f"hit rate {hit_rate:.3f}; minimum {minimum:.3f}"
        )
    ]
    if published_hit_rate is None:
        gates.append(RetrievalGateResult(RETRIEVAL_NO_REGRESSION, True, "nothing published yet"))
    else:
        drop = published_hit_rate - hit_rate
        gates.append(
            RetrievalGateResult(
                RETRIEVAL_NO_REGRESSION,
                drop <= margin,
                f"hit rate {hit_rate:.3f} vs published {published_hit_rate:.3f} "
                f"(drop {drop:+.3f}, allowed {margin:.3f})",
            )
        )
    return gates
