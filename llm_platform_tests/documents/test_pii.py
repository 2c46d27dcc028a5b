from pathlib import Path

import pytest
from pydoc_data.topics import topics

import llm_platform
from llm_platform.documents.pii import PII_PATTERNS, find_pii, redact_pii

CONTACTS_PAGE = Path(llm_platform.__file__).parent / "demo" / "corpus" / "handbook" / "oncall-contacts.md"


def test_patterns_cover_every_documented_kind():
    assert set(PII_PATTERNS) == {"email", "phone", "ip_address", "credit_card", "api_key"}


def test_email_is_found():
    assert find_pii("write to jane.doe+ops@mail.example.co.uk today") == [("email", "jane.doe+ops@mail.example.co.uk")]


@pytest.mark.parametrize("phone", ["(212) 555-0199", "415-555-0134", "415.555.0134", "+1 415 555 0134", "+44 20 7946 0958"])
def test_phone_number_is_found(phone):
    assert find_pii(f"call {phone} now") == [("phone", phone)]


@pytest.mark.parametrize("address", ["10.20.30.40", "2001:db8:85a3::8a2e:370:7334", "fe80:0:0:0:200:f8ff:fe21:67cf"])
def test_ip_address_is_found(address):
    assert find_pii(f"host {address} is down") == [("ip_address", address)]


@pytest.mark.parametrize("card", ["4111 1111 1111 1111", "4111-1111-1111-1111", "5500005555555559", "378282246310005"])
def test_luhn_valid_card_is_found(card):
    assert find_pii(f"card {card} on file") == [("credit_card", card)]


def test_card_failing_luhn_check_is_not_reported():
    assert find_pii("card 4111 1111 1111 1112 on file") == []


@pytest.mark.parametrize(
    "key",
    [
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_" + "a1B2c3D4e5" * 4,
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "xoxb-123456789012-abcdefghijkl",
        "sk-ant-api03-" + "Ab3" * 10,
        "sk-proj-" + "Xy9" * 10,
        "AIzaSyA-" + "b" * 31,
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r",
    ],
)
def test_api_key_is_found(key):
    assert find_pii(f"token: {key}") == [("api_key", key)]


@pytest.mark.parametrize(
    "text",
    [
        "Python 3.11.7 was released on 2023-12-04.",
        "See line 1234 of file.py, column 56.",
        "Meet at 12:30:45 in room 101.",
        "Use x[1::2] and a[::3] for slicing.",
        "The ratio was 1.5 and the total 1234567890123.",
        "Version 1.2.3 of the tool; ISBN 978-0-13-468599-1.",
        "MAC 00:1a:2b:3c:4d:5e belongs to no person.",
    ],
)
def test_ordinary_numbers_are_not_pii(text):
    assert find_pii(text) == []


def test_python_documentation_has_no_pii_hits():
    hits = [(name, hit) for name, text in topics.items() for hit in find_pii(text)]
    assert hits == []


def test_redaction_replaces_hit_with_kind_placeholder():
    redacted, _ = redact_pii("mail jane@example.com please")
    assert redacted == "mail [REDACTED_EMAIL] please"


def test_redaction_counts_hits_by_kind():
    _, counts = redact_pii("a@example.com, b@example.com, 10.0.0.1")
    assert counts == {"email": 2, "ip_address": 1}


def test_redacted_text_has_no_pii_left():
    redacted, counts = redact_pii(CONTACTS_PAGE.read_text(encoding="utf-8"))
    assert find_pii(redacted) == []
    assert set(counts) == {"email", "phone", "ip_address", "credit_card", "api_key"}


def test_text_without_pii_is_unchanged():
    text = "Nothing personal in here, only version 3.11.7."
    assert redact_pii(text) == (text, {})
