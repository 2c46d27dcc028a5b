"""Keyword scans find exactly what their patterns find, and text gates let through every text a detector finds
something in, so redaction and the audit say the same with them as without.

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
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from llm_platform.documents import pii, pii_audit, pii_cards, pii_credentials, pii_phones, pii_secrets
from llm_platform.documents.pii import redact_pii
from llm_platform.documents.pii_audit import audit_spans
from llm_platform.documents.pii_prefilter import FOLDS_TO_ASCII, KeywordScan, TextGate, ascii_case_folded
from llm_platform_tests.documents.test_pii_probes import PROBES as PIPELINE_PROBES
from llm_platform_tests.pii_variants import CREDENTIAL_SYNTAXES, REPORTED_VARIANTS

SCANS = {
    "redactor key names": pii_credentials._KEY_SCAN,
    "redactor phone words": pii_phones._DIALLED_SCAN,
    "audit key names": pii_audit._SECRET_KEY_SCAN,
    "audit phone words": pii_audit._AFTER_PHONE_WORD_SCAN,
    "audit SSN named": pii_audit._SSN_NAMED_SCAN,
}


def _match_spans(pattern: re.Pattern[str]) -> Callable[[str], Iterable[tuple[int, int]]]:
    return lambda text: (match.span() for match in pattern.finditer(text))


# Each gate, and what finds the hits it must let through.
GATES = {
    "redactor e-mail": (pii._EMAIL_GATE, _match_spans(pii._EMAIL)),
    "redactor SSN": (pii._SSN_GATE, _match_spans(pii._SSN)),
    "redactor IP address": (pii._IP_GATE, _match_spans(pii._IP)),
    "redactor card": (pii_cards._CARD_GATE, pii_cards.card_spans),
    "redactor IBAN": (pii._IBAN_GATE, pii._ibans),
    "redactor E.164 phone": (pii_phones._E164_GATE, _match_spans(pii_phones._E164_NUMBER)),
    "redactor 3-3-4 phone": (pii_phones._NORTH_AMERICAN_LAYOUT_GATE, _match_spans(pii_phones._NORTH_AMERICAN_LAYOUT)),
    "redactor trunk-0 phone": (pii_phones._TRUNK_LAYOUT_GATE, _match_spans(pii_phones._TRUNK_LAYOUT)),
    **{
        f"detect-secrets pattern {source}": (gate, _match_spans(re.compile(source)))
        for source, gate in pii_secrets.PLUGIN_GATES.items()
    },
    "audit card": (pii_audit._CARD_GATE, pii_audit._cards),
    "audit IBAN": (pii_audit._IBAN_GATE, pii_audit._ibans),
    "audit national phone": (
        pii_audit._GROUPED_NUMBER_GATE,
        pii_audit._found(pii_audit._GROUPED_NUMBER, pii_audit._is_national_phone),
    ),
    "audit SSN": (pii_audit._SSN_LIKE_GATE, _match_spans(pii_audit._SSN_LIKE)),
    "audit address": (pii_audit._ADDRESS_GATE, _match_spans(pii_audit._ADDRESS)),
    "audit [at]": (pii_audit._OBFUSCATED_AT_GATE, _match_spans(pii_audit._OBFUSCATED_AT)),
    "audit prefixed token": (pii_audit._PREFIXED_TOKEN_GATE, _match_spans(pii_audit._PREFIXED_TOKEN)),
    "audit IPv4 address": (pii_audit._IPV4_GATE, _match_spans(pii_audit._IPV4)),
    "audit international phone": (pii_audit._INTERNATIONAL_PHONE_GATE, _match_spans(pii_audit._INTERNATIONAL_PHONE)),
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
    *("ssn", "social security no.", "123456789", "123-45-6789", "078.05.1120", "4111 1111 1111 1111", "4111-1111"),
    *("10.20.30.40", "192.168.001.010", "fe80::1ff:fe23:4567:890a", "2001:db8::1", "::", "alice@example.com"),
    *("DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "de89-3704-0044-0532-0130-00", "030 12345678"),
    *(
        "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_",
        "0123456789" * 3 + "01-us12",
        "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.",
    ),
    *("[at]", "(dot)", "+44 7700 900123", "\uff0b1 415 555 0134", "ghp_a1B2c3D4e5a1B2c3D4e5a1B2c3D4e5a1B2"),
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


def _not_let_through(
    gate: re.Pattern[str], hits: Callable[[str], Iterable[tuple[int, int]]], texts: list[str]
) -> list[str]:
    """The hits in `texts` in which `gate` finds nothing."""
    return [text[start:end] for text in texts for start, end in hits(text) if not gate.search(text[start:end])]


@pytest.fixture
def without_gates(monkeypatch):
    monkeypatch.setattr(TextGate, "lets_through", lambda gate, text: True)


@pytest.mark.parametrize("name", GATES)
def test_a_gate_finds_something_in_every_hit_of_its_detector(name, without_gates):
    gate, hits = GATES[name]
    assert _not_let_through(gate.regex, hits, CORPUS) == []


@pytest.mark.parametrize("name", GATES)
def test_a_gate_that_lets_nothing_through_misses_hits(name, without_gates):
    assert _not_let_through(re.compile("(?!)"), GATES[name][1], CORPUS)


def test_an_address_gate_without_ipv6_misses_ipv6_addresses(without_gates):
    assert _not_let_through(re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d"), GATES["redactor IP address"][1], CORPUS)


def test_every_gated_detect_secrets_pattern_is_one_the_installed_version_has():
    installed = {pattern.pattern for pattern, *_ in pii_secrets._plugin_patterns()}
    assert set(pii_secrets.PLUGIN_GATES) <= installed


def test_redaction_and_the_audit_say_the_same_with_scans_and_gates_as_without(monkeypatch):
    texts = CORPUS[:: max(1, len(CORPUS) // 800)]
    scanned = [(redact_pii(text), audit_spans(text)) for text in texts]
    monkeypatch.setattr(KeywordScan, "finditer", lambda scan, text: scan.pattern.finditer(text))
    monkeypatch.setattr(TextGate, "lets_through", lambda gate, text: True)
    assert [(redact_pii(text), audit_spans(text)) for text in texts] == scanned
