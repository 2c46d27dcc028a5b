"""The base causal LM: a configured Hugging Face model, or a tiny one built locally.

The tiny model is a real `LlamaForCausalLM` with a byte-level BPE tokenizer
trained on the corpus, so LoRA, checkpointing and evaluation run the same code
path offline, in tests and in the demo as they do on a real model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from llm_platform.model_paths import ModelNotAvailableError

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
INFO_FILE = "base_model.json"
_BYTE_ALPHABET = 256


@dataclass(frozen=True)
class TinyModelConfig:
    """Shape and pre-training budget of the locally built tiny causal LM."""

    vocab_size: int = 2048
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    max_positions: int = 512
    pretrain_steps: int = 200
    pretrain_lr: float = 3e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.vocab_size <= _BYTE_ALPHABET + 3:
            raise ValueError(
                f"TinyModelConfig.vocab_size must exceed {_BYTE_ALPHABET + 3} "
                f"(256 bytes + 3 special tokens), got {self.vocab_size}"
            )
        for field in ("hidden_size", "num_layers", "num_heads", "max_positions"):
            if getattr(self, field) < 1:
                raise ValueError(f"TinyModelConfig.{field} must be >= 1, got {getattr(self, field)}")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"TinyModelConfig.hidden_size ({self.hidden_size}) must be divisible by "
                f"num_heads ({self.num_heads})"
            )
        if self.pretrain_steps < 0:
            raise ValueError(f"TinyModelConfig.pretrain_steps must be >= 0, got {self.pretrain_steps}")
        if self.pretrain_lr <= 0:
            raise ValueError(f"TinyModelConfig.pretrain_lr must be > 0, got {self.pretrain_lr}")


@dataclass(frozen=True)
class BaseModelInfo:
    """Where the base model is and what it is; `path` is loadable by `load_base_model`."""

    path: str
    kind: str  # "configured" | "tiny-local"
    name: str
    revision: str | None
    weights_hash: str
    num_parameters: int
    note: str


def train_corpus_tokenizer(texts: Iterable[str], *, vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on `texts`, with <pad>, <s> and </s> tokens."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD
    )


def build_tiny_causal_lm(tokenizer, config: TinyModelConfig) -> PreTrainedModel:
    """Return a freshly initialised (seeded) tiny `LlamaForCausalLM` for `tokenizer`."""
    llama_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.hidden_size * 4,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads,
        max_position_embeddings=config.max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(config.seed)
    return LlamaForCausalLM(llama_config)


def _token_blocks(tokenizer, texts: Sequence[str], max_length: int) -> torch.Tensor:
    stream: list[int] = []
    for text in texts:
        stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        stream.append(tokenizer.eos_token_id)
    block = min(max_length, len(stream))
    usable = len(stream) // block * block
    return torch.tensor(stream[:usable], dtype=torch.long).view(-1, block)


def pretrain_causal_lm(
    model,
    tokenizer,
    texts: Sequence[str],
    *,
    steps: int,
    learning_rate: float,
    max_length: int,
    batch_size: int = 8,
    seed: int = 0,
) -> list[float]:
    """Train `model` briefly on next-token prediction over `texts`; return per-step losses."""
    if not texts:
        raise ValueError("pretrain_causal_lm needs at least one text; the corpus is empty")
    blocks = _token_blocks(tokenizer, texts, max_length)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    model.train()
    losses = []
    for _ in range(steps):
        rows = torch.randint(len(blocks), (batch_size,), generator=generator)
        batch = blocks[rows]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    model.eval()
    return losses


def weights_hash(model) -> str:
    """Return sha256 over the state_dict (names, dtypes, shapes, bytes) in key order, hex[:32]."""
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{key}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        # A uint8 view gives the raw bytes for every dtype, bfloat16 included.
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


def build_local_base_model(
    texts: Sequence[str], config: TinyModelConfig, output_dir: str
) -> BaseModelInfo:
    """Train a tokenizer and a tiny model on `texts`, pre-train it, save both to `output_dir`."""
    tokenizer = train_corpus_tokenizer(texts, vocab_size=config.vocab_size)
    model = build_tiny_causal_lm(tokenizer, config)
    losses = pretrain_causal_lm(
        model,
        tokenizer,
        texts,
        steps=config.pretrain_steps,
        learning_rate=config.pretrain_lr,
        max_length=min(128, config.max_positions),
        seed=config.seed,
    )
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    loss_note = f", pre-train loss {losses[0]:.2f} -> {losses[-1]:.2f}" if losses else ""
    info = BaseModelInfo(
        path=os.path.abspath(output_dir),
        kind="tiny-local",
        name=f"tiny-llama-h{config.hidden_size}-l{config.num_layers}-v{len(tokenizer)}",
        revision=None,
        weights_hash=weights_hash(model),
        num_parameters=model.num_parameters(),
        note=f"built locally from {len(texts)} texts, {config.pretrain_steps} steps{loss_note}",
    )
    _write_info(info, output_dir)
    return info


def load_base_model(
    name_or_path: str,
    *,
    revision: str | None = None,
    local_files_only: bool = True,
    torch_dtype=None,
):
    """Load (model, tokenizer) from a local directory or a Hugging Face hub id.

    Raises ModelNotAvailableError naming `name_or_path` when it cannot be loaded.
    """
    options = {"revision": revision or "main", "local_files_only": local_files_only}
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, **options)
        model = AutoModelForCausalLM.from_pretrained(
            name_or_path, dtype=torch_dtype or "auto", **options
        )
    except (OSError, ValueError) as err:
        where = "in the local Hugging Face cache" if local_files_only else "locally or on the hub"
        raise ModelNotAvailableError(
            f"Base model {name_or_path!r} (revision {revision or 'main'}) could not be loaded "
            f"{where}: {str(err).strip().rstrip('.')}. Point base_model at a local directory, download it first "
            f"(`hf download {name_or_path}`), allow downloads, or leave base_model unset "
            f"to build the tiny local model."
        ) from err
    model.eval()
    return model, tokenizer


def resolve_base_model(
    name_or_path: str | None,
    *,
    revision: str | None,
    output_dir: str,
    corpus_texts: Sequence[str],
    tiny_config: TinyModelConfig,
    allow_download: bool,
) -> BaseModelInfo:
    """Return the configured base model if it loads, else build the tiny local one.

    For a configured model, `output_dir` gets a pointer (base_model.json), not a
    copy: real checkpoints are gigabytes and already live in the HF cache or at
    their local path. The tiny model is saved in full to `output_dir`.
    """
    fallback_reason = "no base model configured"
    if name_or_path:
        try:
            model, _ = load_base_model(
                name_or_path, revision=revision, local_files_only=not allow_download
            )
        except ModelNotAvailableError as err:
            fallback_reason = str(err)
        else:
            info = BaseModelInfo(
                path=os.path.abspath(name_or_path) if os.path.isdir(name_or_path) else name_or_path,
                kind="configured",
                name=name_or_path,
                revision=revision,
                weights_hash=weights_hash(model),
                num_parameters=model.num_parameters(),
                note="configured model loaded",
            )
            _write_info(info, output_dir)
            return info
    info = build_local_base_model(corpus_texts, tiny_config, output_dir)
    info = dataclasses.replace(info, note=f"{fallback_reason}; {info.note}")
    _write_info(info, output_dir)
    return info


def read_base_model_info(output_dir: str) -> BaseModelInfo:
    """Read the BaseModelInfo that `resolve_base_model` wrote into `output_dir`."""
    with open(os.path.join(output_dir, INFO_FILE), encoding="utf-8") as handle:
        return BaseModelInfo(**json.load(handle))


def _write_info(info: BaseModelInfo, output_dir: str) -> None:
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, INFO_FILE), "w", encoding="utf-8") as handle:
        json.dump(dataclasses.asdict(info), handle, indent=2)
