"""Reading a source incrementally: the document diff, carried-over files, and the mass-deletion guard."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from pydoc_data.topics import topics

import pyarrow as pa
import pytest

from llm_platform.documents.sources import (
    RAW_SCHEMA,
    RawDocuments,
    SuspiciousListingError,
    list_source,
    listing_fingerprint,
    read_source,
)
from llm_platform.identity import doc_id_for

SOURCE = "docs"
NAMES = ("for", "while", "if", "with")


@pytest.fixture
def folder(tmp_path) -> Path:
    for name in NAMES:
        (tmp_path / f"{name}.txt").write_text(topics[name], encoding="utf-8")
    return tmp_path


def read(folder: Path, previous: RawDocuments | None = None, **kwargs) -> RawDocuments:
    table = None if previous is None else pa.Table.from_pylist(previous.rows, schema=RAW_SCHEMA)
    quarantine = None if previous is None else previous.quarantine
    return read_source(SOURCE, str(folder), "**/*", table, previous_quarantine=quarantine, **kwargs)


def ids(*names: str) -> list[str]:
    return sorted(doc_id_for(SOURCE, name) for name in names)


def touch_later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, (stat.st_atime + 60, stat.st_mtime + 60))


def test_first_read_adds_every_document(folder):
    result = read(folder)
    assert sorted(result.added) == ids("for.txt", "while.txt", "if.txt", "with.txt")
    assert result.changed == result.removed == result.unchanged == []


def test_second_read_of_unchanged_files_reads_nothing(folder):
    first = read(folder)
    second = read(folder, first)
    assert sorted(second.unchanged) == sorted(first.added)
    assert second.files_read == 0 and second.added == second.changed == second.removed == []


def test_diff_names_added_changed_removed_and_unchanged_documents(folder):
    first = read(folder)
    (folder / "class.txt").write_text(topics["class"], encoding="utf-8")
    (folder / "for.txt").write_text(topics["for"] + "\nA new closing paragraph.\n", encoding="utf-8")
    (folder / "while.txt").unlink()
    second = read(folder, first)
    assert (sorted(second.added), sorted(second.changed), second.removed, sorted(second.unchanged)) == (
        ids("class.txt"),
        ids("for.txt"),
        ids("while.txt"),
        ids("if.txt", "with.txt"),
    )


def test_touched_but_identical_file_is_reread_and_unchanged(folder):
    first = read(folder)
    touch_later(folder / "if.txt")
    second = read(folder, first)
    assert second.files_read == 1
    assert doc_id_for(SOURCE, "if.txt") in second.unchanged and second.changed == []


def test_layout_only_edit_keeps_the_document_unchanged(folder):
    first = read(folder)
    (folder / "if.txt").write_text(topics["if"].replace("\n", "\n\n", 3), encoding="utf-8")
    assert doc_id_for(SOURCE, "if.txt") in read(folder, first).unchanged


def test_mass_deletion_is_refused_naming_the_source_and_the_setting(folder):
    first = read(folder)
    for name in ("for", "while", "if"):
        (folder / f"{name}.txt").unlink()
    with pytest.raises(SuspiciousListingError) as raised:
        read(folder, first)
    message = str(raised.value)
    assert f"source {SOURCE!r}" in message and "3 of 4" in message and "allow_mass_deletion" in message


def test_mass_deletion_proceeds_when_allowed(folder):
    first = read(folder)
    for name in ("for", "while", "if"):
        (folder / f"{name}.txt").unlink()
    second = read(folder, first, allow_mass_deletion=True)
    assert second.removed == ids("for.txt", "while.txt", "if.txt")


def test_removal_below_the_fraction_needs_no_consent(folder):
    first = read(folder)
    (folder / "for.txt").unlink()
    assert read(folder, first).removed == ids("for.txt")


def test_rejected_jsonl_line_of_an_unchanged_file_stays_quarantined(folder):
    (folder / "faq.jsonl").write_text('{"title": "Loops", "text": "Use for."}\n{not json}\n', encoding="utf-8")
    first = read(folder)
    second = read(folder, first)
    assert second.files_read == 0
    assert [(q["locator"], q["kind"]) for q in second.quarantine] == [("faq.jsonl#L2", "malformed")]


def test_unsupported_file_is_quarantined_not_read(folder):
    (folder / "slides.pptx").write_bytes(b"PK\x03\x04")
    result = read(folder)
    assert [(q["locator"], q["kind"]) for q in result.quarantine] == [("slides.pptx", "unsupported")]
    assert result.files_read == len(NAMES)


def test_missing_location_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent"):
        list_source(str(tmp_path / "absent"), "**/*")


def fingerprint(folder: Path) -> str:
    return listing_fingerprint(list_source(str(folder), "**/*"))


def test_listing_fingerprint_is_stable_for_an_unchanged_folder(folder):
    assert fingerprint(folder) == fingerprint(folder)


def test_listing_fingerprint_changes_when_a_file_is_added(folder):
    before = fingerprint(folder)
    (folder / "class.txt").write_text(topics["class"], encoding="utf-8")
    assert fingerprint(folder) != before


def test_listing_fingerprint_changes_when_a_file_is_modified(folder):
    before = fingerprint(folder)
    touch_later(folder / "for.txt")
    assert fingerprint(folder) != before


def test_listing_fingerprint_changes_when_a_file_is_removed(folder):
    before = fingerprint(folder)
    (folder / "for.txt").unlink()
    assert fingerprint(folder) != before


def quarantined(result: RawDocuments) -> list[tuple[str, str]]:
    return sorted((q["locator"], q["kind"]) for q in result.quarantine)


def test_file_name_that_is_not_utf8_is_quarantined_alone_by_name(folder):
    (folder / os.fsdecode(b"caf\xe9-notes.txt")).write_text(topics["class"], encoding="utf-8")
    result = read(folder)
    assert quarantined(result) == [("caf\\xe9-notes.txt", "bad_name")]
    assert "not valid UTF-8" in result.quarantine[0]["reason"] and len(result.rows) == len(NAMES)
    pa.Table.from_pylist(result.quarantine)  # the record itself is writable


@pytest.mark.timeout(60)  # opening the pipe to read it would block forever
def test_named_pipe_is_quarantined_without_being_opened(folder):
    os.mkfifo(folder / "pipe.txt")
    result = read(folder)
    assert quarantined(result) == [("pipe.txt", "special_file")] and len(result.rows) == len(NAMES)
    assert "named pipe" in result.quarantine[0]["reason"]


@pytest.mark.timeout(60)
def test_link_to_a_named_pipe_is_quarantined(folder):
    os.mkfifo(folder / "pipe.txt")
    (folder / "alias.txt").symlink_to(folder / "pipe.txt")
    assert quarantined(read(folder)) == [("alias.txt", "special_file"), ("pipe.txt", "special_file")]


@pytest.mark.timeout(60)
def test_named_pipe_in_a_linked_folder_is_quarantined(folder):
    (folder / "guides").mkdir()
    os.mkfifo(folder / "guides" / "pipe.txt")
    (folder / "latest").symlink_to(folder / "guides")
    assert quarantined(read(folder)) == [("guides/pipe.txt", "special_file"), ("latest/pipe.txt", "special_file")]


@pytest.mark.parametrize(
    "name, shown",
    [
        ("two\nlines.txt", "two\\nlines.txt"),
        ("tab\there.txt", "tab\\there.txt"),
        ("esc\x1b[31m.txt", "esc\\x1b[31m.txt"),
    ],
)
def test_file_name_with_a_control_character_is_quarantined_with_it_escaped(folder, name, shown):
    (folder / name).write_text(topics["class"], encoding="utf-8")
    result = read(folder)
    assert quarantined(result) == [(shown, "bad_name")] and len(result.rows) == len(NAMES)
    assert (
        result.quarantine[0]["reason"]
        == f"{shown}: file name contains control characters (shown escaped); rename the file"
    )


def test_folder_name_with_a_newline_is_quarantined_with_it_escaped(folder):
    (folder / "new\nfolder").mkdir()
    (folder / "new\nfolder" / "class.txt").write_text(topics["class"], encoding="utf-8")
    assert quarantined(read(folder)) == [("new\\nfolder/class.txt", "bad_name")]


def test_link_to_a_file_inside_the_source_is_read_under_its_own_name(folder):
    (folder / "loops.txt").symlink_to(folder / "for.txt")
    result = read(folder)
    assert doc_id_for(SOURCE, "loops.txt") in result.added and result.quarantine == []


def test_link_leaving_the_source_is_quarantined(folder, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "secret.txt"
    outside.write_text("not part of this source", encoding="utf-8")
    (folder / "secret.txt").symlink_to(outside)
    result = read(folder)
    assert quarantined(result) == [("secret.txt", "outside_source")] and len(result.rows) == len(NAMES)


def test_looping_and_broken_links_are_quarantined(folder):
    (folder / "a.txt").symlink_to(folder / "b.txt")
    (folder / "b.txt").symlink_to(folder / "a.txt")
    (folder / "gone.txt").symlink_to(folder / "missing.txt")
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to(folder)
    assert quarantined(read(folder)) == [
        ("a.txt", "link_loop"),
        ("b.txt", "link_loop"),
        ("gone.txt", "broken_link"),
        ("sub/up", "link_loop"),
    ]


def test_link_to_a_folder_inside_the_source_is_followed(folder):
    (folder / "guides").mkdir()
    (folder / "guides" / "class.txt").write_text(topics["class"], encoding="utf-8")
    (folder / "latest").symlink_to(folder / "guides")
    assert {doc_id_for(SOURCE, "latest/class.txt"), doc_id_for(SOURCE, "guides/class.txt")} <= set(read(folder).added)


@pytest.mark.parametrize("glob", ["../other/*.md", "docs/../../*", "/etc/*"])
def test_glob_reaching_outside_the_source_is_refused(folder, glob):
    with pytest.raises(ValueError, match="outside the source folder"):
        list_source(str(folder), glob)


def test_jsonl_file_with_one_oversized_line_keeps_its_good_records(folder):
    lines = [json.dumps({"text": f"Answer number {i} explains a setting."}) for i in range(3)]
    lines.insert(1, json.dumps({"text": "y" * 50_000}))
    (folder / "faq.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = read(folder, max_bytes=10_000)
    assert quarantined(result) == [("faq.jsonl#L2", "oversized")]
    assert [r["locator"] for r in result.rows if r["format"] == "jsonl"] == [
        "faq.jsonl#L1",
        "faq.jsonl#L3",
        "faq.jsonl#L4",
    ]


def test_streamed_jsonl_hashes_the_whole_file(folder):
    (folder / "faq.jsonl").write_text('{"text": "one"}\n{"text": "' + "z" * 5000 + '"}\n', encoding="utf-8")
    row = next(r for r in read(folder, max_bytes=100).rows if r["format"] == "jsonl")
    assert row["file_hash"] == hashlib.sha256((folder / "faq.jsonl").read_bytes()).hexdigest()[:32]


def test_file_read_by_an_older_extractor_is_read_again(folder):
    first = read(folder)
    old = [{**row, "extractor_version": "0"} for row in first.rows]
    table = pa.Table.from_pylist(old, schema=RAW_SCHEMA)
    again = read_source(SOURCE, str(folder), "**/*", table, previous_quarantine=[])
    assert again.files_read == len(NAMES) and sorted(again.unchanged) == sorted(first.added)


def test_folder_links_leading_to_each_other_end_as_loops(folder):
    (folder / "a").mkdir()
    (folder / "b").mkdir()
    (folder / "a" / "to-b").symlink_to(folder / "b")
    (folder / "b" / "to-a").symlink_to(folder / "a")
    result = read(folder)
    assert quarantined(result) == [("a/to-b/to-a", "link_loop"), ("b/to-a/to-b", "link_loop")] and len(
        result.rows
    ) == len(NAMES)
