"""Keyword scans find exactly what their patterns find, so redaction and the audit say the same with them as without.

Compared on the PII probes (the pipeline's and the PII benchmark's), the real
README stretches the tests keep, and generated text that puts keywords, their
prose look-alikes ("bypass", "string") and the characters `re.IGNORECASE`
folds to ASCII letters ("paſſword") next to values and separators.
"""

from __future__ import annotations

import importlib.util
import json
import random
import re
from pathlib import Path

import pytest

from llm_platform.documents import pii_audit, pii_credentials, pii_phones
from llm_platform.documents.pii import redact_pii
from llm_platform.documents.pii_audit import audit_spans
from llm_platform.documents.pii_prefilter import FOLDS_TO_ASCII, KeywordScan, ascii_case_folded
from llm_platform_tests.documents.test_pii_probes import PROBES as PIPELINE_PROBES
from llm_platform_tests.pii_variants import CREDENTIAL_SYNTAXES, REPORTED_VARIANTS

SCANS = {
    "redactor key names": pii_credentials._KEY_SCAN,
    "redactor phone words": pii_phones._DIALLED_SCAN,
    "audit key names": pii_audit._SECRET_KEY_SCAN,
    "audit phone words": pii_audit._AFTER_PHONE_WORD_SCAN,
}
REPO = Path(__file__).parents[2]
KEYWORDS = sorted({keyword for scan in SCANS.values() for keyword in scan.keywords})
FRAGMENTS = [
    *KEYWORDS,
    *("password", "Passwort", "PASSPHRASE", "api-key", "APIKEY", "access_key", "private.key", "Authorization"),
    *("credentials", "calls", "Telefon", "text me", "bypass", "compass", "string", "author", "tokenizer", "DB_"),
    *(" ", " ", "\n", "\t", "=", ":", ": ", "=>", ":=", '"', "'", "`", "**", "_", "-", ".", "&", ";", "(", "["),
    *("hunter2xyz", "s3cr3tP4ss", "${DB_PASSWORD}", "os.environ[", "/run/secrets/db", "Bearer ", "basic "),
    *("4155550134", "+49 30 12345678", "(212) 555-0199", "2024-01-15", "x", "é", "ß", "Σ", "\u0130"),
    *FOLDS_TO_ASCII,
]


def _benchmark_probes() -> list[str]:
    spec = importlib.util.spec_from_file_location("pii_detectors_benchmark", REPO / "benchmarks" / "pii_detectors.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [text for _, text in module.PROBES]


def _odd_cased(word: str, rng: random.Random) -> str:
    """`word` in random case, maybe with a letter written as a character `re.IGNORECASE` folds to it."""
    letters = [c.upper() if rng.random() < 0.5 else c for c in word]
    folds = [i for i, c in enumerate(word) if c in FOLDS_TO_ASCII.values()]
    if folds and rng.random() < 0.5:
        index = rng.choice(folds)
        letters[index] = rng.choice([odd for odd, letter in FOLDS_TO_ASCII.items() if letter == word[index]])
    return "".join(letters)


def _generated(count: int, seed: int = 15) -> list[str]:
    rng = random.Random(seed)
    return ["".join(_odd_cased(rng.choice(FRAGMENTS), rng) for _ in range(rng.randint(2, 14))) for _ in range(count)]


def _corpus() -> list[str]:
    readmes = REPO / "llm_platform_tests" / "documents" / "readmes"
    false_alarms = (readmes / "pii_audit_false_alarms.jsonl").read_text(encoding="utf-8").splitlines()
    return [
        *(f"For this case, the contact is {text}, as noted." for _, text, _ in PIPELINE_PROBES),
        *(f"For this case, the contact is {text}, as noted." for text in _benchmark_probes()),
        *(text for _, text, _ in REPORTED_VARIANTS),
        *(text for text, _ in CREDENTIAL_SYNTAXES),
        *(json.loads(line)["text"] for line in false_alarms),
        *(path.read_text(encoding="utf-8") for path in sorted(readmes.iterdir()) if path.suffix != ".jsonl"),
        *_generated(3000),
    ]


CORPUS = _corpus()


def _differences(scan: KeywordScan, texts: list[str]) -> list[str]:
    """The texts in which `scan` finds other matches than its pattern's `finditer`."""
    found = lambda matches: [(m.span(), m.groups()) for m in matches]
    return [text for text in texts if found(scan.finditer(text)) != found(scan.pattern.finditer(text))]


@pytest.mark.parametrize("name", SCANS)
def test_a_keyword_scan_finds_what_its_pattern_finds(name):
    assert _differences(SCANS[name], CORPUS) == []


@pytest.mark.parametrize("name", SCANS)
def test_a_keyword_scan_missing_one_keyword_finds_less_than_its_pattern(name):
    scan = SCANS[name]
    narrow = KeywordScan(scan.pattern, tuple(keyword for keyword in scan.keywords if keyword != scan.keywords[0]))
    assert _differences(narrow, CORPUS)


def test_a_keyword_written_with_a_character_ignorecase_folds_to_its_letter_is_found():
    text = "PAſſWORD=s3cr3tP4ss and to\u212aen: hunter2xyz"
    assert [m.group() for m in pii_credentials._KEY_SCAN.finditer(text)] == ["PAſſWORD", "to\u212aen"]


def test_every_character_ignorecase_matches_to_an_ascii_letter_is_folded_to_it():
    everything = "".join(chr(c) for c in range(0x80, 0x110000) if not 0xD800 <= c < 0xE000)
    for letter in "abcdefghijklmnopqrstuvwxyz":
        for character in re.findall(f"(?i){letter}", everything):
            assert ascii_case_folded(character) == letter, f"{character!r} (U+{ord(character):04X}) matches {letter}"


def test_the_one_character_that_lowers_to_two_keeps_every_index():
    assert ascii_case_folded("x\u0130 token") == "xi token"


def test_a_text_whose_lower_case_moves_its_characters_is_scanned_whole():
    class LowersLonger(str):
        def lower(self) -> str:
            return str(self) + "!"

    text = LowersLonger("password=s3cr3tP4ss")
    assert ascii_case_folded(text) is None
    assert [m.span() for m in pii_credentials._KEY_SCAN.finditer(text)] == [(0, 8)]


def test_redaction_and_the_audit_say_the_same_with_keyword_scans_as_without(monkeypatch):
    texts = CORPUS[:: max(1, len(CORPUS) // 800)]
    scanned = [(redact_pii(text), audit_spans(text)) for text in texts]
    monkeypatch.setattr(KeywordScan, "finditer", lambda scan, text: scan.pattern.finditer(text))
    assert [(redact_pii(text), audit_spans(text)) for text in texts] == scanned
