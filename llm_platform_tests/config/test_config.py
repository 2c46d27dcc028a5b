"""The config file is validated once, at load: a mistake names the file and the field."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from llm_platform.config import ConfigError, config_at, load_config
from llm_platform.resources.platform import CONFIG_TAG, PlatformConfigResource, guard_one_config

VALID = "sources:\n  - name: docs\n    location: corpus\n"


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "corpus").mkdir(exist_ok=True)
    path = tmp_path / "platform.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert str(path) in message
    return message.replace(str(path), "<config>")  # temp paths carry the test's name


def test_valid_config_loads_its_sources(tmp_path):
    assert load_config(write(tmp_path, VALID)).source_names == ["docs"]


def test_missing_sources_is_rejected_naming_the_field(tmp_path):
    assert "- sources: Field required" in load_error(tmp_path, "chunking:\n  max_tokens: 128\n")


def test_empty_sources_list_is_rejected_naming_the_field(tmp_path):
    assert "- sources: List should have at least 1 item" in load_error(tmp_path, "sources: []\n")


def test_source_name_that_cannot_be_a_partition_key_is_rejected(tmp_path):
    message = load_error(tmp_path, "sources:\n  - name: My Docs\n    location: corpus\n")
    assert "- sources.0.name: " in message and "'My Docs'" in message


def test_overlap_not_below_max_tokens_is_rejected_naming_both_fields(tmp_path):
    message = load_error(tmp_path, VALID + "chunking:\n  max_tokens: 64\n  overlap: 64\n")
    assert "- chunking: " in message and "chunking.overlap (64)" in message and "chunking.max_tokens (64)" in message


def test_unknown_key_is_rejected_naming_it(tmp_path):
    message = load_error(tmp_path, VALID + "chunking:\n  max_token: 64\n")
    assert "- chunking.max_token: Extra inputs are not permitted" in message


def test_duplicate_source_names_are_rejected_naming_the_name(tmp_path):
    message = load_error(tmp_path, VALID + "  - name: docs\n    location: other\n")
    assert "- sources: " in message and "unique; repeated: docs" in message


def test_text_that_is_not_yaml_is_rejected(tmp_path):
    assert "not valid YAML" in load_error(tmp_path, "sources: [name: docs\n  location: {\n")


def test_yaml_that_is_not_a_mapping_is_rejected(tmp_path):
    assert "mapping" in load_error(tmp_path, "- docs\n- notes\n")


def test_missing_file_is_reported_with_its_path(tmp_path):
    with pytest.raises(ConfigError, match="config file not found") as raised:
        load_config(tmp_path / "absent.yaml")
    assert str(tmp_path / "absent.yaml") in str(raised.value)


def test_relative_location_resolves_against_the_config_folder(tmp_path, monkeypatch):
    folder = tmp_path / "conf"
    folder.mkdir()
    (tmp_path / "corpus" / "docs").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    path = folder / "platform.yaml"
    path.write_text("sources:\n  - name: docs\n    location: ../corpus/docs\n", encoding="utf-8")
    assert load_config(path).source("docs").location == str(tmp_path / "corpus" / "docs")


def test_url_location_is_kept_as_written(tmp_path):
    config = load_config(write(tmp_path, "sources:\n  - name: docs\n    location: s3://bucket/docs\n"))
    assert config.source("docs").location == "s3://bucket/docs"


@dg.asset
def settings(platform: PlatformConfigResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"sources": ", ".join(platform.config.source_names)})


def test_a_run_whose_config_changed_since_it_started_fails_naming_the_file(tmp_path):

    path = write(tmp_path, VALID)
    started_with = load_config(path).config_sha256
    path.write_text(VALID.replace("docs", "manuals"), encoding="utf-8")
    result = dg.materialize(
        [settings],
        resources={"platform": PlatformConfigResource(path=str(path))},
        tags={CONFIG_TAG: started_with},
        raise_on_error=False,
    )
    assert not result.success
    failure = " ".join(
        str(event.event_specific_data.error.message)
        for event in result.all_events
        if event.is_failure and event.event_specific_data
    )
    assert str(path) in failure and "changed while run" in failure and started_with[:12] in failure


def test_a_run_records_the_config_it_started_with_and_later_steps_agree(tmp_path):

    path = write(tmp_path, VALID)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [settings], resources={"platform": PlatformConfigResource(path=str(path))}, instance=instance
    )
    assert result.success
    run = instance.get_run_by_id(result.run_id)
    assert run.tags[CONFIG_TAG] == load_config(path).config_sha256
    guard_one_config(instance, result.run_id, load_config(path))  # same file: no complaint
    path.write_text(VALID + "chunking:\n  max_tokens: 64\n", encoding="utf-8")
    with pytest.raises(dg.Failure, match="changed while run"):
        guard_one_config(instance, result.run_id, load_config(path))


def test_definitions_and_steps_share_one_parsed_config_until_the_file_changes(tmp_path):
    from llm_platform.config import config_at

    path = write(tmp_path, VALID)
    first = config_at(path)
    assert config_at(path) is first
    path.write_text(VALID.replace("docs", "manuals"), encoding="utf-8")
    assert config_at(path).source_names == ["manuals"]


def test_a_local_source_folder_that_does_not_exist_is_named_with_its_field(tmp_path):
    (tmp_path / "corpus").mkdir()
    message = load_error(tmp_path, VALID + "  - name: notes\n    location: notes\n")
    assert (
        f"- sources[1].location: {tmp_path / 'notes'} does not exist" in message.replace("<config>", "")
        and "sources[0]" not in message
    )


def test_object_store_source_locations_are_not_checked(tmp_path):
    assert load_config(
        write(tmp_path, "sources:\n  - name: docs\n    location: s3://bucket/absent\n")
    ).source_names == ["docs"]


def test_source_folders_are_not_checked_when_told_so(tmp_path):
    assert load_config(
        write(tmp_path, "sources:\n  - name: docs\n    location: /no/such/folder\n"), check_folders=False
    ).source_names == ["docs"]


def test_a_running_code_location_reads_a_config_whose_folder_went_missing(tmp_path):
    # raw_documents then fails for that source alone, naming it (test_document_checks); other jobs still load.
    path = write(tmp_path, VALID)
    (tmp_path / "corpus").rmdir()
    assert config_at(path).source_names == ["docs"]


def test_zero_document_workers_are_rejected_naming_the_field(tmp_path):
    assert "- documents.workers: Input should be greater than or equal to 1" in load_error(
        tmp_path, VALID + "documents:\n  workers: 0\n"
    )
