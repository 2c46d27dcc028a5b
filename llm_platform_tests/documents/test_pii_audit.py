"""The independent audit behind `no_pii_left`: it sees what the redactor misses, and nothing in redacted or technical text."""

import random
from pathlib import Path
from pydoc_data.topics import topics

import pandas as pd
import pytest

import llm_platform
import llm_platform.documents.pii_rule
from llm_platform.documents.pii import redact_pii
from llm_platform.documents.pii_audit import audit_pii, mask_audit_hits
from llm_platform.documents.pii_rule import no_pii_left
from llm_platform.rules import validate_rule
from llm_platform_tests.pii_variants import CREDENTIAL_SYNTAXES, REPORTED_VARIANTS

DEMO_CORPUS = Path(llm_platform.__file__).parent / "demo" / "corpus"
# Earlier probes (issue 9) and the shapes the redactor knows, written as a leak would leave them.
KNOWN_SHAPES = [
    "alice [at] example [dot] com", "carol.white@example.net", "+44 7700 900123", "415 555 0134", "(212) 555-0199",
    "07911 123456", "030/12345678", "01 23 45 67 89", "Call 4155550134", "DE89 3704 0044 0532 0130 00",
    "GB82WEST12345698765432", "123-45-6789", "4111 1111 1111 1111", "10.20.30.40", "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "ghp_" + "a1B2c3D4e5" * 4, "ghp\\_" + "a1B2c3D4e5" * 4, "https://hooks.slack.com/services/T0ABCDEFG/B0ABCDEFG/q1w2e3r4t5y6u7i8o9p0a1s2",
    "-----BEGIN RSA PRIVATE KEY-----", "postgresql://app:Tr0ub4dor@db.example.com:5432/app",
]
EVERY_PROBE = [text for _, text, _ in REPORTED_VARIANTS] + [text for text, _ in CREDENTIAL_SYNTAXES] + KNOWN_SHAPES


@pytest.fixture
def redactor_switched_off(monkeypatch):
    """`no_pii_left` with the redactor's detectors finding nothing: only the audit is left to fail it."""
    monkeypatch.setattr(llm_platform.documents.pii_rule, "find_pii", lambda text: [])


@pytest.mark.parametrize("probe", EVERY_PROBE)
def test_audit_flags_each_probe_left_unredacted(probe):
    assert audit_pii(f"For this case, use {probe}, as noted.") != []


@pytest.mark.parametrize("probe", EVERY_PROBE)
def test_no_pii_rule_fails_on_each_probe_with_the_redactor_switched_off(redactor_switched_off, probe):
    outcome = validate_rule(no_pii_left(), pd.DataFrame({"text": ["nothing here", f"For this case, use {probe}, as noted."]}))
    assert (outcome.passed, outcome.failures) == (False, 1)


@pytest.mark.parametrize("probe", EVERY_PROBE)
def test_audit_finds_nothing_once_the_probe_is_redacted(probe):
    assert audit_pii(redact_pii(f"For this case, use {probe}, as noted.")[0]) == []


def test_audit_flags_a_card_the_redactor_leaves_in_a_run_of_figures():
    text = "counts 12 4111 1111 1111 1111 7 per hour"
    assert redact_pii(text)[0] == text and [kind for kind, _ in audit_pii(text)] == ["credit_card"]


@pytest.mark.parametrize("text", ["card 4111/1111/1111/1111 on file", "card 4111_1111_1111_1111 on file", "id 123/45/6789 on file"])
def test_audit_reads_numbers_with_any_separator(text):
    assert audit_pii(text) != []


def test_audit_flags_a_credential_value_under_any_secret_key(redactor_switched_off):
    outcome = validate_rule(no_pii_left(), pd.DataFrame({"text": ["settings: root_pass = sunshine"]}))
    assert not outcome.passed


def test_audit_finds_nothing_in_tables_of_figures():
    rng = random.Random(9)
    figures = " ".join(str(rng.randrange(10**5)) for _ in range(2000))
    matrix = "\n".join("[" + "  ".join(f"{rng.randrange(10**5):5d}" for _ in range(8)) + "]" for _ in range(200))
    assert audit_pii(figures) == [] and audit_pii(matrix) == []


@pytest.mark.parametrize("text", ["released 2023-12-04 12:30", "on 04.12.2023 at noon", "sizes 4096 8192 16384 bytes"])
def test_audit_finds_nothing_in_dates_and_sizes(text):
    assert audit_pii(text) == []


def test_audit_finds_nothing_in_python_help_topics():
    assert [(name, hit) for name, text in topics.items() for hit in audit_pii(text)] == []


def test_audit_finds_nothing_in_the_redacted_demo_corpus():
    files = [p for p in DEMO_CORPUS.rglob("*") if p.suffix in {".md", ".txt", ".rst", ".html", ".jsonl"}]
    hits = [(p.name, hit) for p in files for hit in audit_pii(redact_pii(p.read_text(encoding="utf-8", errors="replace"))[0])]
    assert hits == []


def test_masked_text_shows_where_the_audit_found_something_but_not_what():
    masked = mask_audit_hits("counts 12 4111 1111 1111 1111 7 per hour")
    assert "4111" not in masked and "[FLAGGED_CREDIT_CARD]" in masked


def test_rule_failure_examples_hide_what_only_the_audit_found(redactor_switched_off):
    outcome = validate_rule(no_pii_left(), pd.DataFrame({"text": ["counts 12 4111 1111 1111 1111 7 per hour"]}))
    assert not outcome.passed and all("4111" not in example for example in outcome.examples)
