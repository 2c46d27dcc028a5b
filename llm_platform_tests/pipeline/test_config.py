"""The config file is validated once, at load: a mistake names the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_platform.config import ConfigError, load_config

VALID = "sources:\n  - name: docs\n    location: corpus\n"


def write(tmp_path: Path, text: str) -> Path:
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
    monkeypatch.chdir(tmp_path)
    path = folder / "platform.yaml"
    path.write_text("sources:\n  - name: docs\n    location: ../corpus/docs\n", encoding="utf-8")
    assert load_config(path).source("docs").location == str(tmp_path / "corpus" / "docs")


def test_url_location_is_kept_as_written(tmp_path):
    config = load_config(write(tmp_path, "sources:\n  - name: docs\n    location: s3://bucket/docs\n"))
    assert config.source("docs").location == "s3://bucket/docs"
