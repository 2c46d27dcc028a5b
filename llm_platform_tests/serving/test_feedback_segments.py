"""Feedback on an object-store home: each acknowledged rating is its own object, read back by sft_dataset's reader."""

from __future__ import annotations

from llm_platform.model.feedback import fold_feedback
from llm_platform.model.sft_build import feedback_files
from llm_platform.serving.feedback import FeedbackLog


def test_each_rating_on_an_s3_home_is_an_object_sft_dataset_reads(bucket):
    home = f"{bucket}/platform"
    log = FeedbackLog(home)

    for n, rating in enumerate((5, 2)):
        log.append(
            {
                "answer_id": f"chatcmpl-{n}",
                "question": "What does the with statement do?",
                "answer": "It manages a context.",
                "rating": rating,
            }
        )

    files = feedback_files(None, home)
    assert len(files) == 2 and all(
        path.startswith(f"{bucket.removeprefix('s3://')}/platform/serving/feedback/") for path, _ in files
    )
    assert sorted(record["rating"] for _, _, record, _ in fold_feedback(files).records) == [2, 5]
