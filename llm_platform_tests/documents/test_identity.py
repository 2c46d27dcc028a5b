import hashlib

from llm_platform.identity import chunk_id_for, content_hash, doc_id_for, stable_hash, text_hash


def test_stable_hash_is_sha256_of_parts_joined_by_unit_separator():
    expected = hashlib.sha256(b"handbook\x1fa.md").hexdigest()[:32]
    assert stable_hash("handbook", "a.md") == expected


def test_stable_hash_distinguishes_part_boundaries():
    assert stable_hash("a", "bc") != stable_hash("ab", "c")


def test_doc_id_is_stable_hash_of_source_and_locator():
    assert doc_id_for("handbook", "a.md") == stable_hash("handbook", "a.md")


def test_same_path_in_two_sources_gets_two_doc_ids():
    assert doc_id_for("handbook", "a.md") != doc_id_for("faq", "a.md")


def test_content_hash_ignores_whitespace_layout():
    assert content_hash("  Hello\n\tworld  ") == content_hash("Hello world")


def test_content_hash_treats_composed_and_decomposed_accents_alike():
    assert content_hash("caf\u00e9") == content_hash("cafe\u0301")


def test_content_hash_changes_when_a_word_changes():
    assert content_hash("Hello world") != content_hash("Hello there")


def test_text_hash_keeps_whitespace_differences():
    assert text_hash("Hello world") != text_hash("Hello  world")


def test_chunk_id_depends_on_chunker_version():
    assert chunk_id_for("d", 0, "text", "v1") != chunk_id_for("d", 0, "text", "v2")


def test_chunk_id_depends_on_position():
    assert chunk_id_for("d", 0, "text", "v1") != chunk_id_for("d", 1, "text", "v1")
