"""Records kept out of SFT training: one warning line with the counts per
reason and file, each record in the metadata and at DEBUG.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import dagster as dg
import pytest

from llm_platform.config import SFT_RULE_NAMES
from llm_platform.model.sft_assets import sft_pairs_asset
from llm_platform.model.sft_build import build_sft, read_jsonl_files, set_aside_summary
from llm_platform.resources.platform import PlatformConfigResource, StorageResource

GOOD_CURATED = {
    "instruction": "What does the with statement do?",
    "response": "It runs a block inside a context manager.",
}


def _lines(*records) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n"


@pytest.fixture
def sft_files(tmp_path: Path) -> tuple[Path, Path]:
    """A curated file with a line that is not JSON (2) and a short instruction (3);
    feedback with three low ratings (1-3) and a short answer (4).
    """
    curated = tmp_path / "curated.jsonl"
    curated.write_text(
        _lines(GOOD_CURATED, '{"instruction": "broken', {"instruction": "Why?", "response": "Because it is so."}),
        encoding="utf-8",
    )
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text(
        _lines(
            *(
                {"question": f"What is item number {n}?", "answer": "An item of the list.", "rating": n}
                for n in (1, 2, 3)
            ),
            {"question": "What is a generator?", "answer": "Lazy", "rating": 5},
            {"question": "What is a coroutine?", "answer": "An awaitable function.", "rating": 5},
        ),
        encoding="utf-8",
    )
    return curated, feedback


def test_set_aside_records_are_summarised_in_one_line_counted_by_reason_and_file(sft_files):
    curated, feedback = sft_files
    built = build_sft(
        [],
        read_jsonl_files(str(curated)),
        read_jsonl_files(str(feedback)),
        eval_fraction=0.2,
        min_feedback_rating=4,
        max_corpus_pairs=0,
    )
    assert set_aside_summary(built.set_aside) == (
        "set aside 6 SFT records: 3 rated below sft.min_feedback_rating "
        "(feedback.jsonl: 3), 1 not a JSON object (curated.jsonl:2), "
        "1 breaking instruction_length (curated.jsonl:3), 1 breaking response_length (feedback.jsonl:4)"
    )


def test_nothing_set_aside_gives_no_summary():
    assert set_aside_summary([]) is None


def test_sft_pairs_logs_one_set_aside_warning_and_lists_each_record_in_its_metadata(tmp_path, sft_files):
    curated, feedback = sft_files
    (tmp_path / "corpus").mkdir()
    limits = {rule: 1.0 for rule in SFT_RULE_NAMES}  # the rule checks are not what this test is about
    config = {
        "sources": [{"name": "docs", "location": "corpus"}],
        "sft": {"curated_location": str(curated), "feedback_location": str(feedback), "max_violation_share": limits},
    }
    (tmp_path / "platform.yaml").write_text(json.dumps(config), encoding="utf-8")
    resources = {
        "platform": PlatformConfigResource(path=str(tmp_path / "platform.yaml")),
        "storage": StorageResource(home=str(tmp_path / "home")),
    }

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([sft_pairs_asset(dg.AssetSpec("chunks"), {})], resources=resources, instance=instance)
        logs = [entry for entry in instance.all_logs(result.run_id) if "set aside" in (entry.user_message or "")]

    warnings = [entry.user_message for entry in logs if entry.level == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(
        "set aside 6 SFT records: 3 rated below sft.min_feedback_rating (feedback.jsonl: 3), "
    )
    assert len([entry for entry in logs if entry.level == logging.DEBUG]) == 6
    metadata = result.asset_materializations_for_node("sft_pairs")[0].metadata
    listed = [record["message"] for record in metadata["set_aside_records"].value]
    assert len(listed) == 6 and metadata["set_aside"].value == 6
    assert any(m.startswith(f"{curated}:2: ") and "not valid JSON" in m for m in listed)
    assert sum(f"{feedback}:{line}: rating {line} is below" in m for m in listed for line in (1, 2, 3)) == 3
