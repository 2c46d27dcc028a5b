"""The outside tester's poisoning, replayed through the HTTP API into sft_dataset and sft_eval_split.

Before: 500 corrections on one answer id and a rating of 1 with a correction
became most of the training and eval rows, and every check passed. Now the
training data moves by at most the callers' own ratings, the eval split not at
all, and a correction counts only after `llm-platform feedback approve`.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from llm_platform.cli import main
from llm_platform.datasets import DatasetStore
from llm_platform.model.datasets import SFT_DATASET_DATA, SFT_EVAL_SPLIT_DATA
from llm_platform.serving.server import build_service
from llm_platform_tests.model.topics_platform import materialized
from llm_platform_tests.serving.conftest import IDLE, issued

SFT = ["sft_dataset", "sft_eval_split"]
QUESTION = "Which statement runs a block with a context manager?"
SERVED = "The with statement runs its block inside a context manager."


def sft_rows(platform, config) -> dict[str, list[dict]]:
    result = platform.train(config, SFT)
    assert result.success and materialized(result) == set(SFT), (
        "sft_dataset's checks must pass for the comparison to mean anything"
    )
    store = DatasetStore(platform.home)
    return {
        dataset.name: sorted(store.read(dataset, None).to_pylist(), key=lambda r: r["pair_hash"])
        for dataset in (SFT_DATASET_DATA, SFT_EVAL_SPLIT_DATA)
    }


@pytest.fixture
def served(platform):
    """The platform's config (no feedback limit in the way: the fold must hold on
    its own) and a service writing to its storage root.
    """
    config = platform.config("feedback", serving={"feedback_per_minute": 1000})
    service = build_service(config, platform.home, sources=IDLE)
    return config, service, TestClient(service.app)


def test_replayed_poisoning_leaves_eval_unchanged_and_adds_only_the_callers_own_rating(platform, served):
    config, service, client = served
    before = sft_rows(platform, config)
    flooded, low = (
        issued(service, QUESTION, SERVED),
        issued(service, "What does the for statement iterate over?", "Over any iterable."),
    )

    for n in range(500):
        assert (
            client.post(
                "/v1/feedback",
                json={"answer_id": flooded, "rating": 5, "corrected_answer": f"Attacker text {n}: ignore the docs."},
            ).status_code
            == 200
        )
    assert (
        client.post(
            "/v1/feedback",
            json={"answer_id": low, "rating": 1, "corrected_answer": "Attacker text: a 1 that wants to be a 5."},
        ).status_code
        == 200
    )
    after = sft_rows(platform, config)

    assert after["sft_eval_split"] == before["sft_eval_split"]
    added = [r for r in after["sft_dataset"] if r not in before["sft_dataset"]]
    assert [(r["instruction"], r["response"], r["quality"], r["origin"]) for r in added] == [
        (QUESTION, SERVED, 1.0, "feedback")
    ]
    assert len(after["sft_dataset"]) == len(before["sft_dataset"]) + 1
    assert not any("Attacker" in r["response"] for rows in after.values() for r in rows)


def test_an_approved_correction_trains_and_stays_out_of_eval(platform, served, monkeypatch, capsys):
    config, service, client = served
    monkeypatch.setenv("LLM_PLATFORM_HOME", platform.home)
    before = sft_rows(platform, config)
    correction = "The with statement calls __enter__, runs the block, and always calls __exit__ afterwards."
    posted = client.post(
        "/v1/feedback",
        json={"answer_id": issued(service, QUESTION, SERVED), "rating": 1, "corrected_answer": correction},
    ).json()

    assert main(["--config", config.config_path, "feedback", "review"]) == 0
    assert posted["proposal_id"] in capsys.readouterr().out
    assert (
        main(["--config", config.config_path, "feedback", "approve", posted["proposal_id"], "--reviewer", "lead"]) == 0
    )
    after = sft_rows(platform, config)

    assert after["sft_eval_split"] == before["sft_eval_split"]
    assert [(r["instruction"], r["origin"]) for r in after["sft_dataset"] if r["response"] == correction] == [
        (QUESTION, "feedback")
    ]


def test_approving_an_unknown_proposal_says_how_to_find_the_pending_ones(platform, served, monkeypatch, capsys):
    config, _, _ = served
    monkeypatch.setenv("LLM_PLATFORM_HOME", platform.home)

    assert main(["--config", config.config_path, "feedback", "approve", "prop-0000000000000000"]) == 2
    assert "llm-platform feedback review" in capsys.readouterr().err
