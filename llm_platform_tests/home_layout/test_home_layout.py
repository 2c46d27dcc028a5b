"""Every path under the storage home comes from `home_layout`, on a folder or a URL."""

from __future__ import annotations

from llm_platform.home_layout import MODELS, lancedb_uri, under
from llm_platform.resources.platform import StorageResource


def test_a_folder_is_joined_to_the_home_by_one_slash_however_the_home_ends():
    assert under("s3://bucket/home/", MODELS) == under("s3://bucket/home", MODELS) == "s3://bucket/home/models"


def test_lancedb_lives_under_the_home_on_a_url_too():
    assert lancedb_uri("s3://bucket/home") == "s3://bucket/home/lancedb"


def test_the_storage_resource_finds_lancedb_and_models_where_the_layout_says():
    storage = StorageResource(home="/data/home/")
    assert (storage.lancedb_uri, storage.models_dir) == (lancedb_uri("/data/home"), under("/data/home", MODELS))
