"""What the demo and the service say first when they answer with the tiny LM: it is a toy for wiring."""

from __future__ import annotations

from llm_platform.config import PlatformConfig

REAL_BASE_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"


def tiny_model_notice(config: PlatformConfig) -> str | None:
    """The notice when `config` chooses `base_model.tiny`, else None."""
    if config.base_model.tiny is None:
        return None
    return (
        "llm_platform: the base model is the tiny demo LM (base_model.tiny, a small Llama trained on the corpus): "
        "a toy that shows the pipeline works end to end, not a model whose answers mean anything.\n"
        f"  For real answers, in {config.config_path or 'your config'} replace base_model with:\n"
        f"    base_model: {{name_or_path: {REAL_BASE_MODEL}, revision: <commit or tag>}}\n"
        "  On an offline cluster, fetch it once into the shared Hugging Face cache (a volume) and keep downloads off:\n"
        f"    HF_HOME=/data/hf-cache hf download {REAL_BASE_MODEL} --revision <commit or tag>"
        "   # older hub clients: huggingface-cli download\n"
        "    base_model: {..., allow_download: false}"
        "   # the default: a missing model fails base_model, never a silent download"
    )
