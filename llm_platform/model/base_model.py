"""The base causal LM: a configured Hugging Face model at an exact revision, or a tiny one built locally.

The tiny model is an explicit choice in config (`base_model.tiny`), never a
fallback: a configured model that cannot be found fails with a message naming
it, its revision and what to do. A hub id is resolved to a snapshot folder of
the local hub cache for the requested revision; the folder's name is the commit
every later load pins. Identity (the weights hash) is computed by streaming the
weight files, so a 4 GiB CPU pod can fingerprint a 7B model.

The tiny model is a real `LlamaForCausalLM` with a byte-level BPE tokenizer
trained on the corpus, so LoRA, checkpointing and evaluation run the same code
path offline, in tests and in the demo as they do on a real model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
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

from llm_platform.config import TinyModelSettings
from llm_platform.model_paths import ModelNotAvailableError

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
INFO_FILE = "base_model.json"
_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class BaseModelInfo:
    """Where the base model is and what it is; `path` is loadable by `load_base_model`."""

    path: str
    kind: str  # "configured" | "tiny-local"
    name: str
    revision: str | None  # as configured
    weights_hash: str
    num_parameters: int
    note: str
    commit: str | None = None  # the hub-cache snapshot the revision resolved to; None for local folders
    weight_files: tuple[str, ...] = ()


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
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD)


def build_tiny_causal_lm(tokenizer, config: TinyModelSettings) -> PreTrainedModel:
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


def weight_files(folder: str) -> list[str]:
    """The model's weight files in `folder`, sorted: safetensors where present, else PyTorch .bin."""
    names = sorted(os.listdir(folder))
    found = [n for n in names if n.endswith(".safetensors")] or [
        n for n in names if n.endswith(".bin") and n != "training_args.bin"
    ]
    if not found:
        raise ModelNotAvailableError(
            f"{folder} holds no *.safetensors or *.bin weight files; the download is incomplete or the path is wrong"
        )
    return found


def weights_hash(folder: str) -> str:
    """sha256 over the weight files' names and bytes in sorted order, streamed in 1 MiB blocks; hex[:32].

    Never loads the model: memory stays at one block whatever the model's size.
    """
    digest = hashlib.sha256()
    for name in weight_files(folder):
        digest.update(f"{name}\0".encode())
        with open(os.path.join(folder, name), "rb") as handle:
            for block in iter(lambda: handle.read(_HASH_BLOCK), b""):
                digest.update(block)
    return digest.hexdigest()[:32]


def count_parameters(folder: str) -> int:
    """Parameters counted from safetensors headers (8-byte length + JSON), without reading tensors; 0 for .bin."""
    total = 0
    for name in weight_files(folder):
        if not name.endswith(".safetensors"):
            return 0
        with open(os.path.join(folder, name), "rb") as handle:
            header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
        total += sum(math.prod(t["shape"]) for key, t in header.items() if key != "__metadata__")
    return total


def build_local_base_model(texts: Sequence[str], config: TinyModelSettings, output_dir: str) -> BaseModelInfo:
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
        weights_hash=weights_hash(output_dir),
        num_parameters=model.num_parameters(),
        note=f"built locally from {len(texts)} texts, {config.pretrain_steps} steps{loss_note}",
        weight_files=tuple(weight_files(output_dir)),
    )
    _write_info(info, output_dir)
    return info


def _not_available(name: str, revision: str | None, allow_download: bool, why: str) -> ModelNotAvailableError:
    where = (
        "locally or on the hub"
        if allow_download
        else "as a local directory or in the local Hugging Face cache (downloads are off)"
    )
    todo = (
        "fix base_model.name_or_path or base_model.revision"
        if allow_download
        else f"pre-populate the cache (`hf download {name}" + (f" --revision {revision}" if revision else "") + "`), "
        "set base_model.allow_download: true, or point base_model.name_or_path at a local directory"
    )
    return ModelNotAvailableError(
        f"Base model {name!r} (revision {revision or 'main'}) could not be found {where}: {why}. To fix: {todo}."
    )


def resolve_snapshot(
    name_or_path: str, *, revision: str | None = None, allow_download: bool = False
) -> tuple[str, str | None]:
    """(folder, commit): a local directory as is (commit None), or the hub-cache snapshot of `revision`.

    The snapshot folder's name is the commit hash the revision (branch, tag or
    commit) resolved to; loading from that folder pins it.
    """
    if os.path.isdir(os.path.expanduser(name_or_path)):
        return os.path.abspath(os.path.expanduser(name_or_path)), None
    if name_or_path.startswith(("/", ".", "~")):
        raise _not_available(name_or_path, revision, allow_download, "no such directory")
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(name_or_path, revision=revision or "main", local_files_only=not allow_download)
    except Exception as err:  # huggingface_hub raises several unrelated types for "not there"
        raise _not_available(
            name_or_path, revision, allow_download, f"{type(err).__name__}: {str(err).strip().splitlines()[0]}"
        ) from err
    return folder, os.path.basename(os.path.normpath(folder))


def load_base_model(
    name_or_path: str,
    *,
    revision: str | None = None,
    local_files_only: bool = True,
    torch_dtype=None,
):
    """Load (model, tokenizer) from a local directory, or a hub id at `revision` (a commit pins it exactly).

    Raises ModelNotAvailableError naming the model, the revision and what to do.
    """
    folder, _ = resolve_snapshot(name_or_path, revision=revision, allow_download=not local_files_only)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype or "auto", local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        raise _not_available(name_or_path, revision, not local_files_only, str(err).strip().rstrip(".")) from err
    model.eval()
    return model, tokenizer


def load_base_tokenizer(name_or_path: str, *, revision: str | None = None):
    """The base model's tokenizer only (cheap: no weights), from the same folder `load_base_model` uses."""
    folder, _ = resolve_snapshot(name_or_path, revision=revision)
    return AutoTokenizer.from_pretrained(folder, local_files_only=True)


def describe_configured_model(name_or_path: str, *, revision: str | None, allow_download: bool) -> BaseModelInfo:
    """Resolve, validate (config and tokenizer load, weight files present) and
    fingerprint a model without loading its weights.
    """
    from transformers import AutoConfig

    folder, commit = resolve_snapshot(name_or_path, revision=revision, allow_download=allow_download)
    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
        AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        raise _not_available(
            name_or_path, revision, allow_download, f"{folder} is not a loadable model: {str(err).strip().rstrip('.')}"
        ) from err
    files = weight_files(folder)
    return BaseModelInfo(
        path=folder,
        kind="configured",
        name=name_or_path,
        revision=revision,
        weights_hash=weights_hash(folder),
        num_parameters=count_parameters(folder),
        note=f"{config.model_type} from {folder}",
        commit=commit,
        weight_files=tuple(files),
    )


def resolve_base_model(
    name_or_path: str | None,
    *,
    revision: str | None,
    output_dir: str,
    corpus_texts: Sequence[str],
    tiny_config: TinyModelSettings | None,
    allow_download: bool,
) -> BaseModelInfo:
    """The configured model (exact revision) or, when `tiny_config` is the explicit choice, the tiny local one.

    For a configured model, `output_dir` gets a pointer (base_model.json), not a
    copy: real checkpoints are gigabytes and already live in the HF cache or at
    their local path. The tiny model is saved in full to `output_dir`.
    """
    if name_or_path and tiny_config is not None:
        raise ValueError("configure either base_model.name_or_path or base_model.tiny, not both")
    if name_or_path:
        info = describe_configured_model(name_or_path, revision=revision, allow_download=allow_download)
    elif tiny_config is not None:
        info = build_local_base_model(corpus_texts, tiny_config, output_dir)
    else:
        raise ModelNotAvailableError(
            "no base model configured: set base_model.name_or_path to a Hugging Face id or local folder "
            "(with base_model.revision), or set base_model.tiny to build the tiny local LM on the corpus"
        )
    _write_info(info, output_dir)
    return info


def read_base_model_info(output_dir: str) -> BaseModelInfo:
    """Read the BaseModelInfo that `resolve_base_model` wrote into `output_dir`."""
    with open(os.path.join(output_dir, INFO_FILE), encoding="utf-8") as handle:
        raw = json.load(handle)
    return BaseModelInfo(**{**raw, "weight_files": tuple(raw.get("weight_files", ()))})


def _write_info(info: BaseModelInfo, output_dir: str) -> None:
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, INFO_FILE), "w", encoding="utf-8") as handle:
        json.dump(dataclasses.asdict(info), handle, indent=2)
