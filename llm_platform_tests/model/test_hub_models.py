"""Configured models of real architectures (Qwen2, Llama) from a local hub cache: exact revision or a clear failure."""

from __future__ import annotations

import hashlib

import pytest

from llm_platform.config import TrainingSettings
from llm_platform.model import base_model
from llm_platform.model.base_model import describe_configured_model, load_base_model, resolve_base_model, weight_files
from llm_platform.model.prompts import CHAT_TEMPLATE, CONFIGURED, encode_prompt, format_prompt, template_for
from llm_platform.model.training import load_adapter, train_lora
from llm_platform.model.training_request import TrainingRequest
from llm_platform.model_paths import ModelNotAvailableError
from llm_platform_tests.model.conftest import COMMITS, LLAMA_ID, QWEN_ID

ARCHITECTURES = [(QWEN_ID, "qwen2"), (LLAMA_ID, "llama")]


@pytest.mark.parametrize(("repo_id", "model_type"), ARCHITECTURES)
def test_each_revision_resolves_to_its_own_snapshot_commit_and_weights(hub_env, repo_id, model_type):
    main = describe_configured_model(repo_id, revision=None, allow_download=False)
    older = describe_configured_model(repo_id, revision="v1", allow_download=False)
    pinned = describe_configured_model(repo_id, revision=COMMITS["v1"], allow_download=False)
    assert (main.commit, older.commit, pinned.commit) == (COMMITS["main"], COMMITS["v1"], COMMITS["v1"])
    assert older.weights_hash == pinned.weights_hash != main.weights_hash
    assert model_type in main.note and main.num_parameters > 0 and main.weight_files == ("model.safetensors",)


def test_loading_at_a_revision_loads_that_commits_weights(hub_env):
    older, _ = load_base_model(QWEN_ID, revision="v1")
    newer, _ = load_base_model(QWEN_ID, revision=COMMITS["main"])
    assert older.config.model_type == "qwen2"
    first = "model.embed_tokens.weight"
    assert not older.state_dict()[first].equal(newer.state_dict()[first])
    assert (
        older.num_parameters() == describe_configured_model(QWEN_ID, revision="v1", allow_download=False).num_parameters
    )


def test_weights_hash_streams_the_files_without_loading_the_model(hub_env, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("the weights hash must not load the model")

    monkeypatch.setattr(base_model.AutoModelForCausalLM, "from_pretrained", no_loading)
    info = describe_configured_model(LLAMA_ID, revision="v1", allow_download=False)
    digest = hashlib.sha256()
    for name in weight_files(info.path):
        digest.update(f"{name}\0".encode())
        digest.update(
            (hub_env / "models--llm-platform-tests--tiny-llama" / "snapshots" / COMMITS["v1"] / name).read_bytes()
        )
    assert info.weights_hash == digest.hexdigest()[:32]


@pytest.mark.parametrize(
    ("repo_id", "revision"), [("llm-platform-tests/not-in-the-cache", None), (QWEN_ID, "v9-does-not-exist")]
)
def test_a_model_that_cannot_be_found_fails_naming_model_revision_and_the_fix(hub_env, tmp_path, repo_id, revision):
    with pytest.raises(ModelNotAvailableError) as caught:
        resolve_base_model(
            repo_id,
            revision=revision,
            output_dir=str(tmp_path),
            corpus_texts=["text"],
            tiny_config=None,
            allow_download=False,
        )
    message = str(caught.value)
    assert repo_id in message and f"revision {revision or 'main'}" in message
    assert "hf download" in message and "allow_download" in message and "local directory" in message
    assert not (tmp_path / "model.safetensors").exists()


def test_no_configured_model_and_no_tiny_choice_fails_instead_of_building_one(tmp_path):
    with pytest.raises(ModelNotAvailableError, match=r"base_model\.name_or_path.*base_model\.tiny"):
        resolve_base_model(
            None, revision=None, output_dir=str(tmp_path), corpus_texts=["text"], tiny_config=None, allow_download=False
        )
    assert not any(tmp_path.iterdir())


def test_chat_template_of_the_tokenizer_becomes_the_prompt_format(hub_env):
    _, qwen = load_base_model(QWEN_ID)
    _, llama = load_base_model(LLAMA_ID)
    chat, configured = template_for(qwen), template_for(llama)
    assert (chat.kind, configured.kind) == (CHAT_TEMPLATE, CONFIGURED)
    prompt = format_prompt(chat, "What is a set?", contexts=["A set is unordered."], tokenizer=qwen)
    assert prompt.startswith("<|im_start|>user\n") and prompt.endswith("<|im_start|>assistant\n")
    assert "[1] A set is unordered." in prompt and "Question: What is a set?" in prompt
    assert encode_prompt(chat, qwen, "What is a set?")[0] != qwen.bos_token_id


def test_lora_trains_on_a_cached_qwen2_at_its_commit_with_its_chat_template(hub_env, tmp_path, curated_examples):
    _, tokenizer = load_base_model(QWEN_ID, revision="v1")
    template = template_for(tokenizer)
    config = TrainingSettings(
        rank=4, alpha=8, dropout=0.0, epochs=1, batch_size=8, max_length=96, checkpoint_every_steps=100, device="cpu"
    )
    result = train_lora(
        TrainingRequest(
            base_model_dir=QWEN_ID,
            base_revision=COMMITS["v1"],
            examples=curated_examples[:16],
            config=config,
            output_dir=str(tmp_path),
            prompt_template=template,
        )
    )
    model, _ = load_adapter(QWEN_ID, result.adapter_dir, revision=COMMITS["v1"])
    assert result.steps == 2 and model.base_model.model.config.model_type == "qwen2"
