"""The fine-tuning half through Dagster: train, score, gate and promote on a tiny real model."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

import llm_platform.model.assets as training_assets
import llm_platform.model.training as training_logic
from llm_platform.config import DEMO_CONFIG, SFT_RULE_NAMES, PlatformConfig, load_config
from llm_platform.home_layout import PRODUCTION_ALIAS
from llm_platform.model.training import train_lora
from llm_platform_tests.model.topics_platform import Platform, check_evaluations, materialized, platform_copy

CANDIDATE = ["lora_adapter", "model_eval", "production_model"]
UP_TO_ADAPTER = ["sft_dataset", "sft_eval_split", "base_model", "prompt_template", "lora_adapter"]
# Measured on this tiny model over the prose-rendered topics (eval perplexity, base model 102.2):
# learning rate 5e-4 leaves the base model as it was; the base settings, 0.05 for four epochs, give
# 98.7 (two epochs gave 102.3, no better than the base); 1.0 diverges. The 2% regression allowance
# sits inside both gaps.
DIVERGING = {"training": {"learning_rate": 1.0}}
UNTRAINED = {"training": {"learning_rate": 0.0005}, "gates": {"beat_base": {}}}
LONGER = {"training": {"learning_rate": 0.05, "epochs": 4}}
# An adapter whose LoRA weights barely leave their zero start answers exactly as the base model does.
UNTRAINED_UNDER_DEMO_GATES = {"training": {"learning_rate": 1e-9}, "gates": load_config(DEMO_CONFIG).gates.model_dump()}
STOP_AFTER = 3  # with checkpoint_every_steps 2, the last checkpoint before the stop is step 2


@dataclass
class Trained:
    platform: Platform
    config: PlatformConfig
    result: dg.ExecuteInProcessResult


@pytest.fixture(scope="module")
def trained(indexed, tmp_path_factory) -> Trained:
    """One full training_job run with the base settings, shared by the tests that only read it."""
    platform = platform_copy(indexed, tmp_path_factory.mktemp("trained"))
    config = platform.config()
    return Trained(platform, config, platform.train(config))


@pytest.fixture(scope="module")
def resumed(indexed, tmp_path_factory) -> tuple[Trained, list[int | None]]:
    """lora_adapter whose first attempt is interrupted after step 3; Dagster's retry policy runs it again.

    The retry happens inside the same run (after the policy's 30 s delay), which is the
    production path: a preempted GPU step is retried and resumes from its checkpoint.
    """
    platform = platform_copy(indexed, tmp_path_factory.mktemp("resumed"))
    config = platform.config()
    calls: list[int | None] = []

    def interrupted_once(request, on_step):
        calls.append(None if calls else STOP_AFTER)
        return train_lora(replace(request, stop_after_steps=calls[-1]), on_step)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training_logic, "train_lora", interrupted_once)
        result = platform.train(config, UP_TO_ADAPTER)
    return Trained(platform, config, result), calls


def _promoted(platform: Platform, config: PlatformConfig):
    client = platform.mlflow(config).client()
    return client.get_model_version_by_alias(config.mlflow.registered_model, PRODUCTION_ALIAS)


def _promote_first(platform: Platform, **overrides) -> dict:
    result = platform.train(platform.config("first", **overrides))
    assert result.success and "production_model" in materialized(result), (
        "the first adapter must be promoted for this test"
    )
    return platform.latest("production_model")


def test_training_job_promotes_first_adapter_when_gates_pass(trained):
    assert trained.result.success
    assert materialized(trained.result) == {
        "sft_dataset",
        "sft_eval_split",
        "base_model",
        "prompt_template",
        *CANDIDATE,
    }
    assert all(e.passed for e in check_evaluations(trained.result, "model_eval").values())
    production, adapter = trained.platform.latest("production_model"), trained.platform.latest("lora_adapter")
    alias = _promoted(trained.platform, trained.config)
    assert (production["version"], production["previous_version"]) == (str(alias.version), "none") == ("1", "none")
    assert alias.run_id == adapter["mlflow_run_id"] == production["mlflow_run_id"]


def test_lineage_tags_recorded_in_mlflow(trained):
    adapter = trained.platform.latest("lora_adapter")
    client = trained.platform.mlflow(trained.config).client()
    tags = client.get_run(adapter["mlflow_run_id"]).data.tags
    assert tags["dagster_run_id"] == trained.result.run_id
    assert tags["sft_dataset_version"] == trained.platform.latest("sft_dataset")["dataset_version"]
    assert tags["base_model_weights_hash"] == trained.platform.latest("base_model")["weights_hash"]
    history = client.get_metric_history(adapter["mlflow_run_id"], "train_loss")
    assert sorted(m.step for m in history) == list(range(1, adapter["steps"] + 1))
    artifacts = {
        a.path.split("/")[-1] for a in client.list_artifacts(adapter["mlflow_run_id"], training_assets.ADAPTER_ARTIFACT)
    }
    assert {"adapter_config.json", "adapter_model.safetensors"} <= artifacts


def test_worse_adapter_is_not_promoted_and_production_unchanged(platform):
    first = _promote_first(platform)
    config = platform.config("diverging", **DIVERGING)

    result = platform.train(config, CANDIDATE)

    gate = check_evaluations(result, "model_eval")["perplexity_no_regression"]
    value, production = gate.metadata["candidate"].value, gate.metadata["production"].value
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.ERROR
    assert gate.description.startswith("perplexity") and f"{value / production - 1:.1%} above" in gate.description
    assert "model_eval" in result.get_failed_step_keys() and "production_model" not in materialized(result)
    assert not check_evaluations(result, "model_eval")["perplexity_beats_base"].passed
    assert _promoted(platform, config).run_id == first["mlflow_run_id"]
    assert platform.latest("production_model")["version"] == first["version"] == "1"


def test_better_adapter_replaces_production(platform):
    first = _promote_first(platform, **UNTRAINED)
    config = platform.config("longer", **LONGER)

    result = platform.train(config, CANDIDATE)

    assert result.success and "production_model" in materialized(result)
    production = platform.latest("production_model")
    alias = _promoted(platform, config)
    assert (
        (production["version"], production["previous_version"]) == (str(alias.version), first["version"]) == ("2", "1")
    )
    assert alias.run_id == platform.latest("lora_adapter")["mlflow_run_id"] != first["mlflow_run_id"]


def test_too_few_new_examples_skips_training(platform):
    config = platform.config("patient", training={"min_new_examples": 1000})

    result = platform.train(config)

    assert result.success and not {"lora_adapter", "model_eval", "production_model"} & materialized(result)
    (observation,) = result.asset_observations_for_node("lora_adapter")
    note, new = observation.metadata["note"].value, observation.metadata["new_examples"].value
    assert (
        new == platform.latest("sft_dataset")["pairs"]
        and f"{new} new training pairs" in note
        and "min_new_examples=1000" in note
        and f"{1000 - new} more are needed" in note
    )
    assert not result.is_node_success("model_eval") and not result.is_node_success("production_model")
    assert platform.mlflow(config).production() is None


def test_skipped_training_warns_of_no_ungated_check(platform, caplog):
    """A deliberate skip is not a check that emitted nothing: Dagster must not warn of ungated steps."""
    config = platform.config("patient", training={"min_new_examples": 1000})

    with caplog.at_level(logging.WARNING):
        result = platform.train(config)

    assert result.success and "lora_adapter" not in materialized(result)
    noise = [r.getMessage() for r in caplog.records if "emitted no result" in r.getMessage()]
    assert noise == []
    assert check_evaluations(result, "model_eval") == {}  # not evaluated, so never reported as passed


def test_eval_split_never_in_training_data(trained):
    train = pq.read_table(trained.platform.latest("sft_dataset")["path"]).column("pair_hash").to_pylist()
    held_out = pq.read_table(trained.platform.latest("sft_eval_split")["path"]).column("pair_hash").to_pylist()
    assert train and held_out and not set(train) & set(held_out)
    checks = check_evaluations(trained.result, "sft_dataset")
    assert set(checks) == set(SFT_RULE_NAMES) and all(c.passed for c in checks.values()), checks


def test_model_eval_scores_the_recorded_upstream_adapter(trained):
    evaluation, adapter = trained.platform.latest("model_eval"), trained.platform.latest("lora_adapter")
    assert evaluation["evaluated_adapter"] == adapter["adapter_dir"]
    assert evaluation["mlflow_run_id"] == adapter["mlflow_run_id"]
    assert evaluation["scores"].startswith("| metric | base | candidate |")
    assert 0.0 <= evaluation["candidate_rouge_l"] <= 1.0 and evaluation["candidate_perplexity"] > 1.0


def test_model_eval_states_the_verdict_and_every_gate_in_its_metadata(trained):
    evaluation = trained.platform.latest("model_eval")
    assert evaluation["gates_passed"] is True and evaluation["verdict"].startswith(
        "promotable: all 3 gates applied passed"
    )
    assert evaluation["gates"].startswith("| gate | result | candidate | bound | compared_with | detail |")
    assert (
        "| perplexity_beats_base | pass |" in evaluation["gates"]
        and "| rouge_l_no_regression | not applied |" in evaluation["gates"]
    )


def test_model_eval_states_the_verdict_on_the_adapters_mlflow_run(trained):
    run_id = trained.platform.latest("lora_adapter")["mlflow_run_id"]
    client = trained.platform.mlflow(trained.config).client()
    tags = client.get_run(run_id).data.tags
    assert tags["gates_passed"] == "true" and tags["gate_verdict"] == trained.platform.latest("model_eval")["verdict"]
    stored = json.loads(Path(client.download_artifacts(run_id, training_assets.GATES_ARTIFACT)).read_text())
    assert stored["passed"] is True and [row["gate"] for row in stored["gates"]][:1] == ["perplexity_bound"]


def test_beats_base_check_labels_the_base_models_score_base_not_production(trained):
    check = check_evaluations(trained.result, "model_eval")["perplexity_beats_base"]
    assert set(check.metadata) == {"candidate", "required_gain", "base"}
    assert check.metadata["base"].value == trained.platform.latest("model_eval")["base_perplexity"]


def test_demo_gates_refuse_an_adapter_that_learned_nothing(platform):
    config = platform.config("untrained", **UNTRAINED_UNDER_DEMO_GATES)

    result = platform.train(config)

    checks = check_evaluations(result, "model_eval")
    # It answers as the base model does, so it gains nothing on any metric, answers included.
    assert not checks["perplexity_beats_base"].passed
    assert not checks["rouge_l_beats_base"].passed and not checks["rag_rouge_l_beats_base"].passed
    assert "production_model" not in materialized(result) and platform.mlflow(config).production() is None
    assert platform.latest("model_eval")["verdict"].startswith("not promotable:")


def test_interrupted_training_resumes_from_checkpoint_inside_asset(resumed):
    run, calls = resumed
    assert run.result.success and calls == [STOP_AFTER, None]
    retried = [
        e for e in run.result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY" and e.step_key == "lora_adapter"
    ]
    assert len(retried) == 1 and "TrainingInterrupted" in str(retried[0].event_specific_data)
    adapter = run.platform.latest("lora_adapter")
    assert (adapter["status"], adapter["resumed_from_step"]) == ("resumed", STOP_AFTER - 1)
    assert len(adapter["losses"]) == adapter["steps"] > STOP_AFTER


def test_resumed_adapter_run_holds_the_whole_loss_curve(resumed):
    run, _ = resumed
    adapter = run.platform.latest("lora_adapter")
    history = run.platform.mlflow(run.config).client().get_metric_history(adapter["mlflow_run_id"], "train_loss")
    assert sorted(m.step for m in history) == list(range(1, adapter["steps"] + 1))
    assert [round(m.value, 4) for m in sorted(history, key=lambda m: m.step)] == adapter["losses"]
