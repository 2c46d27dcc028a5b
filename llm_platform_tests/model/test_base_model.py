"""Base model: corpus tokenizer, tiny Llama, real loading paths, no silent substitute."""

from __future__ import annotations

import json
import os

import pytest
import torch

from llm_platform.model.base_model import (
    INFO_FILE,
    build_tiny_causal_lm,
    count_parameters,
    load_base_model,
    pretrain_causal_lm,
    resolve_base_model,
    train_corpus_tokenizer,
    weights_hash,
)
from llm_platform.model_paths import ModelNotAvailableError
from llm_platform_tests.model.conftest import TINY

UNCACHED_HUB_ID = "llm-platform-tests/model-that-is-not-in-any-cache"


@pytest.fixture(scope="module")
def tokenizer(corpus_texts):
    return train_corpus_tokenizer(corpus_texts, vocab_size=TINY.vocab_size)


def test_corpus_tokenizer_has_special_tokens_and_round_trips_text(tokenizer):
    assert len(tokenizer) == TINY.vocab_size
    assert {tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token} == {"<s>", "</s>", "<pad>"}
    text = "def área(r):\n    return 3.14 * r ** 2  # ünïcode"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text


def test_tiny_model_is_a_seeded_llama_with_lora_target_modules(tokenizer):
    model = build_tiny_causal_lm(tokenizer, TINY)
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    assert model.config.model_type == "llama"
    assert {"q_proj", "v_proj"} <= names
    same = build_tiny_causal_lm(tokenizer, TINY).state_dict()
    assert all(torch.equal(value, same[key]) for key, value in model.state_dict().items())
    reseeded = build_tiny_causal_lm(tokenizer, TINY.model_copy(update={"seed": 1})).state_dict()
    assert not all(torch.equal(value, reseeded[key]) for key, value in model.state_dict().items())


def test_pretraining_lowers_the_loss(tokenizer, corpus_texts):
    model = build_tiny_causal_lm(tokenizer, TINY)
    losses = pretrain_causal_lm(model, tokenizer, corpus_texts, steps=30, learning_rate=3e-3, max_length=64)
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.3


def test_weights_hash_changes_when_any_weight_changes(tokenizer, tmp_path):
    model = build_tiny_causal_lm(tokenizer, TINY)
    model.save_pretrained(tmp_path / "before")
    with torch.no_grad():
        model.model.layers[1].self_attn.v_proj.weight[0, 0] += 1e-3
    model.save_pretrained(tmp_path / "after")
    assert weights_hash(str(tmp_path / "before")) != weights_hash(str(tmp_path / "after"))


def test_saved_local_model_loads_with_the_same_weights(tiny_base):
    model, tokenizer = load_base_model(tiny_base.path)
    assert weights_hash(tiny_base.path) == tiny_base.weights_hash
    assert model.num_parameters() == tiny_base.num_parameters == count_parameters(tiny_base.path)
    assert tokenizer.eos_token == "</s>"


def test_uncached_hub_id_fails_with_a_message_naming_it():
    with pytest.raises(ModelNotAvailableError) as caught:
        load_base_model(UNCACHED_HUB_ID)
    assert UNCACHED_HUB_ID in str(caught.value)
    assert "local directory" in str(caught.value)


def test_missing_local_folder_fails_with_a_message_naming_it(tmp_path):
    missing = str(tmp_path / "no-model-here")
    with pytest.raises(ModelNotAvailableError, match="no-model-here"):
        load_base_model(missing)


def test_configured_local_model_is_used_and_a_pointer_written(tiny_base, tmp_path, corpus_texts):
    info = resolve_base_model(
        tiny_base.path,
        revision=None,
        output_dir=str(tmp_path),
        corpus_texts=corpus_texts,
        tiny_config=None,
        allow_download=False,
    )
    assert (info.kind, info.path, info.weights_hash, info.commit) == (
        "configured",
        tiny_base.path,
        tiny_base.weights_hash,
        None,
    )
    pointer = json.loads((tmp_path / INFO_FILE).read_text())
    assert pointer["path"] == tiny_base.path
    assert not os.path.exists(tmp_path / "model.safetensors")


def test_configuring_both_a_model_and_the_tiny_lm_is_rejected(tiny_base, tmp_path, corpus_texts):
    with pytest.raises(ValueError, match="not both"):
        resolve_base_model(
            tiny_base.path,
            revision=None,
            output_dir=str(tmp_path),
            corpus_texts=corpus_texts,
            tiny_config=TINY,
            allow_download=False,
        )
