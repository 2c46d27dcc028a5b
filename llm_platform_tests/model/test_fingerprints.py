"""An adapter's identity follows its training settings, and only the settings that shape it.

The expected hashes were computed before the training settings became one type
(config.TrainingSettings): the same settings must keep naming the same adapter
folder and resuming the same checkpoints.
"""

from __future__ import annotations

from llm_platform.config import PlatformConfig, TrainingSettings
from llm_platform.model.prompts import DEFAULT_PROMPT
from llm_platform.model.records import plan_adapter, training_params
from llm_platform.model.training_request import TrainingRequest, fingerprint
from llm_platform.pod_specs import MultiNodeTraining

PAIRS = [("What is a set?", "Unique items.")]
BASE = {"weights_hash": "wwwwwwww", "name": "tiny", "kind": "tiny-local", "path": "/b"}


def _request(**settings) -> TrainingRequest:
    return TrainingRequest(
        base_model_dir="/models/base", examples=PAIRS, config=TrainingSettings(**settings), output_dir="/out"
    )


def _adapter_fingerprint(**training) -> str:
    config = PlatformConfig(sources=[{"name": "docs", "location": "/tmp"}], training=training)
    rows = [{"instruction": q, "response": a} for q, a in PAIRS]
    return plan_adapter(config, rows, BASE, DEFAULT_PROMPT, sft_version="v1", models_dir="/models").fingerprint


def test_the_checkpoint_fingerprint_of_default_settings_is_unchanged():
    assert fingerprint(_request()) == "0e1a9bfac6330cca145fbadc730abfa7"
    assert fingerprint(_request(rank=4, target_modules=["q_proj"], device="cpu")) == "b39dff84bc8635c411660256cbe4a54a"


def test_the_adapter_fingerprint_is_unchanged():
    assert (
        _adapter_fingerprint(rank=4, target_modules=["q_proj"], min_new_examples=5)
        == "3c0a19a1f62243fd603266c0bca965e0"
    )


def test_a_setting_that_shapes_the_adapter_changes_both_fingerprints():
    assert fingerprint(_request(rank=4)) != fingerprint(_request())
    assert _adapter_fingerprint(rank=4) != _adapter_fingerprint()


def test_when_and_where_training_runs_changes_neither_fingerprint():
    nodes = MultiNodeTraining(num_nodes=2, image="llm-platform:1", storage_claim="models", storage_mount_path="/data")
    assert fingerprint(_request(min_new_examples=1, multi_node=nodes)) == fingerprint(_request())
    assert _adapter_fingerprint(min_new_examples=1, multi_node=nodes) == _adapter_fingerprint()


def test_a_resumption_may_change_device_and_checkpointing():
    assert fingerprint(_request(device="cpu", checkpoint_every_steps=3, gradient_checkpointing=True)) == fingerprint(
        _request()
    )


def test_the_mlflow_params_are_the_training_settings_and_the_pair_counts():
    config = PlatformConfig(
        sources=[{"name": "docs", "location": "/tmp"}], training={"rank": 4, "target_modules": ["q_proj"]}
    )
    plan = plan_adapter(
        config, [{"instruction": "q", "response": "a"}], BASE, DEFAULT_PROMPT, sft_version=None, models_dir="/m"
    )
    assert training_params(plan, 3) == {
        "rank": 4,
        "alpha": 16,
        "dropout": 0.05,
        "target_modules": "q_proj",
        "learning_rate": 0.002,
        "epochs": 2,
        "batch_size": 8,
        "max_length": 256,
        "seed": 0,
        "checkpoint_every_steps": 10,
        "device": "auto",
        "gradient_accumulation_steps": 1,
        "gradient_checkpointing": False,
        "group_by_length": True,
        "num_processes": 1,
        "train_pairs": 1,
        "new_pairs": 3,
    }
