import random
from pathlib import Path
from pydoc_data.topics import topics

import pandas as pd
import pyarrow as pa
import pytest

import llm_platform
from llm_platform.documents.pii import DETECTOR_VERSION, PII_KINDS, find_pii, redact_locator, redact_pii, redacted_rows
from llm_platform.documents.pii_rule import no_pii_left
from llm_platform.documents.sources import RAW_SCHEMA, read_source
from llm_platform.identity import doc_id_for
from llm_platform.rules import validate_rule

DEMO_CORPUS = Path(llm_platform.__file__).parent / "demo" / "corpus"
CONTACTS_PAGE = DEMO_CORPUS / "handbook" / "oncall-contacts.md"
GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5" * 4
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
RSA_BODY = (
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "LxoJbGz5nR1aC2xBvFhV3kLzQw==\n"
)


def test_detector_version_is_a_non_empty_string():
    assert isinstance(DETECTOR_VERSION, str) and DETECTOR_VERSION


def test_every_kind_is_documented():
    assert set(PII_KINDS) == {
        "email",
        "phone",
        "ip_address",
        "credit_card",
        "api_key",
        "iban",
        "ssn",
        "private_key",
        "password",
        "webhook_url",
        "credential",
    }


def test_email_is_found():
    assert find_pii("write to jane.doe+ops@mail.example.co.uk today") == [("email", "jane.doe+ops@mail.example.co.uk")]


@pytest.mark.parametrize(
    "address",
    [
        "alice [at] example [dot] com",
        "bob(at)example(dot)org",
        "carol {at} mail {dot} example {dot} net",
        "dave AT example DOT io",
        "erin[at]example.com",
    ],
)
def test_obfuscated_email_is_found(address):
    assert find_pii(f"mail {address} for access") == [("email", address)]


@pytest.mark.parametrize(
    "address", ["jörg@exämple.de", "müller.jürgen@beispiel.de", "用户@例子.广告", "josé@xn--exmple-cua.de"]
)
def test_internationalized_email_is_found(address):
    assert find_pii(f"mail {address} today") == [("email", address)]


def test_at_and_dot_in_prose_are_not_an_email():
    assert find_pii("Look at this dot product and at the example dot notation.") == []


@pytest.mark.parametrize(
    "phone",
    [
        # United States: separators, spaces, none (after a phone word), country code
        "(212) 555-0199",
        "415-555-0134",
        "415.555.0134",
        "415 555 0134",
        "+1 415 555 0134",
        "+14155550134",
        # United Kingdom: mobiles, national and international, and London
        "07911 123456",
        "+44 7911 123456",
        "07700 900123",
        "+44 7700 900123",
        "+44 20 7946 0958",
        # Germany: every common layout of a Berlin line and a mobile
        "030 12345678",
        "030-12345678",
        "030/12345678",
        "(030) 12345678",
        "030 123 456 78",
        "030 1234567-89",
        "+49 30 12345678",
        "+49 (0)30 12345678",
        "0049 30 12345678",
        "0171 1234567",
        "+49 171 1234567",
        # France and India
        "01 23 45 67 89",
        "06 12 34 56 78",
        "01.23.45.67.89",
        "+33 1 23 45 67 89",
        "+91 98765 43210",
        "98765 43210",
        "098765 43210",
        "022 2345 6789",
    ],
)
def test_phone_number_is_found(phone):
    assert find_pii(f"call {phone} now") == [("phone", phone)]


@pytest.mark.parametrize("text", ["Call 4155550134 after six.", "phone: 9876543210", "Tel. 03012345678"])
def test_phone_number_without_separators_is_found_after_a_phone_word(text):
    assert [kind for kind, _ in find_pii(text)] == ["phone"]


@pytest.mark.parametrize(
    "iban",
    [
        "DE89 3704 0044 0532 0130 00",
        "GB82WEST12345698765432",
        "FR14 2004 1010 0505 0001 3M02 606",
        "DE89-3704-0044-0532-0130-00",
    ],
)
def test_iban_passing_mod_97_is_found(iban):
    assert find_pii(f"pay to {iban} AND NOT later") == [("iban", iban)]


def test_iban_failing_mod_97_is_not_reported():
    assert find_pii("pay to DE89 3704 0044 0532 0130 01 today") == []


@pytest.mark.parametrize(
    "text, ssn",
    [
        ("SSN 123-45-6789 on file", "123-45-6789"),
        ("ssn: 123456789", "123456789"),
        ("id 219 09 9998", "219 09 9998"),
        ("id 123.45.6789 on file", "123.45.6789"),
    ],
)
def test_us_ssn_is_found(text, ssn):
    assert find_pii(text) == [("ssn", ssn)]


@pytest.mark.parametrize("number", ["000-12-3456", "666-12-3456", "912-12-3456", "123-00-4567", "123-45-0000"])
def test_number_breaking_ssn_rules_is_not_an_ssn(number):
    assert ("ssn", number) not in find_pii(f"SSN {number}")


@pytest.mark.parametrize(
    "card",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "5500005555555559",
        "378282246310005",
        "4111.1111.1111.1111",
        "4111 11111111 1111",
        "3782 822463 10005",
        "5500.0055.5555.5559",
    ],
)
def test_luhn_valid_card_is_found(card):
    assert find_pii(f"card {card} on file") == [("credit_card", card)]


def test_card_shaped_groups_inside_a_table_of_more_than_eight_figures_are_not_a_card():
    assert find_pii("counts 12 4111 1111 1111 1111 7 8 9 10 per hour") == []


def test_card_failing_luhn_check_is_not_reported():
    assert find_pii("card 4111 1111 1111 1112 on file") == []


@pytest.mark.parametrize("address", ["10.20.30.40", "2001:db8:85a3::8a2e:370:7334", "fe80:0:0:0:200:f8ff:fe21:67cf"])
def test_ip_address_is_found(address):
    assert find_pii(f"host {address} is down") == [("ip_address", address)]


@pytest.mark.parametrize(
    "key",
    [
        "AKIAIOSFODNN7EXAMPLE",
        GITHUB_TOKEN,
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "xoxb-123456789012-abcdefghijkl",
        "sk-ant-api03-" + "Ab3" * 10,
        "sk-proj-" + "Xy9" * 10,
        "AIzaSyA-" + "b" * 31,
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "rk_live_51H8abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789",
        "glpat-" + "x1Y2z3" * 4,
    ],
)
def test_api_key_is_found(key):
    assert find_pii(f"token: {key}") == [("api_key", key)]


@pytest.mark.parametrize(
    "line",
    [
        f"aws_secret_access_key = {AWS_SECRET}",
        f'AWS_SECRET_ACCESS_KEY="{AWS_SECRET}"',
        f'"SecretAccessKey": "{AWS_SECRET}"',
    ],
)
def test_aws_secret_key_is_found(line):
    assert find_pii(line) == [("api_key", AWS_SECRET)]


def test_sha1_hash_is_not_an_aws_secret_key():
    assert find_pii("commit da39a3ee5e6b4b0d3255bfef95601890afd80709 fixed it") == []


def test_slack_webhook_url_is_found():
    url = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
    assert find_pii(f"post to {url} on failure") == [("webhook_url", url)]


@pytest.mark.parametrize(
    "name", ["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY"]
)
def test_private_key_block_is_found_whole(name):
    block = f"-----BEGIN {name}-----\n{RSA_BODY}-----END {name}-----"
    assert find_pii(f"key:\n{block}\nthat was it") == [("private_key", block)]


def test_private_key_block_without_end_line_is_found_to_the_end_of_its_body():
    block = f"-----BEGIN RSA PRIVATE KEY-----\n{RSA_BODY}".rstrip()
    assert find_pii(f"{block}\n\nThe rest is prose.") == [("private_key", block)]


@pytest.mark.parametrize(
    "url, password",
    [
        ("postgresql://user:pass@db.example.com:5432/app", "pass"),
        ("postgresql://admin:S3cr3t!P@ss@db.example.com/app", "S3cr3t!P@ss"),
        ("mysql://root:hunter2@localhost/shop", "hunter2"),
        ("redis://:opensesame42@cache:6379/0", None),
    ],
)
def test_password_in_connection_url_is_found(url, password):
    hits = find_pii(f"connect with {url} please")
    if password is None:
        assert hits == [] or hits[0][0] == "password"
    else:
        assert hits == [("password", password)]


@pytest.mark.parametrize(
    "escaped, kind",
    [
        ("ghp\\_" + "a1B2c3D4e5" * 4, "api_key"),
        ("sk\\_live\\_4eC39HqLyjWDarjtT1zdp7dc", "api_key"),
        ("alice\\_smith@example.com", "email"),
        ("alice \\[at\\] example \\[dot\\] com", "email"),
        ("postgresql://user:pa\\_ss@db.example.com/app", "password"),
    ],
)
def test_markdown_escaped_secret_is_found(escaped, kind):
    redacted, counts = redact_pii(f"found {escaped} in the page")
    assert counts == {kind: 1}
    assert "a1B2" not in redacted and "4eC39" not in redacted and "alice" not in redacted and "pa\\_ss" not in redacted


@pytest.mark.parametrize(
    "text",
    [
        "Python 3.11.7 was released on 2023-12-04; 3.12.0rc1 followed on 2023-08-06T12:30:00Z.",
        "See line 1234 of file.py, column 56.",
        "Meet at 12:30:45 in room 101.",
        "Use x[1::2] and a[::3] for slicing.",
        "The ratio was 1.5 and the total 1234567890123.",
        "Version 1.2.3 of the tool; ISBN 978-0-13-468599-1.",
        "MAC 00:1a:2b:3c:4d:5e belongs to no person.",
        (
            "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 and short 9fceb02; sha256 "
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855."
        ),
        "uuid 123e4567-e89b-12d3-a456-426614174000 and epoch 1732659200 and 2147483647 (2**31 - 1).",
        "sys.maxsize is 9223372036854775807; 4294967296 bytes is 4 GiB; port 8080; pid 30121.",
        ">>> '{:,}'.format(1234567890)\n'1,234,567,890'\n>>> int('C0A80001', 16)\n3232235521",
        "def f(x):\n    return x * 1000000 + 0o177 + 0x1F + 1e-9 + 2.5e+10",
        "pip install 'numpy>=1.26,<2.0' and torch==2.13.0+cpu from https://download.example.org/whl/cpu",
        "Dates: 12/04/2023, 04.12.2023, 2023/12/04 and times 10:15-11:45.",
    ],
)
def test_ordinary_technical_text_is_not_pii(text):
    assert find_pii(text) == []
    assert redact_pii(text) == (text, {})


def test_tables_of_figures_are_not_pii():
    rng = random.Random(9)
    figures = " ".join(str(rng.randrange(10**5)) for _ in range(2000))
    matrix = "\n".join("[" + "  ".join(f"{rng.randrange(10**5):5d}" for _ in range(8)) + "]" for _ in range(200))
    assert find_pii(figures) == [] and find_pii(matrix) == []


@pytest.mark.parametrize(
    "text",
    ["Phones: +49 30 12345678 +49 171 1234567 +44 7911 123456", "Phones: 030 12345678 / 0171 1234567 / 040 7654321"],
)
def test_phone_numbers_in_a_long_run_of_figures_are_found(text):
    assert [kind for kind, _ in find_pii(text)] == ["phone"] * 3


def test_python_documentation_has_no_pii_hits():
    hits = [(name, hit) for name, text in topics.items() for hit in find_pii(text)]
    assert hits == []


def test_demo_corpus_has_hits_only_in_its_contact_page():
    files = [p for p in DEMO_CORPUS.rglob("*") if p.suffix in {".md", ".txt", ".rst", ".html", ".jsonl"}]
    hits = {p.name for p in files for _ in find_pii(p.read_text(encoding="utf-8", errors="replace"))}
    assert hits == {CONTACTS_PAGE.name}


def test_redaction_replaces_hit_with_kind_placeholder():
    redacted, _ = redact_pii("mail jane@example.com please")
    assert redacted == "mail [REDACTED_EMAIL] please"


def test_redaction_counts_hits_by_kind():
    _, counts = redact_pii(f"a@example.com, b@example.com, 10.0.0.1, {GITHUB_TOKEN}, IBAN GB82WEST12345698765432")
    assert counts == {"email": 2, "ip_address": 1, "api_key": 1, "iban": 1}


def test_redacted_text_has_no_pii_left():
    redacted, counts = redact_pii(CONTACTS_PAGE.read_text(encoding="utf-8"))
    assert find_pii(redacted) == []
    assert set(counts) == {"email", "phone", "ip_address", "credit_card", "api_key"}


def test_text_without_pii_is_unchanged():
    text = "Nothing personal in here, only version 3.11.7."
    assert redact_pii(text) == (text, {})


@pytest.mark.parametrize(
    "locator, expected",
    [
        ("people/alice@example.com.md", "people/[REDACTED_EMAIL].md"),
        ("calls/jane +1 415 555 0134.txt", "calls/jane [REDACTED_PHONE].txt"),
        ("export.jsonl#L12", "export.jsonl#L12"),
        ("bob(at)example(dot)org/faq.jsonl#L3", "[REDACTED_EMAIL]/faq.jsonl#L3"),
        ("guide/v3.11.7-notes.rst", "guide/v3.11.7-notes.rst"),
    ],
)
def test_locator_is_redacted_keeping_extension_and_line(locator, expected):
    assert redact_locator(locator) == expected


def test_preview_rows_are_redacted_in_the_named_columns_only():
    rows = [
        {"locator": "a.md", "text": "mail jane@example.com", "title": "Call +44 7911 123456"},
        {"locator": "b.md", "text": "x", "title": None},
    ]
    assert redacted_rows(rows, ["text", "title"], limit=1) == [
        {"locator": "a.md", "text": "mail [REDACTED_EMAIL]", "title": "Call [REDACTED_PHONE]"}
    ]


LEFT_IN_TEXT = {
    "email": "write to alice [at] example [dot] com",
    "phone": "ring 030 12345678",
    "iban": "IBAN DE89 3704 0044 0532 0130 00",
    "ssn": "SSN 123-45-6789",
    "api_key": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "webhook_url": "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    "private_key": f"-----BEGIN RSA PRIVATE KEY-----\n{RSA_BODY}-----END RSA PRIVATE KEY-----",
    "password": "postgresql://app:Tr0ub4dor@db.example.com/app",
}


@pytest.mark.parametrize("kind", sorted(LEFT_IN_TEXT))
def test_no_pii_rule_fails_on_each_kind_left_in_text(kind):
    outcome = validate_rule(no_pii_left(), pd.DataFrame({"text": ["nothing here", f"see {LEFT_IN_TEXT[kind]} today"]}))
    assert (outcome.passed, outcome.failures) == (False, 1)


def test_no_pii_rule_fails_on_a_title_or_locator_and_lets_missing_titles_pass():
    frame = pd.DataFrame(
        {
            "text": ["fine", "fine"],
            "title": [None, "Notes for jane@example.com"],
            "locator": ["a.md", "call 030 12345678.md"],
        }
    )
    outcome = validate_rule(no_pii_left("text", "title", "locator"), frame)
    assert (outcome.passed, outcome.failures) == (False, 2)


def test_rule_failure_examples_are_redacted():
    outcome = validate_rule(no_pii_left(), pd.DataFrame({"text": ["Write to jane.doe@example.com for help."]}))
    assert outcome.examples == ["Write to [REDACTED_EMAIL] for help."]


def _read(folder: Path, previous=None):
    table = None if previous is None else pa.Table.from_pylist(previous.rows, schema=RAW_SCHEMA)
    return read_source(
        "docs", str(folder), "**/*", table, previous_quarantine=None if previous is None else previous.quarantine
    )


def test_source_rows_carry_redacted_locators_and_doc_ids_of_the_real_path(tmp_path):
    (tmp_path / "alice@example.com.md").write_text(topics["for"], encoding="utf-8")
    (row,) = _read(tmp_path).rows
    assert (row["locator"], row["doc_id"]) == ("[REDACTED_EMAIL].md", doc_id_for("docs", "alice@example.com.md"))


def test_unchanged_file_with_pii_in_its_name_is_not_read_again(tmp_path):
    (tmp_path / "alice@example.com.md").write_text(topics["for"], encoding="utf-8")
    again = _read(tmp_path, _read(tmp_path))
    assert (again.files_read, len(again.unchanged)) == (0, 1)


def test_files_whose_names_differ_only_in_pii_are_not_mixed_up(tmp_path):
    first = tmp_path / "alice@example.com.md"
    first.write_text(topics["for"], encoding="utf-8")
    (tmp_path / "while.md").write_text(topics["while"], encoding="utf-8")
    earlier = _read(tmp_path)
    first.rename(tmp_path / "bob@example.org.md")
    later = _read(tmp_path, earlier)
    # Same size and time, same redacted name: only the doc_id shows it is another file.
    assert (later.files_read, later.added, later.removed) == (
        1,
        [doc_id_for("docs", "bob@example.org.md")],
        [doc_id_for("docs", "alice@example.com.md")],
    )


def test_quarantine_records_name_the_file_redacted(tmp_path):
    (tmp_path / "call +44 7911 123456.md").write_bytes(b"")
    (record,) = _read(tmp_path).quarantine
    assert record["locator"] == "call [REDACTED_PHONE].md" and "7911" not in record["reason"]


def test_a_number_with_a_full_width_plus_sign_is_an_international_phone_number():
    assert find_pii("Reach the desk on \uff0b44 7700 900123 today.") == [("phone", "\uff0b44 7700 900123")]


def test_the_same_digits_are_a_phone_number_only_where_a_phone_word_precedes_them():
    # The matcher's answer for a stretch of digits is remembered; the phone-word rule still reads each text.
    assert find_pii("Our phone number is 4155550134.") == [("phone", "4155550134")]
    assert find_pii("The counter value is 4155550134.") == []
    assert find_pii("Our phone number is 4155550134.") == [("phone", "4155550134")]


def test_text_found_clean_by_redaction_is_clean_to_find_pii_and_other_text_is_still_read():
    cleaned, _ = redact_pii("Write to carol.white@example.net about it.")
    assert find_pii(cleaned) == []
    assert find_pii(cleaned + " Or to dave@example.org.") == [("email", "dave@example.org")]


def test_only_texts_found_clean_are_handed_on_and_the_receiving_process_takes_them(monkeypatch):
    from llm_platform.documents import pii

    cleaned, _ = redact_pii("Call 4155550134 or write to carol.white@example.net.")
    handed_on = pii.clean_digests([cleaned, "a text no redaction round has read"])
    assert len(handed_on) == 1
    monkeypatch.setattr(pii, "_FOUND_CLEAN", {})  # the step's own process, which cleaned nothing
    assert pii.clean_digests([cleaned]) == []
    pii.remember_clean_digests(handed_on)
    assert pii.clean_digests([cleaned]) == handed_on and find_pii(cleaned) == []
