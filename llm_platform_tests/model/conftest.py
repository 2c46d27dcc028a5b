"""A truly tiny base model, built once per session from Python's own help topics."""

from __future__ import annotations

from pathlib import Path

import pydoc_data.topics
import pytest

from llm_platform.core.base_model import BaseModelInfo, TinyModelConfig, build_local_base_model
from llm_platform.core.sft import read_curated_pairs

DEMO_SFT = Path(__file__).resolve().parents[2] / "llm_platform" / "demo" / "sft"
TINY = TinyModelConfig(
    vocab_size=512, hidden_size=32, num_layers=2, num_heads=4, max_positions=256, pretrain_steps=40
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
