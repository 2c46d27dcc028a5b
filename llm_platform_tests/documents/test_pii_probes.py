"""PII and secret probes in every format, file names and titles, through the real document pipeline.

Nothing a probe holds may reach cleaned_corpus, chunks, the vector index (what
`llm-platform search` reads) or the event log (materialization metadata,
previews, check examples).
"""

from __future__ import annotations

import html
import json
import re
from pydoc_data.topics import topics

import dagster as dg
import pytest

from llm_platform.automation.jobs import DOCUMENT_ASSETS
from llm_platform.config import load_config
from llm_platform.datasets import DatasetStore
from llm_platform.documents.datasets import (
    CHUNKS_DATA,
    CLEANED_CORPUS_DATA,
    CLEANED_QUARANTINE_DATA,
    CLEANED_SET_ASIDE_DATA,
)
from llm_platform.home_layout import lancedb_uri
from llm_platform.index.table import connect, open_table, table_name
from llm_platform_tests.conftest import materialization
from llm_platform_tests.pii_variants import CREDENTIAL_SYNTAXES, REPORTED_VARIANTS

PRIVATE_KEY_LINE = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun"
# (kind, text written into documents, substrings none of which may be stored or shown)
PROBES = [
    ("email", "alice [at] example [dot] com", ["alice"]),
    ("email", "bob(at)example(dot)org", ["bob(at)"]),
    ("email", "carol.white@example.net", ["carol.white"]),
    ("phone", "call 4155550134 or 415 555 0135", ["4155550134", "555 0135"]),
    ("phone", "the UK mobile 07911 123456", ["07911", "123456"]),
    ("phone", "Berlin 030 12345678, +49 (0)30 87654321, 0171 1234567", ["12345678", "87654321", "1234567"]),
    ("phone", "Paris 01 23 45 67 89, Mumbai +91 98765 43210", ["45 67 89", "98765"]),
    ("iban", "IBAN DE89 3704 0044 0532 0130 00", ["0532 0130"]),
    ("ssn", "SSN 123-45-6789", ["123-45-6789"]),
    ("api_key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ["wJalrXUtnFEMI"]),
    ("webhook_url", "https://hooks.slack.com/services/T0ABCDEFG/B0ABCDEFG/q1w2e3r4t5y6u7i8o9p0a1s2", ["q1w2e3r4t5"]),
    ("api_key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc and rk_live_51H8abcdefghijklmnopqrstu", ["4eC39HqLy", "51H8abcdef"]),
    ("api_key", "ghp_" + "a1B2c3D4e5" * 4, ["a1B2c3D4e5"]),
    ("password", "postgresql://app:Tr0ub4dor@db.internal.example.com:5432/app", ["Tr0ub4dor"]),
    # The near variants of issue 16, and credentials in each config and URL syntax.
    *((kind, text, [secret]) for kind, text, secret in REPORTED_VARIANTS),
    *(("credential", text, [secret]) for text, secret in CREDENTIAL_SYNTAXES),
]
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE "
    f"KEY-----\n{PRIVATE_KEY_LINE}\nVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END "
    "RSA PRIVATE KEY-----"
)
# File names and titles carry PII too.
FILE_STEMS = {
    "txt": "notes for dave.jones@example.com",
    "md": "contacts",
    "html": "page",
    "rst": "call +44 7911 654321",
    "jsonl": "faq",
}
TITLE = "Escalation for erin.black@example.org"
NEEDLES = [needle for _, _, needles in PROBES for needle in needles] + [
    PRIVATE_KEY_LINE[20:40],
    "dave.jones",
    "7911 654321",
    "erin.black",
]
FILLERS = {"txt": "for", "md": "while", "html": "class", "rst": "raise", "jsonl": "with"}
CONFIG = "sources:\n  - name: probes\n    location: corpus\nchunking:\n  max_tokens: 128\n  overlap: 16\n"


def _probe_paragraphs() -> list[str]:
    return [f"For this case, the contact is {text}, as noted by the team." for _, text, _ in PROBES]


def _filler(fmt: str) -> str:
    return topics[FILLERS[fmt]].split("\n", 2)[2]


def _documents() -> dict[str, str]:
    probes = _probe_paragraphs()
    code_block = "\n".join("   " + line for line in PRIVATE_KEY.splitlines())
    page = "".join(f"<p>{html.escape(p)}</p>" for p in probes + _filler("html").split("\n\n"))
    record = {"title": TITLE, "text": "\n\n".join([*probes, PRIVATE_KEY, _filler("jsonl")])}
    return {
        "txt": "\n\n".join([TITLE, *probes, PRIVATE_KEY, _filler("txt")]),
        "md": "\n\n".join([f"# {TITLE}", *probes, f"```\n{PRIVATE_KEY}\n```", _filler("md")]),
        "html": f"<html><head><title>{TITLE}</title></head><body><main>{page}<pre>"
        f"{PRIVATE_KEY}</pre></main></body></html>",
        "rst": "\n\n".join([TITLE, "=" * len(TITLE), *probes, f"::\n\n{code_block}", _filler("rst")]),
        "jsonl": json.dumps(record) + "\n",
    }


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """The probe corpus materialized through vector_index; the instance is kept for its event log."""
    from llm_platform.definitions import build_definitions

    root = tmp_path_factory.mktemp("pii_probes")
    (root / "corpus").mkdir()
    for fmt, text in _documents().items():
        (root / "corpus" / f"{FILE_STEMS[fmt]}.{fmt}").write_text(text, encoding="utf-8")
    (root / "platform.yaml").write_text(CONFIG, encoding="utf-8")
    (root / "home").mkdir()
    config = load_config(root / "platform.yaml")
    defs = build_definitions(config, home=str(root / "home"), executor="in_process")
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        list(defs.assets),
        selection=DOCUMENT_ASSETS,
        partition_key="probes",
        resources=defs.resources,
        instance=instance,
    )
    return config, root / "home", result, instance


def _leaks(text: str) -> list[str]:
    # Digits around a needle make it part of a longer number (a timestamp, a duration), not a leak.
    return [needle for needle in NEEDLES if re.search(rf"(?<![0-9]){re.escape(needle)}(?![0-9])", text)]


def test_every_probe_document_reaches_the_cleaned_corpus(probed):
    _, home, _, _ = probed
    rows = DatasetStore(str(home)).read(CLEANED_CORPUS_DATA, "probes").to_pylist()
    assert sorted(row["format"] for row in rows) == sorted(FILE_STEMS)


@pytest.mark.parametrize(
    "dataset",
    [CLEANED_CORPUS_DATA, CLEANED_SET_ASIDE_DATA, CHUNKS_DATA, CLEANED_QUARANTINE_DATA],
    ids=lambda dataset: dataset.name,
)
def test_no_probe_is_stored_in_a_dataset(probed, dataset):
    _, home, _, _ = probed
    table = DatasetStore(str(home)).read(dataset, "probes")
    stored = json.dumps(
        table.drop_columns([c for c in table.column_names if c in ("minhash",)]).to_pylist(), default=str
    )
    assert _leaks(stored) == []


def test_no_probe_is_stored_in_the_vector_index(probed):
    config, home, _, _ = probed
    table = open_table(connect(lancedb_uri(str(home))), table_name(config.index.table, config.embedding.model))
    rows = table.to_arrow().drop_columns(["vector"]).to_pylist()
    assert rows and _leaks(json.dumps(rows, default=str)) == []


def test_no_probe_reaches_the_event_log(probed):
    _, _, result, instance = probed
    logged = "\n".join(dg.serialize_value(entry) for entry in instance.all_logs(result.run_id))
    assert "raw_documents" in logged and _leaks(logged) == []


def test_cleaned_corpus_counts_redactions_of_every_kind(probed):
    _, _, result, _ = probed
    counted = materialization(result, "cleaned_corpus")["pii_redactions_by_kind"]
    assert {kind for kind, _, _ in PROBES} | {"private_key"} <= set(counted)
    # Every format holds every probe; titles add e-mails.
    ssn_probes = sum(kind == "ssn" for kind, _, _ in PROBES)
    assert counted["private_key"] == len(FILE_STEMS) and counted["ssn"] == ssn_probes * len(FILE_STEMS)


def test_no_pii_check_passes_on_the_redacted_corpus(probed):
    _, _, result, _ = probed
    evaluations = {
        e.check_name: e
        for e in result.get_asset_check_evaluations()
        if e.asset_key.to_user_string() == "cleaned_corpus"
    }
    assert evaluations["no_pii_left"].passed


def test_locators_are_redacted_but_doc_ids_follow_the_real_path(probed):
    from llm_platform.identity import doc_id_for

    _, home, _, _ = probed
    rows = {row["format"]: row for row in DatasetStore(str(home)).read(CLEANED_CORPUS_DATA, "probes").to_pylist()}
    assert rows["txt"]["locator"] == "notes for [REDACTED_EMAIL].txt"
    assert rows["txt"]["doc_id"] == doc_id_for("probes", f"{FILE_STEMS['txt']}.txt")
    assert rows["rst"]["locator"] == "call [REDACTED_PHONE].rst"
