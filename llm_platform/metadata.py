"""Metadata a person wants on a materialization: previews, counts, check outcomes."""

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    import pandas as pd

from llm_platform.rules import RuleOutcome

_PREVIEW_ROWS = 5
_CELL_CHARS = 80


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= _CELL_CHARS else text[: _CELL_CHARS - 1] + "…"


def markdown_table(rows: Sequence[Mapping], columns: Sequence[str], limit: int = _PREVIEW_ROWS) -> dg.MetadataValue:
    """A small Markdown table of the first `limit` rows."""
    if not rows:
        return dg.MetadataValue.md("_(none)_")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in list(rows)[:limit]]
    return dg.MetadataValue.md("\n".join(lines))


def counts(mapping: Mapping[str, int]) -> dg.MetadataValue:
    """Counts by kind as JSON (empty mapping stays an empty object)."""
    return dg.MetadataValue.json(dict(sorted(mapping.items())))


def check_result(name: str, outcome: RuleOutcome, *, severity=dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckResult:
    """An asset check result from one pandera rule."""
    return dg.AssetCheckResult(
        check_name=name,
        passed=outcome.passed,
        severity=severity,
        metadata={
            "rule": outcome.rule,
            "failures": outcome.failures,
            "examples": dg.MetadataValue.json(outcome.examples),
        },
    )


def rate_check(
    name: str, part: int, whole: int, maximum: float, *, what: str, severity=dg.AssetCheckSeverity.ERROR
) -> dg.AssetCheckResult:
    """A check that `part / whole` stays at or below `maximum`."""
    rate = part / whole if whole else 0.0
    return dg.AssetCheckResult(
        check_name=name,
        passed=rate <= maximum,
        severity=severity,
        description=f"{part} of {whole} {what} ({rate:.1%}); maximum {maximum:.0%}",
        metadata={"rate": rate, "count": part, "total": whole, "maximum": maximum},
    )


def frame(rows: Iterable[Mapping], columns: Sequence[str]) -> "pd.DataFrame":
    """A pandas frame of just `columns` (for pandera rules)."""
    import pandas as pd

    return pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=list(columns))
