"""The SFT dataset: every pair source merged, filtered by the data rules, split by hash.

Supplied records (curated files, feedback) are checked by `sft_rules` before
anything is filtered, so the rule checks see what users gave; records that
break a rule are quarantined with file, line and rule. Corpus-derived pairs are
generated, not supplied: those that break a rule are set aside with a reason.
Curated and corpus pairs are split by `split_of(pair_hash)`, so the same pair is
always on the same side and eval pairs never reach training. Feedback only ever
trains: what callers send cannot move the eval split the gates read.
Grounded pairs (a training-side corpus pair asked again with its own chunk as
retrieved context) train only, so no eval chunk's answer is ever trained on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import fsspec
import pyarrow as pa

from llm_platform.identity import normalize_for_hash
from llm_platform.model.feedback import feedback_folder
from llm_platform.model.prompts import user_message
from llm_platform.model.sft import SftPair, dedupe_pairs, pairs_from_chunks, split_of
from llm_platform.model.sft_rules import RuleReport, SetAside, broken_rules, check_supplied
from llm_platform.segment_log import read_segments

SFT_SCHEMA = pa.schema(
    [
        ("pair_hash", pa.string()),
        ("instruction", pa.large_string()),
        ("response", pa.large_string()),
        ("quality", pa.float64()),
        ("origin", pa.string()),
        ("reference", pa.string()),
        ("split", pa.string()),
    ]
)


@dataclass
class SftBuild:
    """Train and eval rows, the pairs set aside (with reasons) and counts by origin."""

    train: list[dict] = field(default_factory=list)
    eval: list[dict] = field(default_factory=list)
    set_aside: list[SetAside] = field(default_factory=list)
    by_origin: Counter = field(default_factory=Counter)
    report: RuleReport = field(default_factory=RuleReport)


def read_jsonl_files(location: str | None, *, missing_ok: bool = False) -> list[tuple[str, bytes]]:
    """(path, bytes) of a .jsonl file, or of every .jsonl file under a folder or URL."""
    if not location:
        return []
    fs, path = fsspec.core.url_to_fs(location)
    if not fs.exists(path):
        if missing_ok:
            return []
        raise FileNotFoundError(f"{location}: configured SFT location does not exist")
    return [(path, fs.cat_file(path))] if fs.isfile(path) else read_segments(location)


def feedback_files(location: str | None, home: str) -> list[tuple[str, bytes]]:
    """The configured feedback files (read-only inputs) and every segment the service wrote under the storage root."""
    return read_jsonl_files(location) + read_segments(feedback_folder(home))


def _row(pair: SftPair, split: str) -> dict:
    return {
        "pair_hash": pair.hash,
        "instruction": pair.instruction,
        "response": pair.response,
        "quality": pair.quality,
        "origin": pair.origin,
        "reference": pair.reference,
        "split": split,
    }


def build_sft(
    chunks: Iterable[tuple[str, str | None, str | None, str]],
    curated_files: Sequence[tuple[str, bytes]],
    feedback_files: Sequence[tuple[str, bytes]],
    *,
    eval_fraction: float,
    min_feedback_rating: int,
    max_corpus_pairs: int,
    approved_corrections: Iterable[str] = (),
    grounding_chars: int | None = None,
) -> SftBuild:
    """Merge corpus, curated and feedback pairs; filter by the rules; split curated and corpus pairs by hash, feedback
    to train only.

    With `grounding_chars`, every corpus pair on the train side is also trained with its chunk's first
    `grounding_chars` characters as context (see `grounded_pair`).
    """
    result = SftBuild()
    chunks = list(chunks)
    pairs = sorted(pairs_from_chunks(chunks), key=lambda p: p.hash)[:max_corpus_pairs]
    supplied = [("curated", p, d) for p, d in curated_files] + [("feedback", p, d) for p, d in feedback_files]
    found, result.report = check_supplied(
        supplied, min_feedback_rating=min_feedback_rating, approved_corrections=approved_corrections
    )
    result.set_aside += result.report.set_aside()
    curated_and_corpus = _deduped(result, pairs + [p for p in found if p.origin != "feedback"])
    for pair in curated_and_corpus:
        _place(result, pair, split_of(pair.hash, eval_fraction=eval_fraction))
    _place_feedback(result, [p for p in found if p.origin == "feedback"], curated_and_corpus)
    if grounding_chars:
        _place_grounded(result, {chunk_id: text for chunk_id, _, _, text in chunks}, grounding_chars)
    return result


def grounded_pair(pair: SftPair, chunk_text: str, *, max_chars: int) -> SftPair:
    """`pair` asked with its chunk as the one retrieved context, in the user turn
    RAG evaluation and the service build (`user_message`).
    """
    return SftPair(
        user_message(pair.instruction, [chunk_text[:max_chars]]),
        pair.response,
        pair.quality,
        pair.origin,
        pair.reference,
    )


def _place_grounded(result: SftBuild, chunk_texts: dict[str, str], max_chars: int) -> None:
    """A grounded copy of each corpus pair already on the train side; eval chunks never get one."""
    for row in [r for r in result.train if r["origin"] == "corpus"]:
        plain = SftPair(row["instruction"], row["response"], row["quality"], row["origin"], row["reference"])
        _place(result, grounded_pair(plain, chunk_texts[row["reference"]], max_chars=max_chars), "train")


def _deduped(result: SftBuild, pairs: list[SftPair]) -> list[SftPair]:
    unique = dedupe_pairs(pairs)
    if len(unique) < len(pairs):
        merged = len(pairs) - len(unique)
        result.set_aside.append(
            SetAside("exact duplicates merged", f"{merged} exact duplicate pair(s) merged", count=merged)
        )
    return sorted(unique, key=lambda p: p.hash)


def _place(result: SftBuild, pair: SftPair, split: str) -> None:
    broken = broken_rules(pair.instruction, pair.response, pair.quality, pair.origin)
    if broken:
        problems = "; ".join(f"{rule}: {reason}" for rule, reason in broken)
        result.set_aside.append(
            SetAside(
                "breaking " + ", ".join(rule for rule, _ in broken),
                f"{pair.origin} pair {pair.reference or pair.hash[:12]}: {problems}",
                *_file_and_line(pair),
            )
        )
        return
    (result.train if split == "train" else result.eval).append(_row(pair, split))
    result.by_origin[pair.origin] += 1


def _place_feedback(result: SftBuild, feedback: list[SftPair], others: list[SftPair]) -> None:
    """Feedback trains only: callers never add to or change the split the
    gates judge with, nor train on its questions.
    """
    known = {p.hash for p in others}
    held_out = {normalize_for_hash(row["instruction"]).casefold() for row in result.eval}
    for pair in _deduped(result, feedback):
        if pair.hash in known:
            result.set_aside.append(
                SetAside(
                    "feedback equal to a curated or corpus pair",
                    f"feedback pair {pair.reference}: same pair as a curated or corpus pair; that one is kept",
                    *_file_and_line(pair),
                )
            )
        elif normalize_for_hash(pair.instruction).casefold() in held_out:
            result.set_aside.append(
                SetAside(
                    "feedback asking an sft_eval_split question",
                    f"feedback pair {pair.reference}: asks a question of sft_eval_split; never trained on",
                    *_file_and_line(pair),
                )
            )
        else:
            _place(result, pair, "train")


def _file_and_line(pair: SftPair) -> tuple[str | None, int | None]:
    """Where a pair came from: a supplied pair's file and line (its reference
    is `path#L<line>`), else its origin ("corpus").
    """
    path, marker, line = (pair.reference or "").rpartition("#L")
    return (path, int(line)) if marker and line.isdigit() else (pair.origin, None)


def set_aside_summary(items: Sequence[SetAside]) -> str | None:
    """One line for all of `items`: the records set aside, counted by kind and, within each, by file; None when there
    are none.

    E.g. `set aside 9 SFT records: 6 rated below sft.min_feedback_rating (feedback.jsonl: 6), 1 not a JSON object
    (curated.jsonl:21), ...`
    """
    records, notes = [i for i in items if i.count], [i.message for i in items if not i.count]
    if not records and not notes:
        return None
    by_kind: dict[str, list[SetAside]] = {}
    for item in records:
        by_kind.setdefault(item.kind, []).append(item)
    counted = sorted(by_kind.items(), key=lambda kind_items: -sum(i.count for i in kind_items[1]))
    parts = [f"{sum(i.count for i in found)} {kind}{_places(found)}" for kind, found in counted]
    line = f"set aside {sum(i.count for i in records)} SFT records: {', '.join(parts) or 'none'}"
    return line + (f"; feedback: {'; '.join(notes)}" if notes else "")


def _places(found: list[SetAside]) -> str:
    """` (file: n, other.jsonl:21)`: each file's count, or the line of a
    file's only record; empty when none names a place.
    """
    by_file: dict[str, list[SetAside]] = {}
    for item in found:
        if item.file:
            by_file.setdefault(item.file.rpartition("/")[2], []).append(item)
    places = [
        f"{name}:{items[0].line}" if len(items) == 1 and items[0].line else f"{name}: {sum(i.count for i in items)}"
        for name, items in by_file.items()
    ]
    return f" ({', '.join(places)})" if places else ""
