"""What an adapter is trained from and what the model assets store about it.

The stored base_model and prompt_template rows read back as typed values, the plan
of one training (its fingerprint, examples and folder), and the tags and records
that trace an adapter and a promotion back to their inputs. Plain Python, so the
Dagster module only reads, calls and writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llm_platform.identity import stable_hash
from llm_platform.model.prompts import PromptTemplate
from llm_platform.model.registry import TINY_LOCAL
from llm_platform.model.training_request import training_record

if TYPE_CHECKING:
    from llm_platform.config import PlatformConfig, TrainingSettings
    from llm_platform.model.base_model import BaseModelInfo
    from llm_platform.model.training_request import TrainingRequest, TrainResult

# Single-step losses are noisy; first/final loss in metadata are means over this many steps.
LOSS_WINDOW = 10


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def template_of(record: dict) -> PromptTemplate:
    """A prompt_template row (kind, text, version) as the template it stores."""
    return PromptTemplate(record["kind"], record["text"], record["version"])


def base_source(base: dict) -> str:
    """What `load_base_model` gets: the tiny LM's folder, or a configured model's id (with its commit as revision)."""
    return base["path"] if base["kind"] == TINY_LOCAL else base["name"]


def base_info(record: dict) -> BaseModelInfo:
    from llm_platform.model.base_model import BaseModelInfo

    # A base_model row as stored: its columns are BaseModelInfo's fields.
    fields: dict[str, Any] = {
        f: record.get(f)
        for f in ("path", "kind", "name", "revision", "weights_hash", "num_parameters", "note", "commit")
    }
    return BaseModelInfo(**fields, weight_files=tuple(filter(None, (record.get("weight_files") or "").split(","))))


@dataclass(frozen=True)
class AdapterPlan:
    """One training of lora_adapter: its inputs, and the fingerprint that
    names its folder and its resumable checkpoints.
    """

    training: TrainingSettings
    examples: list[tuple[str, str]]
    base: dict
    template: PromptTemplate
    sft_version: str | None
    fingerprint: str
    output_dir: str


def plan_adapter(
    config: PlatformConfig,
    rows: list[dict],
    base: dict,
    template: PromptTemplate,
    *,
    sft_version: str | None,
    models_dir: str,
) -> AdapterPlan:
    """The training of `rows` (sft_dataset) over `base` with `template`, in a
    folder named by everything that shapes the adapter.
    """
    training = config.training
    fingerprint = stable_hash(
        sft_version or "",
        base["weights_hash"],
        template.version,
        json.dumps(training_record(training), sort_keys=True, default=str),
    )
    return AdapterPlan(
        training=training,
        examples=[(r["instruction"], r["response"]) for r in rows],
        base=base,
        template=template,
        sft_version=sft_version,
        fingerprint=fingerprint,
        output_dir=f"{models_dir}/adapters/{fingerprint[:16]}",
    )


def training_request(plan: AdapterPlan) -> TrainingRequest:
    """The training `plan` describes, its base model and output folder as storage locations."""
    from llm_platform.model.training_request import TrainingRequest

    return TrainingRequest(
        base_model_dir=base_source(plan.base),
        examples=plan.examples,
        config=plan.training,
        output_dir=plan.output_dir,
        prompt_template=plan.template,
        base_revision=plan.base.get("commit"),
    )


def lineage_tags(plan: AdapterPlan, dagster_run_id: str) -> dict[str, str]:
    """The MLflow run's tags: the exact data, base model and prompt the adapter comes from."""
    base, template = plan.base, plan.template
    return {
        "dagster_run_id": dagster_run_id,
        "sft_dataset_version": plan.sft_version or "",
        "base_model": base["name"],
        "base_model_kind": base["kind"],
        "base_model_weights_hash": base["weights_hash"],
        "base_model_revision": base.get("revision") or "",
        "base_model_commit": base.get("commit") or "",
        "prompt_template_version": template.version,
        "prompt_template_kind": template.kind,
    }


def training_params(plan: AdapterPlan, new_pairs: int) -> dict[str, Any]:
    training = plan.training
    return {
        **training_record(training),
        "target_modules": ",".join(training.target_modules),
        "train_pairs": len(plan.examples),
        "new_pairs": new_pairs,
    }


def step_logger(
    plan: AdapterPlan, log_metric: Callable[..., None], log: Callable[[str], None]
) -> Callable[[int, float], None]:
    """Logs every step's loss as a metric, and about ten of them as lines."""
    training = plan.training
    log_every = max(1, -(-len(plan.examples) // training.batch_size) * training.epochs // 10)

    def on_step(step: int, loss: float) -> None:
        log_metric("train_loss", loss, step=step)
        if step % log_every == 0:
            log(f"step {step}: loss {loss:.4f}")

    return on_step


def adapter_record(plan: AdapterPlan, result: TrainResult, adapter_location: str, mlflow_run_id: str) -> dict[str, Any]:
    """The lora_adapter row: where the adapter is, its MLflow run, and what it was trained from."""
    base, template = plan.base, plan.template
    return {
        "adapter_dir": adapter_location,
        "fingerprint": plan.fingerprint,
        "mlflow_run_id": mlflow_run_id,
        "sft_dataset_version": plan.sft_version,
        "base_model": base["name"],
        "base_model_path": base_source(base),
        "base_model_commit": base.get("commit"),
        "base_model_weights_hash": base["weights_hash"],
        "prompt_template_version": template.version,
        "prompt_kind": template.kind,
        "prompt_text": template.text,
        "steps": result.steps,
        "final_loss": mean(result.losses[-LOSS_WINDOW:]),
    }


def promotion_tags(adapter: dict, evaluated: dict, scores: dict, dagster_run_id: str) -> dict[str, str]:
    """The registered version's tags: the adapter's inputs, its evaluation, and the candidate's scores."""
    return {
        "base_model": adapter["base_model"],
        "base_model_commit": adapter["base_model_commit"] or "",
        "base_model_weights_hash": adapter["base_model_weights_hash"],
        "prompt_template_version": adapter["prompt_template_version"],
        "adapter_fingerprint": adapter["fingerprint"],
        "dagster_run_id": dagster_run_id,
        "eval_split_version": evaluated["eval_split_version"] or "",
        "index_version": str(evaluated["index_version"]),
        **{f"eval_{k}": f"{v:.6f}" for k, v in scores["candidate"].items()},
    }
