"""Source shards: partition keys, which documents a shard owns, and reading only a shard's documents."""

from __future__ import annotations

import json
from pathlib import Path
from pydoc_data.topics import topics

import pyarrow as pa
import pytest

from llm_platform.config import ConfigError, load_config
from llm_platform.documents.sources import (
    RAW_SCHEMA,
    RawDocuments,
    SuspiciousListingError,
    files_read_by,
    list_source,
    read_source,
)
from llm_platform.identity import doc_id_for, stable_hash
from llm_platform.shards import Shard, ShardKeyError, parse_partition_key, shard_of, shards_of

SOURCE = "wiki"
NAMES = ("for", "while", "if", "with", "raise", "assert", "return", "del", "lambda", "dict", "global", "class")
DOC_IDS = [stable_hash("doc", str(n)) for n in range(3000)]


@pytest.mark.parametrize(
    "shard", [Shard("wiki"), Shard("wiki", 0, 4), Shard("wiki", 3, 4), Shard("my_docs-2", 11, 12)], ids=str
)
def test_partition_key_round_trips_through_the_parser(shard):
    assert parse_partition_key(shard.key) == shard


def test_a_whole_source_is_keyed_by_its_name_alone():
    assert Shard("wiki").key == "wiki"
    assert [s.key for s in shards_of("wiki", 3)] == ["wiki.0-of-3", "wiki.1-of-3", "wiki.2-of-3"]


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("wiki.4-of-4", "0 … count-1"),
        ("wiki.0-of-1", "by its name alone"),
        ("wiki.01-of-4", "without leading zeros"),
        ("Wiki", "neither"),
        ("wiki.1of4", "neither"),
    ],
)
def test_malformed_partition_key_is_refused_saying_why(key, says):
    with pytest.raises(ShardKeyError, match=says):
        parse_partition_key(key)


@pytest.mark.parametrize("count", [2, 3, 7])
def test_each_document_has_exactly_one_owning_shard(count):
    for doc_id in DOC_IDS:
        owners = [shard.index for shard in shards_of(SOURCE, count) if shard.owns(doc_id)]
        assert owners == [shard_of(doc_id, count)]


@pytest.mark.parametrize("count", [2, 3, 7])
def test_a_shards_doc_id_range_holds_exactly_the_documents_it_owns(count):
    for shard in shards_of(SOURCE, count):
        lowest, end = shard.doc_id_range()
        in_range = {d for d in DOC_IDS if (lowest is None or d >= lowest) and (end is None or d < end)}
        assert in_range == {d for d in DOC_IDS if shard.owns(d)}


def test_shards_split_documents_about_evenly():
    sizes = [sum(shard.owns(d) for d in DOC_IDS) for shard in shards_of(SOURCE, 3)]
    assert min(sizes) > 0.9 * len(DOC_IDS) / 3


def test_going_from_two_shards_to_three_keeps_most_documents_in_place():
    stays = sum(shard_of(d, 2) == shard_of(d, 3) for d in DOC_IDS)
    # Contiguous slices: shard 0 keeps [0, 1/3), shard 1 keeps [1/2, 2/3): half stays (a modulo would keep a third).
    assert stays > 0.45 * len(DOC_IDS)


def test_a_doc_id_that_is_not_a_hash_is_refused():
    with pytest.raises(ValueError, match="not a lowercase hex hash"):
        shard_of("docs-for", 2)


def write_config(tmp_path: Path, shards: int) -> Path:
    path = tmp_path / "platform.yaml"
    (tmp_path / "corpus").mkdir(exist_ok=True)
    path.write_text(
        f"sources:\n  - name: wiki\n    location: corpus\n    shards: {shards}\n  - name: faq\n    location: corpus\n",
        encoding="utf-8",
    )
    return path


def test_config_lists_shard_keys_for_a_sharded_source_and_the_name_for_others(tmp_path):
    config = load_config(write_config(tmp_path, 3))
    assert config.partition_keys == ["wiki.0-of-3", "wiki.1-of-3", "wiki.2-of-3", "faq"]


def test_config_refuses_a_shard_count_below_one_naming_the_field(tmp_path):
    with pytest.raises(ConfigError, match="sources.0.shards"):
        load_config(write_config(tmp_path, 0))


def test_config_refuses_a_key_of_another_shard_count_naming_the_field_and_the_partitions(tmp_path):
    config = load_config(write_config(tmp_path, 3))
    assert config.shard("wiki.2-of-3") == Shard("wiki", 2, 3)
    with pytest.raises(ShardKeyError) as raised:
        config.shard("wiki.1-of-2")
    assert (
        "sources[0].shards" in str(raised.value)
        and "is 3" in str(raised.value)
        and "wiki.0-of-3, wiki.1-of-3, wiki.2-of-3" in str(raised.value)
    )


def test_config_refuses_a_key_of_an_unknown_source(tmp_path):
    with pytest.raises(ShardKeyError, match="no source named 'news'"):
        load_config(write_config(tmp_path, 3)).shard("news.0-of-3")


@pytest.fixture
def folder(tmp_path) -> Path:
    for name in NAMES:
        (tmp_path / f"{name}.txt").write_text(topics[name], encoding="utf-8")
    lines = [json.dumps({"title": f"Record {n}", "text": f"Record {n}: " + topics["for"][:300]}) for n in range(12)]
    (tmp_path / "records.jsonl").write_text("\n".join([*lines, "{not json"]) + "\n", encoding="utf-8")
    (tmp_path / "notes.xyz").write_text("unsupported", encoding="utf-8")
    return tmp_path


def read(folder: Path, shard: Shard, previous: RawDocuments | None = None, **kwargs) -> RawDocuments:
    table = None if previous is None else pa.Table.from_pylist(previous.rows, schema=RAW_SCHEMA)
    return read_source(SOURCE, str(folder), "**/*", table, shard=shard, **kwargs)


def test_shards_read_together_every_document_of_the_source_once(folder):
    whole = read(folder, Shard(SOURCE))
    parts = [read(folder, shard) for shard in shards_of(SOURCE, 3)]
    ids = [row["doc_id"] for part in parts for row in part.rows]
    assert sorted(ids) == sorted(row["doc_id"] for row in whole.rows)
    assert all(Shard(SOURCE, i, 3).owns(row["doc_id"]) for i, part in enumerate(parts) for row in part.rows)


def test_jsonl_records_are_split_between_shards_by_their_own_doc_id(folder):
    parts = [read(folder, shard) for shard in shards_of(SOURCE, 3)]
    records = [[row for row in part.rows if row["format"] == "jsonl"] for part in parts]
    assert sum(map(len, records)) == 12 and sum(1 for r in records if r) > 1


def test_each_quarantine_record_is_kept_by_exactly_one_shard(folder):
    whole = read(folder, Shard(SOURCE))
    parts = [read(folder, shard) for shard in shards_of(SOURCE, 3)]
    assert sorted(q["locator"] for part in parts for q in part.quarantine) == sorted(
        q["locator"] for q in whole.quarantine
    )
    assert {q["kind"] for q in whole.quarantine} == {"malformed", "unsupported"}


def test_a_shard_reads_its_own_files_and_every_record_file(folder):
    shard = Shard(SOURCE, 1, 3)
    read_files = {file.locator for file in files_read_by(shard, list_source(str(folder), "**/*"))}
    own = {f"{name}.txt" for name in NAMES if shard.owns(doc_id_for(SOURCE, f"{name}.txt"))}
    assert read_files - own == {"records.jsonl"} | (
        {"notes.xyz"} if shard.owns(doc_id_for(SOURCE, "notes.xyz")) else set()
    )


def test_mass_deletion_guard_refuses_a_shard_that_lost_most_of_its_documents(folder):
    shard = Shard(SOURCE, 0, 2)
    first = read(folder, shard)
    for row in first.rows:
        if row["format"] != "jsonl":
            (folder / row["locator"]).unlink()
    (folder / "records.jsonl").unlink()
    with pytest.raises(SuspiciousListingError) as raised:
        read(folder, shard, first)
    assert "shard 'wiki.0-of-2' of source 'wiki'" in str(raised.value) and "allow_mass_deletion" in str(raised.value)


def test_mass_deletion_guard_counts_only_the_shards_own_documents(folder):
    shard = Shard(SOURCE, 0, 2)
    first = read(folder, shard)
    other = [name for name in NAMES if not shard.owns(doc_id_for(SOURCE, f"{name}.txt"))]
    for name in other:
        (folder / f"{name}.txt").unlink()
    assert read(folder, shard, first).removed == []
