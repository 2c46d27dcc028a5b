"""Each data rule is a pandera schema: it passes good frames and fails a frame that breaks it, naming itself."""

from __future__ import annotations

import numpy as np
import pandas as pd

from llm_platform.documents.pii import redact_pii
from llm_platform.documents.pii_rule import no_pii_left
from llm_platform.rules import (
    ids_unique_and_present,
    quality_at_least,
    text_length_within,
    tokens_at_most,
    validate_rule,
    vectors_finite,
    vectors_of_dimension,
    vectors_unit_norm,
)

UNIT = [1.0, 0.0, 0.0]


def outcome(schema, **columns):
    return validate_rule(schema, pd.DataFrame(columns))


def test_unique_present_ids_pass():
    assert outcome(ids_unique_and_present("doc_id"), doc_id=["a", "b"]).passed


def test_repeated_id_fails_the_unique_rule_showing_it():
    result = outcome(ids_unique_and_present("doc_id"), doc_id=["a", "b", "a"])
    assert (result.passed, result.rule) == (False, "doc_id_unique_non_null") and "a" in result.examples


def test_missing_id_fails_the_unique_rule():
    assert not outcome(ids_unique_and_present("chunk_id"), chunk_id=["a", None]).passed


def test_text_within_length_bounds_passes():
    assert outcome(text_length_within(3, 10), text=["abc", "  abcdefghij  "]).passed


def test_text_shorter_than_minimum_after_stripping_fails():
    result = outcome(text_length_within(3, 10), text=["abc", "  ab  "])
    assert (result.passed, result.failures) == (False, 1)


def test_text_longer_than_maximum_fails():
    assert not outcome(text_length_within(3, 10), text=["abcdefghijk"]).passed


def test_missing_text_fails_the_length_rule():
    assert not outcome(text_length_within(1, 10), text=["abc", None]).passed


def test_quality_at_minimum_passes():
    assert outcome(quality_at_least(0.35), quality=[0.35, 0.9]).passed


def test_quality_below_minimum_fails():
    result = outcome(quality_at_least(0.35), quality=[0.9, 0.2])
    assert (result.passed, result.rule, result.examples) == (False, "quality_minimum", ["0.2"])


def test_redacted_text_passes_the_pii_rule():
    redacted, _ = redact_pii("Write to jane.doe@example.com or call +1 415 555 0100 for help.")
    assert outcome(no_pii_left(), text=[redacted]).passed


def test_email_left_in_text_fails_the_pii_rule():
    result = outcome(no_pii_left(), text=["fine", "Write to jane.doe@example.com for help."])
    assert (result.passed, result.failures, result.rule) == (False, 1, "no_pii")


def test_token_counts_in_range_pass():
    assert outcome(tokens_at_most(128), token_count=[1, 128]).passed


def test_token_count_above_maximum_fails():
    assert not outcome(tokens_at_most(128), token_count=[64, 129]).passed


def test_zero_token_count_fails():
    assert not outcome(tokens_at_most(128), token_count=[0]).passed


def test_vectors_of_the_model_dimension_pass():
    assert outcome(vectors_of_dimension(3), vector=[UNIT, [0.0, 1.0, 0.0]]).passed


def test_vector_of_another_dimension_fails():
    assert not outcome(vectors_of_dimension(3), vector=[UNIT, [1.0, 0.0]]).passed


def test_finite_vectors_pass():
    assert outcome(vectors_finite(), vector=[UNIT]).passed


def test_vector_with_nan_fails_the_finite_rule():
    assert not outcome(vectors_finite(), vector=[UNIT, [np.nan, 0.0, 1.0]]).passed


def test_vector_with_infinity_fails_the_finite_rule():
    assert not outcome(vectors_finite(), vector=[[np.inf, 0.0, 0.0]]).passed


def test_unit_vectors_pass_the_norm_rule():
    assert outcome(vectors_unit_norm(), vector=[UNIT, [0.6, 0.8, 0.0]]).passed


def test_unnormalized_vector_fails_the_norm_rule():
    assert not outcome(vectors_unit_norm(), vector=[UNIT, [1.0, 1.0, 0.0]]).passed


def test_empty_frame_passes_every_rule():
    assert validate_rule(no_pii_left(), pd.DataFrame({"text": []})).passed
