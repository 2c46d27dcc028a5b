"""Credentials are masked out of URIs and out of text that quotes them."""

from __future__ import annotations

import pytest

from llm_platform.resources.redaction import redact_text, redact_uri


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("http://ci:pw@mlflow:5000/", "http://ci:***@mlflow:5000/"),
        ("postgresql://mlflow:p%40ss@db.internal:5432/mlflow", "postgresql://mlflow:***@db.internal:5432/mlflow"),
        ("https://token123@mlflow.example.com", "https://***@mlflow.example.com"),
        ("https://mlflow.example.com/?token=abc&x=1", "https://mlflow.example.com/?token=***&x=1"),
        ("http://mlflow.llm-platform.svc.cluster.local:5000", "http://mlflow.llm-platform.svc.cluster.local:5000"),
        ("sqlite:////data/mlflow/mlflow.db", "sqlite:////data/mlflow/mlflow.db"),
    ],
)
def test_redact_uri_masks_only_the_secret(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown


def test_redact_text_masks_the_uri_and_the_bare_secret_in_decoded_form() -> None:
    uri = "postgresql://mlflow:p%40ss@db:5432/mlflow"
    text = f"could not connect to {uri}: password authentication failed (password 'p@ss')"
    redacted = redact_text(text, uri)
    assert "p@ss" not in redacted and "p%40ss" not in redacted
    assert "postgresql://mlflow:***@db:5432/mlflow" in redacted


def test_redact_text_leaves_text_without_secrets_alone() -> None:
    assert redact_text("connection refused", "http://mlflow:5000") == "connection refused"
