import re
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np
import pytest

import llm_platform
from llm_platform.documents.dedup import Duplicate, find_duplicates, minhash_signature
from llm_platform.identity import content_hash

HANDBOOK = Path(llm_platform.__file__).parent / "demo" / "corpus" / "handbook"


def item(doc_id: str, text: str):
    return (doc_id, content_hash(text), minhash_signature(text))


def test_signature_is_uint64_with_one_value_per_permutation():
    signature = minhash_signature("some words to hash here and there", num_perm=64)
    assert signature.dtype == np.uint64 and signature.shape == (64,)


def test_signature_is_deterministic():
    assert np.array_equal(minhash_signature(topics["while"]), minhash_signature(topics["while"]))


def test_text_shorter_than_a_shingle_still_gets_a_signature():
    assert not np.array_equal(minhash_signature("two words"), minhash_signature("other words"))


def test_exact_duplicate_is_found():
    items = [item("a", "Same text here."), item("b", "Same   text\nhere.")]
    assert find_duplicates(items) == [Duplicate("b", "a", "exact")]


def test_near_duplicate_is_found():
    original = (HANDBOOK / "comparisons.md").read_text(encoding="utf-8")
    draft = (HANDBOOK / "comparisons_draft.md").read_text(encoding="utf-8")
    assert find_duplicates([item("orig", original), item("draft", draft)]) == [Duplicate("draft", "orig", "near")]


def test_different_documents_are_not_duplicates():
    items = [item(name, topics[name]) for name in ("while", "for", "try", "with", "class")]
    assert find_duplicates(items) == []


def test_first_occurrence_is_kept():
    items = [item("late", topics["while"]), item("early", topics["while"])]
    assert find_duplicates(items) == [Duplicate("early", "late", "exact")]


def test_near_duplicate_names_the_earliest_similar_document():
    base = topics["comparisons"]
    items = [
        item("first", base),
        item("other", topics["while"]),
        item("second", base + " extra"),
        item("third", base + " more"),
    ]
    assert [(d.doc_id, d.duplicate_of) for d in find_duplicates(items)] == [("second", "first"), ("third", "first")]


def test_dissimilar_pair_is_kept_at_a_high_threshold():
    edited = topics["while"].replace("expression", "condition")
    assert find_duplicates([item("a", topics["while"]), item("b", edited)], threshold=0.95) == []


def test_signature_of_wrong_length_is_rejected_naming_num_perm():
    with pytest.raises(ValueError, match="num_perm"):
        find_duplicates([("a", "h", minhash_signature("text", num_perm=64))], num_perm=128)


def whole_document_signature(text: str) -> np.ndarray:
    """The signature as computed before streaming: every shingle in one batch."""
    from datasketch import MinHash

    words = re.findall(r"\w+", text.lower())
    shingles = [" ".join(words[i : i + 5]).encode() for i in range(len(words) - 4)]
    minhash = MinHash(
        num_perm=128, permutations=MinHash(num_perm=128, scheme="affine64").permutations, scheme="affine64"
    )
    minhash.update_batch(shingles)
    return minhash.hashvalues


@pytest.mark.parametrize("piece_chars", [1 << 20, 100, 7])
def test_streamed_signature_equals_the_whole_document_signature(monkeypatch, piece_chars):
    monkeypatch.setattr(
        "llm_platform.documents.dedup._PIECE_CHARS", piece_chars
    )  # 100: hundreds of lowered pieces; 7: pieces of a word or two
    text = "\n\n".join(topics[name] for name in ("while", "for", "if", "class", "with")) + " ΣΟΦΟΣ İstanbul"
    assert np.array_equal(minhash_signature(text), whole_document_signature(text))


def test_signature_of_a_long_document_needs_bounded_memory():
    import tracemalloc

    text = "\n".join(topics.values()) * 5  # 2.3 MB: 350,000 shingles, 350 MB in one batch
    tracemalloc.start()
    minhash_signature(text)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(text) > 2_000_000 and peak < 64 * 2**20  # one batch, not one array of every shingle
