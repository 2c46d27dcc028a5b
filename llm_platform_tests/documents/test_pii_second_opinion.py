"""`no_pii_left` through the real document stages: it passes the demo
corpus and fails each leak the redactor lets through.
"""

from __future__ import annotations

from pathlib import Path
from pydoc_data.topics import topics

import dagster as dg
import pytest

import llm_platform.documents.cleaning
import llm_platform.documents.pii_rule
from llm_platform.config import DEMO_CONFIG, load_config
from llm_platform.datasets import DatasetStore
from llm_platform.documents.assets import CLEAN_NO_PII, CLEAN_NO_RANDOM_TOKENS
from llm_platform.documents.datasets import CLEANED_CORPUS_DATA
from llm_platform.documents.pii_audit import audit_pii
from llm_platform_tests.pii_variants import REPORTED_VARIANTS

CLEANING = ["raw_documents", "cleaned_corpus"]
# One worker: the redactor switched off below must be the one that cleans.
CONFIG = "sources:\n  - name: leaks\n    location: corpus\ndocuments:\n  workers: 1\n"
FILLER_TOPICS = [
    "for",
    "while",
    "if",
    "with",
    "raise",
    "assert",
    "return",
    "del",
    "lambda",
    "global",
    "nonlocal",
    "class",
]


def _clean(config_path: Path, home: Path, partition: str, *, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    from llm_platform.definitions import build_definitions

    defs = build_definitions(load_config(config_path), home=str(home), executor="in_process")
    return dg.materialize(
        list(defs.assets),
        selection=CLEANING,
        partition_key=partition,
        resources=defs.resources,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


def _evaluation(result: dg.ExecuteInProcessResult, name: str = CLEAN_NO_PII) -> dg.AssetCheckEvaluation:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


@pytest.mark.parametrize("partition", load_config(DEMO_CONFIG).source_names)
def test_demo_corpus_passes_the_check_and_the_audit_finds_nothing_in_it(tmp_path, partition):
    result = _clean(DEMO_CONFIG, tmp_path, partition)
    rows = DatasetStore(str(tmp_path)).read(CLEANED_CORPUS_DATA, partition).to_pylist()
    hits = [
        (row["locator"], hit)
        for row in rows
        for column in ("text", "title", "locator")
        for hit in audit_pii(row[column] or "")
    ]
    assert rows and hits == [] and _evaluation(result).passed


def test_check_fails_on_every_leak_when_the_redactor_is_switched_off(tmp_path, monkeypatch):
    monkeypatch.setattr(llm_platform.documents.cleaning, "redact_pii", lambda text: (text, {}))
    monkeypatch.setattr(llm_platform.documents.pii_rule, "find_pii", lambda text: [])
    (tmp_path / "corpus").mkdir()
    # A different help topic around each leak, so no document is a near-duplicate of another.
    for (_, text, _), topic in zip(REPORTED_VARIANTS, FILLER_TOPICS, strict=False):
        filler = topics[topic].split("\n", 2)[2][:1500]
        (tmp_path / "corpus" / f"{topic}.txt").write_text(
            f"For this case, use {text}, as noted.\n\n{filler}", encoding="utf-8"
        )
    (tmp_path / "platform.yaml").write_text(CONFIG, encoding="utf-8")
    result = _clean(tmp_path / "platform.yaml", tmp_path / "home", "leaks", raise_on_error=False)
    evaluation = _evaluation(result)
    assert not result.success and not evaluation.passed  # blocking: the run stops there
    assert evaluation.metadata["failures"].value == len(REPORTED_VARIANTS)


def test_an_unnamed_random_token_warns_without_blocking_the_run(tmp_path):
    (tmp_path / "corpus").mkdir()
    filler = topics["for"].split("\n", 2)[2][:1500]
    (tmp_path / "corpus" / "invite.txt").write_text(
        f"Join us at https://chat.example/invite/vur45CbwMzQp8Rt2LxY7d today.\n\n{filler}", encoding="utf-8"
    )
    (tmp_path / "platform.yaml").write_text(CONFIG, encoding="utf-8")
    result = _clean(tmp_path / "platform.yaml", tmp_path / "home", "leaks", raise_on_error=False)
    warning = _evaluation(result, CLEAN_NO_RANDOM_TOKENS)
    assert result.success and _evaluation(result).passed
    assert (warning.passed, warning.severity, warning.metadata["failures"].value) == (
        False,
        dg.AssetCheckSeverity.WARN,
        1,
    )
