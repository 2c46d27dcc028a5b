"""One model_eval pass: base, candidate and production scored the same way on the training device.

Production comes from the MLflow registry (the alias's artifacts), never from
paths on the machine that trained it, so evaluation works in any pod.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llm_platform.config import PlatformConfig
from llm_platform.model.prompts import PromptTemplate


@dataclass(frozen=True)
class EvalOutcome:
    scores: dict[str, dict[str, float]]
    answers: dict[str, list[str]]  # the candidate's "plain" and "rag" answers
    device: str


def _contexts(config: PlatformConfig, table, questions: Sequence[str]) -> list[list[str]]:
    from llm_platform.index.embedding import configured_embedder
    from llm_platform.model.model_scoring import retrieved_contexts

    embedder = configured_embedder(config.embedding)  # the chunks' backend: one vector space
    return retrieved_contexts(
        table, questions, embedder.encode, k=config.evaluation.rag_k, max_chars=config.evaluation.rag_context_chars
    )


def evaluate_models(
    config: PlatformConfig,
    adapter: dict,
    template: PromptTemplate,
    pairs: Sequence[tuple[str, str]],
    table,
    *,
    mlflow,
    production_version: str | None,
    log: Callable[[str], None],
) -> EvalOutcome:
    """Scores per model ("base", "candidate" and, when there is one,
    "production"), each loaded, scored and released in turn.
    """
    import torch

    from llm_platform.model.base_model import load_base_model
    from llm_platform.model.loop import select_device
    from llm_platform.model.model_scoring import generation_scores
    from llm_platform.model.registry import load_registered_adapter
    from llm_platform.model.training import load_adapter

    device, dtype = select_device(config.training.device)
    contexts = _contexts(config, table, [q for q, _ in pairs])
    from llm_platform.storage_files import local_path

    source, revision = local_path(adapter["base_model_path"]), adapter["base_model_commit"]
    models = {
        "base": lambda: (*load_base_model(source, revision=revision, torch_dtype=dtype), template),
        "candidate": lambda: (
            *load_adapter(source, local_path(adapter["adapter_dir"]), revision=revision, torch_dtype=dtype),
            template,
        ),
    }
    if production_version is not None:

        def production():
            loaded = load_registered_adapter(mlflow, mlflow.registered_model, device=config.training.device)
            return loaded.model, loaded.tokenizer, loaded.prompt_template

        models["production"] = production
    scores, answers = {}, {}
    for name, load in models.items():
        model, tokenizer, prompt = load()
        model.to(device)
        scores[name], found = generation_scores(
            model,
            tokenizer,
            pairs,
            max_length=config.training.max_length,
            max_new_tokens=config.evaluation.max_new_tokens,
            template=prompt,
            contexts=contexts,
            batch_size=config.evaluation.batch_size,
        )
        if name == "candidate":
            answers = found
        log(f"{name} on {device.type}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores[name].items()))
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return EvalOutcome(scores, answers, device.type)
