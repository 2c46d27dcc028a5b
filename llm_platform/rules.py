"""The data rules, as pandera schemas: one schema per rule, so a failure names its rule.

A failing rule keeps a few examples for the event log. A rule over data that may
hold personal data says how its examples are shown (`masked_examples`), so the
domain that owns the detectors masks them; other examples are only clipped.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa

_EXAMPLES = 5
_EXAMPLE_CHARS = 120
_EXAMPLE_SCAN_CHARS = 2_000
# Where a schema keeps how its failure examples are shown (see masked_examples).
_SHOWN_BY = "llm_platform.rules.shown_by"

ShowExample = Callable[[str], str]


@dataclass(frozen=True)
class RuleOutcome:
    """Whether a frame satisfied one rule, and a few failing values if not."""

    rule: str
    passed: bool
    failures: int
    examples: list[str]


def ids_unique_and_present(column: str) -> pa.DataFrameSchema:
    import pandera.pandas as pa

    return pa.DataFrameSchema({column: pa.Column(str, nullable=False, unique=True)}, name=f"{column}_unique_non_null")


def text_length_within(min_chars: int, max_chars: int, column: str = "text") -> pa.DataFrameSchema:
    import pandera.pandas as pa

    check = pa.Check(
        lambda s: s.str.strip().str.len().between(min_chars, max_chars), name=f"length {min_chars}..{max_chars}"
    )
    return pa.DataFrameSchema({column: pa.Column(str, check, nullable=False)}, name=f"{column}_length")


def quality_at_least(minimum: float) -> pa.DataFrameSchema:
    import pandera.pandas as pa

    return pa.DataFrameSchema(
        {"quality": pa.Column(float, pa.Check.ge(minimum), nullable=False)}, name="quality_minimum"
    )


def values_within(column: str, minimum: float, maximum: float) -> pa.DataFrameSchema:
    import pandera.pandas as pa

    return pa.DataFrameSchema(
        {column: pa.Column(float, pa.Check.in_range(minimum, maximum), nullable=False)}, name=f"{column}_range"
    )


def tokens_at_most(maximum: int) -> pa.DataFrameSchema:
    import pandera.pandas as pa

    return pa.DataFrameSchema({"token_count": pa.Column(int, pa.Check.in_range(1, maximum))}, name="token_count_range")


def vectors_of_dimension(dimension: int) -> pa.DataFrameSchema:
    import pandera.pandas as pa

    check = pa.Check(lambda s: s.map(lambda v: len(v) == dimension), name=f"dimension {dimension}")
    return pa.DataFrameSchema({"vector": pa.Column(object, check)}, name="vector_dimension")


def vectors_finite() -> pa.DataFrameSchema:
    import pandera.pandas as pa

    check = pa.Check(
        lambda s: s.map(lambda v: bool(np.isfinite(np.asarray(v, dtype=np.float32)).all())), name="no NaN or inf"
    )
    return pa.DataFrameSchema({"vector": pa.Column(object, check)}, name="vector_finite")


def vectors_unit_norm(tolerance: float = 1e-3) -> pa.DataFrameSchema:
    import pandera.pandas as pa

    check = pa.Check(
        lambda s: s.map(lambda v: abs(float(np.linalg.norm(np.asarray(v, dtype=np.float32))) - 1.0) <= tolerance),
        name="unit norm",
    )
    return pa.DataFrameSchema({"vector": pa.Column(object, check)}, name="vector_unit_norm")


def masked_examples(schema: pa.DataFrameSchema, shown: ShowExample) -> pa.DataFrameSchema:
    """`schema`, whose failure examples pass through `shown` (a mask of
    personal data, say) before an outcome holds them.
    """
    masked = copy.copy(schema)
    masked.metadata = {**(schema.metadata or {}), _SHOWN_BY: shown}
    return masked


def _shown(schema: pa.DataFrameSchema, value: object) -> str:
    shown: ShowExample = (schema.metadata or {}).get(_SHOWN_BY, str)
    return shown(str(value)[:_EXAMPLE_SCAN_CHARS])[:_EXAMPLE_CHARS]


def validate_rule(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> RuleOutcome:
    """Apply one rule; an empty frame passes (there is nothing to break the rule)."""
    import pandera.pandas as pa

    if frame.empty:
        return RuleOutcome(schema.name or "rule", True, 0, [])
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        examples = [_shown(schema, v) for v in cases["failure_case"].head(_EXAMPLES).tolist()]
        return RuleOutcome(schema.name or "rule", False, len(cases), examples)
    return RuleOutcome(schema.name or "rule", True, 0, [])


def merge_outcomes(rule: str, outcomes: list[RuleOutcome]) -> RuleOutcome:
    """One outcome of a rule from its outcomes on parts of the data: failures summed, a few examples kept."""
    return RuleOutcome(
        rule=rule,
        passed=all(o.passed for o in outcomes),
        failures=sum(o.failures for o in outcomes),
        examples=[e for o in outcomes for e in o.examples][:_EXAMPLES],
    )


class RuleTally:
    """One rule validated batch by batch over a whole dataset, so no check needs all rows at once."""

    def __init__(self, schema: pa.DataFrameSchema) -> None:
        self.schema = schema
        self.outcome = RuleOutcome(schema.name or "rule", True, 0, [])

    def add(self, frame: pd.DataFrame) -> None:
        self.outcome = merge_outcomes(self.outcome.rule, [self.outcome, validate_rule(self.schema, frame)])


class UniqueTally:
    """`ids_unique_and_present(column)` over all batches: within each batch by the
    rule, across batches by 8-byte hashes of the ids seen.
    """

    def __init__(self, column: str, shown: ShowExample = str) -> None:
        self.column = column
        self._rule = RuleTally(masked_examples(ids_unique_and_present(column), shown))
        self._seen = np.zeros(0, dtype=np.uint64)
        self._repeats = RuleOutcome(self._rule.outcome.rule, True, 0, [])

    def add(self, frame: pd.DataFrame) -> None:
        self._rule.add(frame)
        present = [value for value in frame[self.column].tolist() if isinstance(value, str)]
        hashes = np.fromiter((_id_hash(value) for value in present), dtype=np.uint64, count=len(present))
        if len(self._seen):
            at = np.minimum(np.searchsorted(self._seen, hashes), len(self._seen) - 1)
            repeated = [value for value, hit in zip(present, self._seen[at] == hashes, strict=True) if hit]
            if repeated:
                found = RuleOutcome(
                    self._repeats.rule,
                    False,
                    len(repeated),
                    [_shown(self._rule.schema, v) for v in repeated[:_EXAMPLES]],
                )
                self._repeats = merge_outcomes(self._repeats.rule, [self._repeats, found])
        self._seen = np.union1d(self._seen, hashes)

    @property
    def outcome(self) -> RuleOutcome:
        return merge_outcomes(self._rule.outcome.rule, [self._rule.outcome, self._repeats])


def _id_hash(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8"), digest_size=8).digest(), "little")
