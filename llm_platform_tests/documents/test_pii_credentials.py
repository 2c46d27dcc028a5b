"""Credentials found by their key name or header, whatever the syntax; prose, placeholders and code pass."""

import pytest

from llm_platform.documents.pii import find_pii, redact_pii
from llm_platform_tests.pii_variants import CREDENTIAL_SYNTAXES, REPORTED_VARIANTS


@pytest.mark.parametrize("kind, text, secret", REPORTED_VARIANTS)
def test_reported_variant_is_redacted(kind, text, secret):
    redacted, counts = redact_pii(f"For this case, use {text}, as noted.")
    assert secret not in redacted and counts == {kind: 1}


@pytest.mark.parametrize("text, secret", CREDENTIAL_SYNTAXES)
def test_credential_is_found_in_each_syntax(text, secret):
    hits = find_pii(f"config: {text} as deployed")
    assert secret in [value for _, value in hits]


@pytest.mark.parametrize(
    "text, kept",
    [
        ("host=db user=app password=s3cr3tP4ss dbname=x", "host=db user=app password=[REDACTED_CREDENTIAL] dbname=x"),
        ('{"client_secret": "c1ient-S3cret-value"}', '{"client_secret": "[REDACTED_CREDENTIAL]"}'),
        ("DB_PASSWORD=Pl4in-Env-Secret.", "DB_PASSWORD=[REDACTED_CREDENTIAL]."),
    ],
)
def test_credential_redaction_keeps_the_key_name(text, kept):
    assert redact_pii(text)[0] == kept


def test_credential_ending_in_punctuation_is_redacted_whole():
    assert redact_pii("DB_PASSWORD=Sup3rS3cret!")[0] == "DB_PASSWORD=[REDACTED_CREDENTIAL]"


@pytest.mark.parametrize(
    "text",
    [
        "The password field must be at least twelve characters long.",
        "token: see below",
        "Password: must contain a digit",
        "password: <password>",
        "password=${DB_PASSWORD}",
        "password = %(password)s",
        "api_key: {{ .Values.apiKey }}",
        "secret: ***",
        "DB_PASSWORD=changeme",
        "password: your_password_here",
        "pwd=abc",
        "max_tokens: 128",
        "tokenizer: sentencepiece-v2",
        "author: Jane Smith",
        "secret_name: prod-db-credentials",
        "PWD=/home/app/current",
    ],
)
def test_prose_and_placeholders_are_not_credentials(text):
    assert find_pii(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "secret = os.environ['APP_SECRET']",
        "password = getpass.getpass()",
        "token = self.refresh_token",
        "api_key=api_key",
        "password = read_secret(path)",
    ],
)
def test_code_reading_a_credential_is_not_one(text):
    assert find_pii(text) == []


@pytest.mark.parametrize(
    "token",
    [
        "hf_aBcD1234eFgH5678iJkL9012mNoP3456qR",
        "api_org_aBcD1234eFgH5678iJkL9012mNoP3456qR",
        "ya29.a0AfH6SMBx3_Kq9" + "Zr" * 10,
        "GOCSPX-" + "aB3dE5fG7hI9" * 3,
        "shpat_" + "a1b2c3d4" * 4,
        "dop_v1_" + "0a1b2c3d" * 8,
        "dapi" + "0123456789abcdef" * 2,
        "glsa_" + "Ab1Cd2Ef3Gh4" * 3 + "_0a1b2c3d",
        "hvs." + "CAESI" * 6,
        "npm_" + "A1b2C3d4E5f6" * 3,
        "gsk_" + "Q1w2E3r4" * 7,
        "sbp_" + "0a1b2c3d4e" * 4,
    ],
)
def test_provider_token_detect_secrets_misses_is_found(token):
    assert find_pii(f"deploy with {token} today") == [("api_key", token)]


def test_query_log_and_feedback_redaction_catches_every_reported_variant():
    # The query log and feedback records go through redact_pii.
    text = " and ".join(text for _, text, _ in REPORTED_VARIANTS)
    redacted, _ = redact_pii(text)
    assert [secret for _, _, secret in REPORTED_VARIANTS if secret in redacted] == []
