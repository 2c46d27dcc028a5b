"""The independent audit behind `no_pii_left`: it sees what the redactor
misses, and nothing in redacted or technical text.
"""

import json
import random
from pathlib import Path
from pydoc_data.topics import topics

import pandas as pd
import pytest

import llm_platform
import llm_platform.documents.pii_rule
from llm_platform.documents.cleaning import clean_document
from llm_platform.documents.pii import redact_pii
from llm_platform.documents.pii_audit import audit_pii, audit_random_tokens, mask_audit_hits
from llm_platform.documents.pii_rule import no_pii_left, no_random_tokens_left
from llm_platform.rules import validate_rule
from llm_platform_tests.pii_variants import CREDENTIAL_SYNTAXES, REPORTED_VARIANTS

DEMO_CORPUS = Path(llm_platform.__file__).parent / "demo" / "corpus"
# Stretches of installed packages' READMEs (benchmarks/pii_audit_readmes.py) that the
# audit flagged after cleaning, though the redactor was right to keep them.
README_FALSE_ALARMS = [
    json.loads(line)
    for line in (Path(__file__).parent / "readmes" / "pii_audit_false_alarms.jsonl")
    .read_text(encoding="utf-8")
    .splitlines()
]
# Earlier probes (issue 9) and the shapes the redactor knows, written as a leak would leave them.
KNOWN_SHAPES = [
    "alice [at] example [dot] com",
    "carol.white@example.net",
    "+44 7700 900123",
    "415 555 0134",
    "(212) 555-0199",
    "07911 123456",
    "030/12345678",
    "01 23 45 67 89",
    "Call 4155550134",
    "DE89 3704 0044 0532 0130 00",
    "GB82WEST12345698765432",
    "123-45-6789",
    "4111 1111 1111 1111",
    "10.20.30.40",
    "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "ghp_" + "a1B2c3D4e5" * 4,
    "ghp\\_" + "a1B2c3D4e5" * 4,
    "https://hooks.slack.com/services/T0ABCDEFG/B0ABCDEFG/q1w2e3r4t5y6u7i8o9p0a1s2",
    "-----BEGIN RSA PRIVATE KEY-----",
    "postgresql://app:Tr0ub4dor@db.example.com:5432/app",
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
    outcome = validate_rule(
        no_pii_left(), pd.DataFrame({"text": ["nothing here", f"For this case, use {probe}, as noted."]})
    )
    assert (outcome.passed, outcome.failures) == (False, 1)


@pytest.mark.parametrize("probe", EVERY_PROBE)
def test_audit_finds_nothing_once_the_probe_is_redacted(probe):
    assert audit_pii(redact_pii(f"For this case, use {probe}, as noted.")[0]) == []


def test_audit_flags_a_card_in_a_short_run_of_figures():
    assert [kind for kind, _ in audit_pii("counts 12 4111 1111 1111 1111 7 per hour")] == ["credit_card"]


@pytest.mark.parametrize(
    "text", ["card 4111/1111/1111/1111 on file", "card 4111_1111_1111_1111 on file", "id 123/45/6789 on file"]
)
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
    hits = [
        (p.name, hit)
        for p in files
        for hit in audit_pii(redact_pii(p.read_text(encoding="utf-8", errors="replace"))[0])
    ]
    assert hits == []


def test_masked_text_shows_where_the_audit_found_something_but_not_what():
    masked = mask_audit_hits("counts 12 4111 1111 1111 1111 7 per hour")
    assert "4111" not in masked and "[FLAGGED_CREDIT_CARD]" in masked


def test_rule_failure_examples_hide_what_only_the_audit_found(redactor_switched_off):
    outcome = validate_rule(no_pii_left(), pd.DataFrame({"text": ["counts 12 4111 1111 1111 1111 7 per hour"]}))
    assert not outcome.passed and all("4111" not in example for example in outcome.examples)


@pytest.mark.parametrize("snippet", README_FALSE_ALARMS, ids=lambda row: row["package"])
def test_audit_finds_nothing_in_real_readmes_once_cleaned(snippet):
    cleaned = clean_document(snippet["text"], fmt=snippet["format"], title=None)
    assert audit_pii(cleaned.text) == [] and audit_random_tokens(cleaned.text) == []


@pytest.mark.parametrize(
    "text",
    [
        'api_key=os.environ["OPENAI_API_KEY"]',
        "password=getpass.getpass('Password: ')",
        "token: str",
        "password: string",
        'api_key="<your-api-key>"',
        "api_key: your-api-key",
        'password = "xxxxxxxx"',
        "token = '...'",
        "aws_access_key_id=AWS_ACCESS_KEY_ID",
        "resource_owner_secret='resource_owner_secret'",
        "auth_type='azure-cli'",
        "author = {Sylvain Gugger}",
        "tokenizer = Tokenizer.from_pretrained('bert-base-cased')",
        "OAuth2\n======",
        "password = not-a-real-secret",
        "password: YourPassword",
    ],
)
def test_audit_reads_code_references_and_examples_under_a_secret_key_as_no_secret(text):
    assert audit_pii(f"For example:\n{text}\nas the README shows.") == []


@pytest.mark.parametrize(
    "text",
    [
        "auth_token: Zx81kq0pLm",
        "client_secret = 7f3kQ9w2",
        "my_passwd: sunshine",
        "db_password: monkeybusiness",
        "api_key = 'abc-123-def'",
    ],
)
def test_audit_flags_a_secret_shaped_value_under_a_secret_key(text):
    assert [kind for kind, _ in audit_pii(f"Settings: {text} for production.")] == ["credential"]


def test_audit_flags_a_token_with_the_prefix_of_a_provider_the_redactor_does_not_know():
    text = "set ZED_TOKEN to zd_live_8fK2mQ9xT4vB7nL1pR6sW3yH"
    assert redact_pii(text)[0] == text and [kind for kind, _ in audit_pii(text)] == ["api_key"]


def test_audit_flags_a_webhook_url_of_any_provider():
    assert [kind for kind, _ in audit_pii("post to https://hooks.zapier.com/hooks/catch/123/q8Wk2Lp9Zr4Tn7Xv")] == [
        "api_key"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "plugins: Base64HighEntropyString, HexHighEntropyString",
        "redirects when AioS3RegionRedirectorv2 follows",
        'SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")',
        'File "C:\\Python310\\lib\\site-packages\\regex\\regex.py"',
        "https://github.com/fonttools/fonttools/security/advisories/GHSA-768j-98cg-p3fv",
        "commit 3f34ad8b0acb3f263606ee5de1cab5c1d2e3f4a5b6c7",
    ],
)
def test_audit_reads_identifiers_paths_and_hashes_as_no_token(text):
    assert audit_pii(text) == [] and audit_random_tokens(text) == []


def test_a_random_token_without_a_name_is_only_a_warning():
    text = "join at https://discord.example/invite/vur45CbwMzQp8Rt2LxY7d"
    assert audit_pii(text) == [] and [kind for kind, _ in audit_random_tokens(text)] == ["random_token"]


def test_random_token_rule_fails_on_a_token_and_passes_technical_text():
    outcome = validate_rule(
        no_random_tokens_left(), pd.DataFrame({"text": ["plain text", "key vur45CbwMzQp8Rt2LxY7d here"]})
    )
    passing = validate_rule(no_random_tokens_left(), pd.DataFrame({"text": list(topics.values())}))
    assert (outcome.passed, outcome.failures, passing.passed) == (False, 1, True)
    assert all("vur45" not in example for example in outcome.examples)


@pytest.mark.parametrize(
    "number, flagged",
    [("+1 415 555 0134", True), ("+120012301", False), ("(650) 253-2222", True), ("(650) 253-222", False)],
)
def test_audit_reads_a_north_american_number_only_with_ten_digits(number, flagged):
    assert bool(audit_pii(f'parse("{number}") for the record')) == flagged


@pytest.mark.parametrize(
    "text",
    [
        "see https://spec.openapis.org/oas/3.2/dialect/2025-09-17 for it",
        "fix close call\n\n2.1.1 (2022-02-10)",
        "callback 0301234567 times",
    ],
)
def test_audit_reads_a_phone_word_only_whole_and_on_the_line_of_its_number(text):
    assert audit_pii(text) == []


def test_audit_reads_an_all_zero_uuid_as_no_card():
    assert audit_pii("account_id = 00000000-0000-0000-0000-000000000000") == []


def test_audit_reads_a_handle_in_a_link_as_no_address():
    assert audit_pii("TikTok: https://www.tiktok.com/@scikit.learn") == []


def test_audit_reads_authorization_in_prose_as_no_header():
    assert audit_pii("supply its own Authorization settings through default_headers") == []
