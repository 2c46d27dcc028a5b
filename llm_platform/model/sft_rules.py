"""The SFT data rules, checked on records as users supplied them (curated files, feedback).

Checks on the pairs left after filtering could never fail, so the rules run
here, before any filtering: every record that breaks a rule is quarantined
with the rule, the file and the line, and each rule's violation share is what
its blocking check compares against `sft.max_violation_share`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from llm_platform.config import SFT_RULE_NAMES
from llm_platform.documents.pii import find_pii
from llm_platform.model.feedback import fold_feedback
from llm_platform.model.sft import DEFAULT_CURATED_QUALITY, SftPair, jsonl_records, pair_hash

FIELDS_PRESENT, INSTRUCTION_LENGTH, RESPONSE_LENGTH, QUALITY_RANGE_RULE, NO_DUPLICATES, NO_PII = SFT_RULE_NAMES
INSTRUCTION_CHARS = (10, 4096)
RESPONSE_CHARS = (5, 8192)
QUALITY_RANGE = (0.6, 1.0)
RULE_DESCRIPTIONS = {
    FIELDS_PRESENT: "a non-empty instruction and response (question and answer for feedback)",
    INSTRUCTION_LENGTH: f"instruction of {INSTRUCTION_CHARS[0]} to {INSTRUCTION_CHARS[1]} characters",
    RESPONSE_LENGTH: f"response of {RESPONSE_CHARS[0]} to {RESPONSE_CHARS[1]} characters",
    QUALITY_RANGE_RULE: f"quality from {QUALITY_RANGE[0]} to {QUALITY_RANGE[1]}",
    NO_DUPLICATES: "no pair supplied twice",
    NO_PII: "no personal data (emails, phone numbers, ...) in instruction or response",
}
# Field names per origin: (instruction, response).
_FIELDS = {"curated": ("instruction", "response"), "feedback": ("question", "answer")}


@dataclass(frozen=True)
class Violation:
    """One supplied record that broke one rule, and where it is."""

    file: str
    line: int
    origin: str
    rule: str
    reason: str

    def message(self) -> str:
        return f"{self.file}:{self.line}: {self.rule}: {self.reason}"


@dataclass(frozen=True)
class SetAside:
    """A record or pair kept out of training: what the summary counts it as (`kind`), the full message, and where."""

    kind: str
    message: str
    file: str | None = None
    line: int | None = None
    count: int = 1  # records it stands for: a merge of N duplicates is one entry; a note about folding is 0


UNREADABLE = "not a JSON object"
RATED_BELOW_MINIMUM = "rated below sft.min_feedback_rating"
FEEDBACK_NOTE = "feedback note"


@dataclass
class RuleReport:
    """Supplied records, those quarantined (one Violation per broken rule) and those filtered by design."""

    supplied: int = 0
    violations: list[Violation] = field(default_factory=list)
    filtered: list[SetAside] = field(default_factory=list)
    unreadable: set[tuple[str, int]] = field(default_factory=set)  # (file, line) that is not a JSON object

    def count(self, rule: str) -> int:
        return len({(v.file, v.line) for v in self.violations if v.rule == rule})

    def share(self, rule: str) -> float:
        return self.count(rule) / self.supplied if self.supplied else 0.0

    def set_aside(self) -> list[SetAside]:
        """One entry per quarantined record (all its broken rules in one message), then those filtered by design."""
        by_record: dict[tuple[str, int], list[Violation]] = {}
        for v in self.violations:
            by_record.setdefault((v.file, v.line), []).append(v)
        quarantined = [
            SetAside(
                UNREADABLE if where in self.unreadable else "breaking " + ", ".join(v.rule for v in found),
                "; ".join(v.message() for v in found),
                *where,
            )
            for where, found in by_record.items()
        ]
        return quarantined + self.filtered


def _text(record: dict, name: str) -> str | None:
    value = record.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _quality(record: dict, origin: str) -> tuple[float | None, str | None]:
    if origin == "curated":
        quality = record.get("quality", DEFAULT_CURATED_QUALITY)
        if isinstance(quality, bool) or not isinstance(quality, int | float):
            return None, f'"quality" must be a number, got {quality!r}'
        return float(quality), None
    rating = record.get("rating")
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        return None, f'"rating" must be an integer from 1 to 5, got {rating!r}'
    return rating / 5, None


def broken_rules(
    instruction: str | None, response: str | None, quality: float | None, origin: str
) -> list[tuple[str, str]]:
    """(rule, reason) for each rule a record breaks; missing fields break only the fields rule.

    The quality rule is judged only when `quality` is given: a supplied feedback
    record's rating is judged by sft.min_feedback_rating instead.
    """
    ask, answer = _FIELDS.get(origin, ("instruction", "response"))
    if instruction is None or response is None:
        missing = [name for name, value in ((ask, instruction), (answer, response)) if value is None]
        return [
            (FIELDS_PRESENT, f"missing or empty {', '.join(repr(m) for m in missing)} (non-empty strings are required)")
        ]
    broken = []
    if not INSTRUCTION_CHARS[0] <= len(instruction) <= INSTRUCTION_CHARS[1]:
        broken.append(
            (
                INSTRUCTION_LENGTH,
                f'"{ask}" has {len(instruction)} characters, outside {INSTRUCTION_CHARS[0]}..{INSTRUCTION_CHARS[1]}',
            )
        )
    if not RESPONSE_CHARS[0] <= len(response) <= RESPONSE_CHARS[1]:
        broken.append(
            (
                RESPONSE_LENGTH,
                f'"{answer}" has {len(response)} characters, outside {RESPONSE_CHARS[0]}..{RESPONSE_CHARS[1]}',
            )
        )
    if quality is not None and not QUALITY_RANGE[0] <= quality <= QUALITY_RANGE[1]:
        broken.append((QUALITY_RANGE_RULE, f"quality {quality:g} outside {QUALITY_RANGE[0]}..{QUALITY_RANGE[1]}"))
    kinds = sorted({kind for kind, _ in find_pii(instruction) + find_pii(response)})
    if kinds:
        broken.append((NO_PII, f"contains PII ({', '.join(kinds)}); redact it"))
    return broken


def check_supplied(
    files: Sequence[tuple[str, str, bytes]], *, min_feedback_rating: int, approved_corrections: Iterable[str] = ()
) -> tuple[list[SftPair], RuleReport]:
    """Parse (origin, path, bytes) files; return the pairs that break no rule and the report.

    Feedback is folded first (`fold_feedback`: one rating per answer id, approved
    corrections only). Feedback rated below `min_feedback_rating` is filtered by design (noted, not a violation).
    """
    report = RuleReport()
    pairs: list[SftPair] = []
    seen: dict[str, str] = {}  # pair hash -> first "path:line"
    records = [
        ("curated", path, *parsed)
        for origin, path, data in files
        if origin == "curated"
        for parsed in jsonl_records(path, data)
    ]
    folded = fold_feedback([(path, data) for origin, path, data in files if origin == "feedback"], approved_corrections)
    records += [("feedback", *found) for found in folded.records]
    report.filtered += [SetAside(FEEDBACK_NOTE, note, count=0) for note in folded.notes]
    for origin, path, line, record, problem in records:
        pair = _checked_pair(report, seen, origin, path, line, record, problem)
        if pair is not None and origin == "feedback" and pair.quality * 5 < min_feedback_rating:
            message = (
                f"{path}:{line}: rating {round(pair.quality * 5)} is below "
                f"sft.min_feedback_rating {min_feedback_rating}"
            )
            report.filtered.append(SetAside(RATED_BELOW_MINIMUM, message, path, line))
        elif pair is not None:
            pairs.append(pair)
    return pairs, report


def _checked_pair(
    report: RuleReport, seen: dict[str, str], origin: str, path: str, line: int, record: dict, problem: str | None
) -> SftPair | None:
    """The record's pair when it breaks no rule; otherwise None, its violations added to `report`."""
    ask, answer = _FIELDS[origin]
    report.supplied += 1
    if problem is not None:
        report.violations.append(Violation(path, line, origin, FIELDS_PRESENT, problem))
        report.unreadable.add((path, line))
        return None
    instruction, response = _text(record, ask), _text(record, answer)
    quality, quality_problem = _quality(record, origin)
    broken = broken_rules(instruction, response, quality if origin == "curated" else None, origin)
    if quality_problem:
        broken.append((FIELDS_PRESENT if origin == "feedback" else QUALITY_RANGE_RULE, quality_problem))
    if broken:
        report.violations += [Violation(path, line, origin, rule, reason) for rule, reason in broken]
        return None
    # broken_rules reports a missing instruction or response, and _quality a missing quality.
    assert instruction is not None and response is not None and quality is not None
    key = pair_hash(instruction, response)
    if key in seen:
        report.violations.append(Violation(path, line, origin, NO_DUPLICATES, f"same pair as {seen[key]}"))
        return None
    seen[key] = f"{path}:{line}"
    return SftPair(instruction, response, quality, origin, f"{path}#L{line}")
