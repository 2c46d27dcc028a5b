"""Feedback is a claim, not a label: one rating per answer, corrections only once approved, never in the eval split."""

from __future__ import annotations

import json

from llm_platform.model.feedback import fold_feedback, proposal_id, read_approvals
from llm_platform.model.sft import pair_hash, split_of
from llm_platform.model.sft_build import build_sft

QUESTION = "What does the with statement do?"
SERVED = "It runs a block inside a context manager, calling __enter__ and __exit__."
CURATED = [
    {
        "instruction": f"Curated question number {n} about Python?",
        "response": f"Curated answer number {n}, long enough.",
    }
    for n in range(40)
]


def _jsonl(*records: dict) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def _rating(answer_id: str, rating: int, at: float, corrected: str | None = None, question: str = QUESTION) -> dict:
    record = {
        "answer_id": answer_id,
        "question": question,
        "answer": SERVED,
        "rating": rating,
        "caller": "anonymous",
        "rated_at": at,
    }
    return record | (
        {"corrected_answer": corrected, "proposal_id": proposal_id(answer_id, corrected)} if corrected else {}
    )


def _build(feedback: bytes, approved=(), eval_fraction: float = 0.25):
    return build_sft(
        [],
        [("curated.jsonl", _jsonl(*CURATED))],
        [("served.jsonl", feedback)],
        eval_fraction=eval_fraction,
        min_feedback_rating=4,
        max_corpus_pairs=0,
        approved_corrections=approved,
    )


def _rows(built) -> tuple[set[str], set[str]]:
    return {r["pair_hash"] for r in built.train}, {r["pair_hash"] for r in built.eval}


def test_a_later_rating_of_an_answer_replaces_the_earlier_one():
    folded = fold_feedback(
        [("a.jsonl", _jsonl(_rating("chatcmpl-1", 5, at=2.0))), ("b.jsonl", _jsonl(_rating("chatcmpl-1", 2, at=3.0)))]
    )

    assert [(path, record["rating"]) for path, _, record, _ in folded.records] == [("b.jsonl", 2)]
    assert folded.notes == ["1 feedback record(s) replaced by a later rating of the same answer id"]


def test_many_ratings_of_one_answer_give_one_training_pair():
    flood = _jsonl(*[_rating("chatcmpl-1", 5, at=float(n)) for n in range(500)])

    built = _build(flood)

    assert [r["instruction"] for r in built.train if r["origin"] == "feedback"] == [QUESTION]


def test_a_correction_is_not_trained_on_until_a_reviewer_approves_it():
    poison = [
        _rating("chatcmpl-1", 5, at=float(n), corrected=f"Attacker text number {n} that should never be learned.")
        for n in range(500)
    ]

    built, baseline = _build(_jsonl(*poison)), _build(_jsonl(_rating("chatcmpl-1", 5, at=1.0)))

    assert _rows(built) == _rows(baseline)
    assert not any("Attacker" in r["response"] for r in built.train + built.eval)
    assert any("500 correction proposal(s) await review" in m.message for m in built.set_aside)


def test_a_low_rating_with_a_correction_stays_a_low_rating():
    built = _build(_jsonl(_rating("chatcmpl-1", 1, at=1.0, corrected="An unreviewed correction of the served answer.")))

    assert [r for r in built.train + built.eval if r["origin"] == "feedback"] == []
    assert any("rating 1 is below sft.min_feedback_rating 4" in m.message for m in built.set_aside)


def test_an_approved_correction_trains_beside_the_callers_own_rating():
    corrected = "The with statement calls __enter__, runs the block, then always calls __exit__."
    record = _rating("chatcmpl-1", 2, at=1.0, corrected=corrected)

    built = _build(_jsonl(record), approved={record["proposal_id"]})

    assert [(r["response"], r["quality"]) for r in built.train if r["origin"] == "feedback"] == [(corrected, 1.0)]


def test_corrections_in_the_old_shape_are_proposals_too():
    old = {
        "question": QUESTION,
        "answer": "Attacker text stored the old way as the answer.",
        "rating": 5,
        "served_answer": SERVED,
        "served_rating": 1,
        "answer_id": "chatcmpl-1",
        "rated_at": 1.0,
    }

    built = _build(_jsonl(old))

    assert [r for r in built.train + built.eval if r["origin"] == "feedback"] == []
    assert list(fold_feedback([("old.jsonl", _jsonl(old))]).proposals) == [proposal_id("chatcmpl-1", old["answer"])]


def test_feedback_never_enters_the_eval_split():
    # Answers whose hashes fall on the eval side of the split: before, each would have been an eval pair.
    answers = [f"Answer {n} for the gate, long enough to keep." for n in range(400)]
    eval_side = [a for a in answers if split_of(pair_hash(f"Question {a}?", a), eval_fraction=0.25) == "eval"][:50]
    ratings = [{"question": f"Question {a}?", "answer": a, "rating": 5} for a in eval_side]

    built, baseline = _build(_jsonl(*ratings)), _build(b"")

    assert _rows(built)[1] == _rows(baseline)[1]
    assert len([r for r in built.train if r["origin"] == "feedback"]) == len(eval_side) == 50


def test_feedback_asking_an_eval_question_is_not_trained_on():
    held_out = _build(b"").eval[0]["instruction"]

    built = _build(_jsonl({"question": held_out, "answer": "Whatever the caller says the answer is.", "rating": 5}))

    assert not any(r["instruction"] == held_out for r in built.train)
    assert any("asks a question of sft_eval_split" in m.message for m in built.set_aside)


def test_unreadable_approvals_are_reported_by_file_and_line(tmp_path):
    path = tmp_path / "approved.jsonl"
    path.write_text('{"proposal_id": "prop-0123456789abcdef"}\n{"proposal": "x"}\nnot json\n', encoding="utf-8")

    approved, problems = read_approvals(str(path))

    assert approved == {"prop-0123456789abcdef"}
    assert [p.split(": ", 1)[0] for p in problems] == [f"{path}:2", f"{path}:3"]
