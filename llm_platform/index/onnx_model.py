"""The embedding model as ONNX Runtime graphs (int8 and fp32), exported offline and cached.

sentence-transformers' own `backend="onnx"` loads through optimum-onnx, whose only
release pins transformers < 4.58 while this project needs transformers 5, so the
export is done here with the libraries' own tools: `torch.onnx.export` of the whole
sentence-transformers pipeline (transformer, pooling, normalisation), ONNX Runtime's
transformer graph fusion, then `quantize_dynamic` (int8 weights, activations
quantised per batch). At run time only `tokenizers` and `onnxruntime` are used.

The fp32 graph is kept beside the int8 one: it computes what the torch model computes
(cosine > 0.99999), so a search embeds its query with it in a fraction of a second
instead of importing torch and sentence-transformers (about 10 s) for one vector.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from llm_platform.index.embedding_cache import STALE_PART_SECONDS, model_slug
from llm_platform.index.embedding_runtime import Runtime, unit_rows
from llm_platform.model_paths import resolve_sentence_transformer

EXPORT_VERSION = "2"  # bump when the export recipe changes; part of the cache folder name
QUANTIZED_FILE = "model_int8.onnx"
FP32_FILE = "model_fp32.onnx"
GRAPHS = {"int8": QUANTIZED_FILE, "fp32": FP32_FILE}
CACHE_ENV = "LLM_PLATFORM_ONNX_CACHE"


def default_cache_dir() -> Path:
    """$LLM_PLATFORM_ONNX_CACHE, else $XDG_CACHE_HOME (or ~/.cache)/llm_platform/onnx: one export per machine and model,
    like a hub cache.
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "llm_platform" / "onnx"


def _fingerprint(model_path: Path) -> str:
    """What identifies the weights without hashing hundreds of MB: config and file sizes."""
    digest = hashlib.sha256(EXPORT_VERSION.encode())
    for path in sorted(p for p in model_path.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(model_path)}:{path.stat().st_size}".encode())
        if path.suffix == ".json":
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def quantized_model_dir(
    model_id: str, *, cache_dir: str | os.PathLike[str] | None = None, allow_download: bool = False
) -> Path:
    """A folder holding the int8 and fp32 graphs and the tokenizer of `model_id`; exported on first use."""
    source, target = _export_folder(model_id, cache_dir, allow_download)
    root = target.parent
    if exported(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_exports(root)
    # Export into a private folder and rename it into place: a killed export leaves
    # only a dot-folder, and two processes exporting at once both end with one folder.
    work = root / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        export_quantized(source, work)
        try:
            work.rename(target)
        except OSError:
            if not exported(target):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def export_needed(
    model_id: str, *, cache_dir: str | os.PathLike[str] | None = None, allow_download: bool = False
) -> bool:
    """Whether the first use of `model_id`'s graphs will export them (tens of seconds) rather than load them."""
    return not exported(_export_folder(model_id, cache_dir, allow_download)[1])


def _export_folder(model_id: str, cache_dir: str | os.PathLike[str] | None, allow_download: bool) -> tuple[Path, Path]:
    """(the model's files, the folder its export lives in)."""
    source = Path(resolve_sentence_transformer(model_id, allow_download=allow_download))
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    return source, root / f"{model_slug(model_id)}-{_fingerprint(source)}"


def exported(folder: Path) -> bool:
    """Whether `folder` holds a finished export (it is renamed into place only when complete)."""
    return all((folder / name).is_file() for name in GRAPHS.values())


def _remove_stale_exports(root: Path) -> None:
    for folder in root.glob(".*.tmp"):
        if time.time() - folder.stat().st_mtime >= STALE_PART_SECONDS:
            shutil.rmtree(folder, ignore_errors=True)


def export_quantized(source: Path, folder: Path) -> None:
    """Write both graphs, the tokenizer and the sequence limit of the model at `source` into `folder`."""
    folder.mkdir(parents=True)
    fp32 = folder / FP32_FILE
    max_length = _export_fp32(source, fp32)
    fused = _fuse(fp32, source, folder / "model_fused.onnx")
    _quantize(fused, folder / QUANTIZED_FILE)
    for name in ("tokenizer.json",):
        shutil.copy2(source / name, folder / name)
    (folder / "embedding.json").write_text(
        json.dumps({"max_length": max_length, "source": str(source)}), encoding="utf-8"
    )
    if fused != fp32:
        fused.unlink(missing_ok=True)


def _export_fp32(source: Path, path: Path) -> int:
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(source), device="cpu").eval()
    sample = {
        k: v
        for k, v in model.preprocess(["a short text", "a somewhat longer text to pad against"]).items()
        if isinstance(v, torch.Tensor)
    }
    names = list(sample)

    class Pipeline(torch.nn.Module):
        """Transformer, pooling and normalisation as one graph with a tensor output."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(dict(zip(names, tensors, strict=False)))["sentence_embedding"]

    dynamic = {name: {0: "batch", 1: "sequence"} for name in names} | {"sentence_embedding": {0: "batch"}}
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter: its graphs are the ones ONNX Runtime's BERT fusion is written for.
        # torch calls it legacy and warns on every export; choosing it is deliberate, so that one warning is silenced.
        warnings.filterwarnings(
            "ignore", message="You are using the legacy TorchScript-based ONNX export", category=DeprecationWarning
        )
        # Tracing notes on Python conditionals (shape checks that hold for every input) and
        # on index lowering: a user running a search cannot act on them.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index operator", category=UserWarning)
        torch.onnx.export(
            Pipeline(),
            tuple(sample.values()),
            str(path),
            input_names=names,
            output_names=["sentence_embedding"],
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )
    if model.max_seq_length is None:  # int(None) raised this TypeError before; now it says which model
        raise TypeError(f"{source} reports no max_seq_length")
    return int(model.max_seq_length)


def _fuse(fp32: Path, source: Path, path: Path) -> Path:
    """LayerNorm and GELU (and attention, where the graph matches) fused into
    ONNX Runtime's kernels, for BERT-family models.
    """
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") not in {"bert", "roberta", "distilbert", "xlm-roberta", "mpnet"}:
        return fp32
    from onnxruntime.transformers import optimizer

    fused = optimizer.optimize_model(
        str(fp32),
        model_type="bert",
        num_heads=config.get("num_attention_heads", 0),
        hidden_size=config.get("hidden_size", 0),
        opt_level=0,
    )
    fused.save_model_to_file(str(path))
    return path


def _quantize(model: Path, path: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # onnxruntime's pre-processing advice goes to the root logger; the fusion above is our
    # pre-processing (its symbolic shape pass does not know the fused ops), so it is dropped.
    advice = _DropMessage("Please consider to run pre-processing before quantization")
    logging.getLogger().addFilter(advice)
    try:
        # Fused contrib ops have no ONNX shape inference; their outputs are float32.
        quantize_dynamic(
            str(model),
            str(path),
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        logging.getLogger().removeFilter(advice)


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


class OnnxEmbedder:
    """One exported graph (int8 or fp32) under ONNX Runtime on CPU;
    batches are formed longest first so they pad little.
    """

    def __init__(
        self,
        model_id: str,
        *,
        cache_dir: str | None = None,
        allow_download: bool = False,
        batch_size: int = 64,
        precision: str = "int8",
    ) -> None:
        import onnxruntime
        import tokenizers

        if precision not in GRAPHS:
            raise ValueError(f"no exported ONNX graph in precision {precision!r}; one of {', '.join(GRAPHS)}")
        folder = quantized_model_dir(model_id, cache_dir=cache_dir, allow_download=allow_download)
        settings = json.loads((folder / "embedding.json").read_text(encoding="utf-8"))
        self.model_id, self.batch_size, self.folder = model_id, batch_size, folder
        self.runtime = Runtime("onnx", "cpu", precision)
        self.tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.pad_id = int((self.tokenizer.padding or {}).get("pad_id", 0))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=settings["max_length"])
        options = onnxruntime.SessionOptions()
        # Idle workers spinning between batches burn CPU other steps on the machine could use.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(folder / GRAPHS[precision]), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = [node.name for node in self.session.get_inputs()]
        self.dimension = int(
            self.session.run(None, self._feed(self.tokenizer.encode_batch(["dimension probe"])))[0].shape[1]
        )

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self.session.run(None, self._feed([encodings[i] for i in rows]))[0]
        return unit_rows(out)

    def _feed(self, encodings: list) -> dict[str, np.ndarray]:
        width = max(len(e.ids) for e in encodings)
        columns = {
            "input_ids": [e.ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings],
            "token_type_ids": [e.type_ids for e in encodings],
        }
        feed = {}
        for name in self.inputs:
            matrix = np.full((len(encodings), width), self.pad_id if name == "input_ids" else 0, dtype=np.int64)
            for row, values in enumerate(columns[name]):
                matrix[row, : len(values)] = values
            feed[name] = matrix
        return feed
