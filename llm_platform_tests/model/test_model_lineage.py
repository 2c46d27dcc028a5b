"""Prompts, registry and the eval record through Dagster: what a score was made from, and loading elsewhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llm_platform_tests.model.conftest import COMMITS, QWEN_ID
from llm_platform_tests.model.topics_platform import check_evaluations, materialized, platform_copy

REPO = Path(__file__).resolve().parents[2]
MODEL_METRICS = {"perplexity", "rouge_l", "bleu", "rag_rouge_l", "rag_bleu"}
# min_new_examples high: no new pairs, yet a new prompt must retrain.
OTHER_TEMPLATE = {
    "prompts": {"template": "Question: {instruction}\nAnswer: ", "use_chat_template": True},
    "training": {"min_new_examples": 1000},
}
LOAD_FROM_REGISTRY = """
import json, sys
from llm_platform.model.registry import load_registered_adapter, registered_version
from llm_platform.model.evaluation import generate_answers
from llm_platform.resources.mlflow import MlflowResource
resource = MlflowResource(home=sys.argv[1], registered_model=sys.argv[2])
loaded = load_registered_adapter(resource, sys.argv[2], device="cpu", cache_dir=sys.argv[3])
answer = generate_answers(loaded.model, loaded.tokenizer, ["What does the with statement do?"], max_new_tokens=4, \
template=loaded.prompt_template)
print(json.dumps({"version": loaded.version, "alias": registered_version(resource, sys.argv[2]), \
"prompt": loaded.prompt_template.version,
                  "base": loaded.base_model, "run_id": loaded.run_id, \
"answer": answer[0], "model": type(loaded.model).__name__}))
"""


@pytest.fixture(scope="module")
def trained(indexed, tmp_path_factory):
    platform = platform_copy(indexed, tmp_path_factory.mktemp("lineage"))
    config = platform.config()
    result = platform.train(config)
    assert result.success, "the base settings must train and promote"
    return platform, config


def test_promoted_adapter_loads_from_the_registry_in_a_fresh_process_without_local_files(trained, tmp_path):
    platform, config = trained
    models = Path(platform.home) / "models"
    hidden = models.with_name("models-hidden")
    os.rename(models, hidden)  # the adapter and base model folders the training pod wrote are gone
    try:
        done = subprocess.run(
            [sys.executable, "-c", LOAD_FROM_REGISTRY, platform.home, config.mlflow.registered_model, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO,
        )
    finally:
        os.rename(hidden, models)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    adapter, production = platform.latest("lora_adapter"), platform.latest("production_model")
    assert (loaded["version"], loaded["alias"], loaded["run_id"]) == (
        production["version"],
        "1",
        adapter["mlflow_run_id"],
    )
    assert (
        loaded["prompt"] == platform.latest("prompt_template")["version"] and loaded["model"] == "PeftModelForCausalLM"
    )
    assert loaded["base"] == platform.latest("base_model")["name"]


def test_registered_version_carries_base_model_prompt_and_eval_lineage(trained):
    platform, config = trained
    client = platform.mlflow(config).client()
    version = client.get_model_version_by_alias(config.mlflow.registered_model, "production")
    base, prompt = platform.latest("base_model"), platform.latest("prompt_template")
    assert (
        version.tags["base_model"] == base["name"] and version.tags["base_model_weights_hash"] == base["weights_hash"]
    )
    assert version.tags["prompt_template_version"] == prompt["version"] and "base_model_commit" in version.tags
    files = {a.path.split("/")[-1] for a in client.list_artifacts(version.run_id, "adapter")}
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "prompt_template.json",
        "base_model.json",
        "base",
    } <= files
    assert client.get_run(version.run_id).data.tags["prompt_template_version"] == prompt["version"]


def test_eval_record_names_split_index_prompt_adapter_and_code(trained):
    platform, _ = trained
    evaluation = platform.latest("model_eval")
    assert evaluation["eval_split_version"] == platform.latest("sft_eval_split")["dataset_version"]
    assert evaluation["prompt_template_version"] == platform.latest("prompt_template")["version"]
    assert isinstance(evaluation["index_version"], int) and evaluation["index_version"] >= 1
    assert evaluation["package_version"] == "0.1.0" and evaluation["git_commit"] != ""
    assert (
        evaluation["device"] == "cpu"
        and evaluation["mlflow_run_id"] == platform.latest("lora_adapter")["mlflow_run_id"]
    )


def test_model_scores_are_the_models_own_with_rag_and_no_index_metrics(trained):
    platform, _ = trained
    evaluation = platform.latest("model_eval")
    scored = {key.removeprefix("candidate_") for key in evaluation if key.startswith("candidate_")}
    assert scored == MODEL_METRICS
    assert evaluation["base_perplexity"] != evaluation["candidate_perplexity"]
    assert "retrieval_hit_rate" not in evaluation["scores"] and "| rag_rouge_l |" in evaluation["scores"]


def test_changed_prompt_template_retrains_and_reevaluates(trained, tmp_path):
    platform, _ = trained
    before = {asset: platform.latest(asset) for asset in ("prompt_template", "lora_adapter", "model_eval")}
    changed = platform.config("other_prompt", **OTHER_TEMPLATE)

    result = platform.train(changed, ["prompt_template", "lora_adapter", "model_eval"])

    assert {"prompt_template", "lora_adapter", "model_eval"} <= materialized(result)
    after = {asset: platform.latest(asset) for asset in before}
    assert after["prompt_template"]["version"] != before["prompt_template"]["version"]
    assert after["lora_adapter"]["fingerprint"] != before["lora_adapter"]["fingerprint"]
    assert (
        after["lora_adapter"]["prompt_template_version"]
        == after["model_eval"]["prompt_template_version"]
        == after["prompt_template"]["version"]
    )


def test_model_eval_refuses_an_adapter_trained_with_another_prompt(trained):
    platform, config = trained
    changed = platform.config("stale_prompt", prompts={"template": "Asked: {instruction}\nSaid: "})
    result = platform.train(changed, ["prompt_template", "model_eval"])
    assert "model_eval" in result.get_failed_step_keys()
    failure = result.failure_data_for_node("model_eval").error.message
    assert "re-materialize lora_adapter" in failure
    platform.train(config, ["prompt_template"])  # leave the shared platform as the other tests expect


def test_unconfigured_base_model_fails_instead_of_building_the_tiny_one(platform):
    config = platform.config("no_model", base_model={"tiny": None})
    result = platform.train(config, ["base_model"])
    assert not result.success and "base_model" not in materialized(result)
    message = result.failure_data_for_node("base_model").error.message
    assert "base_model.name_or_path" in message and "base_model.tiny" in message


def test_broken_curated_file_fails_the_rule_it_breaks_naming_file_and_line(platform, tmp_path):
    broken = tmp_path / "curated" / "broken.jsonl"
    broken.parent.mkdir()
    lines = [
        {"instruction": f"Who owns service number {i}?", "response": f"Mail owner{i}@example.com about it."}
        for i in range(4)
    ]
    broken.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    config = platform.config("broken", sft={"curated_location": str(broken.parent)})

    result = platform.train(config, ["sft_dataset", "sft_eval_split"])

    checks = check_evaluations(result, "sft_dataset")
    assert not checks["no_pii"].passed and checks["instruction_length"].passed
    assert (
        f"{broken}:1: no_pii" in checks["no_pii"].description
        and "4 of 4 supplied records (100.0%)" in checks["no_pii"].description
    )


def test_prompt_template_file_is_the_template_and_one_without_placeholder_fails(platform, tmp_path):
    from llm_platform.model.prompts import CONFIGURED, make_template

    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text("Q: {instruction}\nA: ", encoding="utf-8")
    bad.write_text("Answer the question.", encoding="utf-8")

    ok = platform.train(
        platform.config("good_file", prompts={"template_file": str(good)}), ["base_model", "prompt_template"]
    )
    broken = platform.train(platform.config("bad_file", prompts={"template_file": str(bad)}), ["prompt_template"])

    assert (
        ok.success
        and platform.latest("prompt_template")["version"] == make_template(CONFIGURED, "Q: {instruction}\nA: ").version
    )
    assert (
        f"prompts.template_file {bad} must contain {{instruction}}"
        in broken.failure_data_for_node("prompt_template").error.message
    )


def test_configured_hub_model_is_recorded_at_its_commit_with_its_chat_template(platform, hub_env):
    config = platform.config("qwen", base_model={"tiny": None, "name_or_path": QWEN_ID, "revision": "v1"})

    result = platform.train(config, ["base_model", "prompt_template"])

    assert result.success
    base, prompt = platform.latest("base_model"), platform.latest("prompt_template")
    assert (base["kind"], base["name"], base["revision"], base["commit"]) == (
        "configured",
        QWEN_ID,
        "v1",
        COMMITS["v1"],
    )
    assert prompt["kind"] == "chat_template" and prompt["origin"] == f"chat template of {QWEN_ID}"
