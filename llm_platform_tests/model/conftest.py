"""A truly tiny base model, built once per session from Python's own help topics."""

from __future__ import annotations

import pydoc_data.topics
from pathlib import Path

import pytest
import torch

from llm_platform.config import TinyModelSettings, TrainingSettings
from llm_platform.model.base_model import BaseModelInfo, build_local_base_model
from llm_platform.model.sft import read_curated_pairs
from llm_platform.model.training import train_lora
from llm_platform.model.training_request import TrainingRequest, TrainResult
from llm_platform_tests.model.topics_platform import indexed, platform  # noqa: F401  (fixtures of the model-asset tests)

# Tiny matrices gain nothing from intra-op threads, and on a shared 2-core machine
# the thread pool's spin-waits made these tests 4-5x slower.
torch.set_num_threads(1)

DEMO_SFT = Path(__file__).resolve().parents[2] / "llm_platform" / "demo" / "sft"
# Enough pre-training that the embeddings carry signal; below that, LoRA cannot move the logits.
TINY = TinyModelSettings(
    vocab_size=512,
    hidden_size=32,
    num_layers=2,
    num_heads=4,
    max_positions=256,
    pretrain_steps=100,
    pretrain_lr=1e-2,
)
# dropout 0 makes the train-mode loss training logs equal an eval-mode forward pass.
LORA = TrainingSettings(
    rank=8,
    alpha=16,
    dropout=0.0,
    learning_rate=3e-2,
    epochs=3,
    batch_size=8,
    max_length=128,
    checkpoint_every_steps=4,
)


def lora(**changes) -> TrainingSettings:
    """LORA with `changes`, validated like a config file's training section."""
    return TrainingSettings.model_validate({**LORA.model_dump(), **changes})


@pytest.fixture(scope="session")
def corpus_texts() -> list[str]:
    """Forty help topics from the standard library: real, varied, always installed."""
    return [text for _, text in sorted(pydoc_data.topics.topics.items())][:40]


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory, corpus_texts) -> BaseModelInfo:
    """The tiny local base model saved to a session temp folder."""
    return build_local_base_model(corpus_texts, TINY, str(tmp_path_factory.mktemp("base")))


@pytest.fixture(scope="session")
def curated_examples() -> list[tuple[str, str]]:
    """The demo's curated (instruction, response) pairs."""
    path = DEMO_SFT / "curated.jsonl"
    pairs, _ = read_curated_pairs(str(path), path.read_bytes())
    return [(pair.instruction, pair.response) for pair in pairs]


@pytest.fixture(scope="session")
def tuned(tiny_base, curated_examples, tmp_path_factory) -> TrainResult:
    """One uninterrupted LoRA run on the curated pairs: 40 examples, batch 8, 3 epochs = 15 steps."""
    return train_lora(
        TrainingRequest(
            base_model_dir=tiny_base.path,
            examples=curated_examples,
            config=LORA,
            output_dir=str(tmp_path_factory.mktemp("lora")),
        )
    )


@pytest.fixture
def lora_request(tiny_base, curated_examples, tmp_path) -> TrainingRequest:
    """LORA on the curated pairs over the tiny base, into this test's tmp_path: `tuned`'s run, in a fresh folder."""
    return TrainingRequest(
        base_model_dir=tiny_base.path, examples=curated_examples, config=LORA, output_dir=str(tmp_path)
    )


# ---- real architectures in a local Hugging Face hub cache --------------------------------------

QWEN_ID, LLAMA_ID = "llm-platform-tests/tiny-qwen2", "llm-platform-tests/tiny-llama"
# Two commits per repo: `v1` is the older, `main` the newer (different seeds, so different weights).
COMMITS = {"v1": "1" * 40, "main": "2" * 40}
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _real_architecture(arch: str, tokenizer, seed: int):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    shape = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        "tie_word_embeddings": True,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config_cls, model_cls = (Qwen2Config, Qwen2ForCausalLM) if arch == "qwen2" else (LlamaConfig, LlamaForCausalLM)
    torch.manual_seed(seed)
    return model_cls(config_cls(**shape))


@pytest.fixture(scope="session")
def hub_cache(tmp_path_factory, corpus_texts) -> Path:
    """A hub cache laid out as `hf download` leaves it: refs/{main,v1} ->
    snapshots/<commit>/ with random-weight models.
    """
    from llm_platform.model.base_model import train_corpus_tokenizer

    root = tmp_path_factory.mktemp("hub")
    tokenizer = train_corpus_tokenizer(corpus_texts, vocab_size=320)
    for repo_id, arch in ((QWEN_ID, "qwen2"), (LLAMA_ID, "llama")):
        repo = root / f"models--{repo_id.replace('/', '--')}"
        (repo / "refs").mkdir(parents=True)
        for seed, (ref, commit) in enumerate(COMMITS.items()):
            snapshot = repo / "snapshots" / commit
            _real_architecture(arch, tokenizer, seed).save_pretrained(snapshot)
            tokenizer.chat_template = CHATML if arch == "qwen2" else None
            tokenizer.save_pretrained(snapshot)
            (repo / "refs" / ref).write_text(commit)
    return root


@pytest.fixture
def hub_env(hub_cache, monkeypatch) -> Path:
    """HF_HOME/HF_HUB_CACHE point at the test cache, offline; huggingface_hub
    reads its constants at import, so patch those too.
    """
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_HOME", str(hub_cache.parent))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(hub_cache))
    return hub_cache
