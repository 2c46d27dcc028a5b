"""The data rules of each document stage, tallied batch by batch as the stage writes, their examples shown without PII.

Every rule sees every row: each batch is validated as it passes on its way to
storage and the outcomes are merged (failures summed, a few examples kept), so a
check fails on a bad row in any batch without the stage holding all rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

from llm_platform.documents.cleaning import RECORD_FORMATS
from llm_platform.documents.corpus import CleaningRules
from llm_platform.documents.pii_rule import (
    no_pii_left,
    no_random_tokens_left,
    shown_without_pii,
    without_pii_in_examples,
)
from llm_platform.rules import (
    RuleOutcome,
    RuleTally,
    UniqueTally,
    merge_outcomes,
    quality_at_least,
    text_length_within,
    tokens_at_most,
    validate_rule,
)

if TYPE_CHECKING:
    import pandas as pd


def frame(rows: Sequence[dict], columns: Sequence[str]) -> pd.DataFrame:
    """A pandas frame of just `columns` of `rows` (for pandera rules)."""
    import pandas as pd

    return pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=list(columns))


def _frame(batch: pa.RecordBatch | pa.Table, columns: Sequence[str]) -> pd.DataFrame:
    # Built from Python values, as the rules were written for (ints as int64, text as str).
    return frame(batch.select(list(columns)).to_pylist(), columns)


def text_length_outcome(rows: list[dict], rules: CleaningRules) -> RuleOutcome:
    """Lengths within bounds, records (JSONL) held to min_record_chars and other documents to min_chars."""
    records = [r for r in rows if r["format"] in RECORD_FORMATS]
    pages = [r for r in rows if r["format"] not in RECORD_FORMATS]
    outcomes = [
        validate_rule(
            without_pii_in_examples(text_length_within(rules.min_record_chars, rules.max_chars)),
            frame(records, ["text"]),
        ),
        validate_rule(
            without_pii_in_examples(text_length_within(rules.min_chars, rules.max_chars)), frame(pages, ["text"])
        ),
    ]
    return merge_outcomes(outcomes[1].rule, outcomes)


class RawRowChecks:
    """raw_documents: ids unique and present, text not empty."""

    def __init__(self) -> None:
        self.ids = UniqueTally("doc_id", shown_without_pii)
        self.text = RuleTally(without_pii_in_examples(text_length_within(1, 10**9)))

    def observe(self, batch: pa.RecordBatch | pa.Table) -> None:
        self.ids.add(_frame(batch, ["doc_id"]))
        self.text.add(_frame(batch, ["text"]))


class CleanedRowChecks:
    """cleaned_corpus: ids, length per record kind, quality, no PII left, no random token left (a warning)."""

    def __init__(self, rules: CleaningRules, min_quality: float) -> None:
        self.rules = rules
        self.ids = UniqueTally("doc_id", shown_without_pii)
        self.quality = RuleTally(without_pii_in_examples(quality_at_least(min_quality)))
        self.no_pii = RuleTally(no_pii_left("text", "title", "locator", paths=("locator",)))
        self.random_tokens = RuleTally(no_random_tokens_left("text", "title", "locator"))
        self._lengths: list[RuleOutcome] = []

    def observe(self, batch: pa.RecordBatch | pa.Table) -> None:
        self.ids.add(_frame(batch, ["doc_id"]))
        self.quality.add(_frame(batch, ["quality"]))
        self.no_pii.add(_frame(batch, ["text", "title", "locator"]))
        self.random_tokens.add(_frame(batch, ["text", "title", "locator"]))
        outcome = text_length_outcome(batch.select(["format", "text"]).to_pylist(), self.rules)
        self._lengths = [merge_outcomes(outcome.rule, [*self._lengths, outcome])]

    @property
    def length(self) -> RuleOutcome:
        return self._lengths[0] if self._lengths else text_length_outcome([], self.rules)


class ChunkRowChecks:
    """chunks: ids unique and present, text not empty, token counts within the budget."""

    def __init__(self, max_tokens: int) -> None:
        self.ids = UniqueTally("chunk_id", shown_without_pii)
        self.text = RuleTally(without_pii_in_examples(text_length_within(1, 10**7)))
        self.tokens = RuleTally(without_pii_in_examples(tokens_at_most(max_tokens)))

    def observe(self, batch: pa.RecordBatch | pa.Table) -> None:
        self.ids.add(_frame(batch, ["chunk_id"]))
        self.text.add(_frame(batch, ["text"]))
        self.tokens.add(_frame(batch, ["token_count"]))
