"""A truly tiny base model, built once per session from Python's own help topics."""

from __future__ import annotations

from pathlib import Path

import pydoc_data.topics
import pytest
import torch

from llm_platform.model.base_model import BaseModelInfo, TinyModelConfig, build_local_base_model
from llm_platform.model.sft import read_curated_pairs
from llm_platform.model.training import LoraTrainingConfig, TrainResult, train_lora

# Tiny matrices gain nothing from intra-op threads, and on a shared 2-core machine
# the thread pool's spin-waits made these tests 4-5x slower.
torch.set_num_threads(1)

DEMO_SFT = Path(__file__).resolve().parents[2] / "llm_platform" / "demo" / "sft"
# Enough pre-training that the embeddings carry signal; below that, LoRA cannot move the logits.
TINY = TinyModelConfig(
    vocab_size=512, hidden_size=32, num_layers=2, num_heads=4, max_positions=256,
    pretrain_steps=100, pretrain_lr=1e-2,
)
# dropout 0 makes the train-mode loss training logs equal an eval-mode forward pass.
LORA = LoraTrainingConfig(
    rank=8, alpha=16, dropout=0.0, learning_rate=3e-2, epochs=3, batch_size=8, max_length=128,
    checkpoint_every_steps=4,
)


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
        base_model_dir=tiny_base.path, examples=curated_examples, config=LORA,
        output_dir=str(tmp_path_factory.mktemp("lora")),
    )
