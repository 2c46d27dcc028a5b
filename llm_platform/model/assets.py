"""lora_adapter, model_eval and production_model: train, score, and promote through gates.

One factory per asset, taking its op tags (model_eval also its typed gate checks and the
published index it reads); each asset's checks are declared just above it, and its work is
done by the helpers below it and the plain modules `records`, `gates` and `evaluation_run`.
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg
import pyarrow as pa

from llm_platform.config import PlatformConfig
from llm_platform.identity import stable_hash
from llm_platform.index.table import configured_table_name, open_published, published_version
from llm_platform.metadata import markdown_table
from llm_platform.model.datasets import (
    BASE_MODEL_DATA,
    LORA_ADAPTER_DATA,
    LORA_ADAPTER_PAIRS_DATA,
    MODEL_EVAL_DATA,
    PRODUCTION_MODEL_DATA,
    PROMPT_TEMPLATE_DATA,
    SFT_DATASET_DATA,
    SFT_EVAL_SPLIT_DATA,
)
from llm_platform.model.gates import GateCheck, GateResult, evaluate_gates, gate_checks
from llm_platform.model.prompts import PromptTemplate
from llm_platform.model.records import (
    LOSS_WINDOW,
    AdapterPlan,
    adapter_record,
    base_info,
    lineage_tags,
    mean,
    plan_adapter,
    promotion_tags,
    step_logger,
    template_of,
    training_params,
    training_request,
)
from llm_platform.model.registry import ADAPTER_ARTIFACT, registered_version
from llm_platform.model.sft_assets import BASE_MODEL, PROMPT_TEMPLATE, SFT_DATASET, SFT_EVAL_SPLIT
from llm_platform.model.skipped_eval_log import quiet_skipped_eval_warnings
from llm_platform.model.verdict import NOT_APPLIED_WITHOUT_PRODUCTION, Verdict
from llm_platform.resources.mlflow import MlflowResource
from llm_platform.resources.platform import PlatformConfigResource, StorageResource

if TYPE_CHECKING:
    from llm_platform.model.evaluation_run import EvalOutcome
    from llm_platform.model.training_request import TrainingRequest, TrainResult

LORA_ADAPTER = dg.AssetKey(LORA_ADAPTER_DATA.name)
MODEL_EVAL = dg.AssetKey(MODEL_EVAL_DATA.name)
PRODUCTION_MODEL = dg.AssetKey(PRODUCTION_MODEL_DATA.name)
GROUP = "model"
GPU_POOL = "gpu"
TRAINING_RETRY = dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL)
# MLflow servers and object stores fail transiently; a retried step resumes, it does not redo work.
MLFLOW_RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)
GATES_ARTIFACT = "evaluation/gates.json"


def configured_gate_checks(config: PlatformConfig) -> list[GateCheck]:
    """The blocking checks on model_eval: one typed check (metric and kind) per configured gate."""
    return gate_checks(config.gates.minimums, config.gates.beat_base)


def lora_adapter_asset(gpu_tags: dict) -> dg.AssetsDefinition:
    @dg.asset(
        group_name=GROUP,
        kinds={"pytorch", "mlflow"},
        deps=[SFT_DATASET, BASE_MODEL, PROMPT_TEMPLATE],
        op_tags=gpu_tags,
        pool=GPU_POOL,
        retry_policy=TRAINING_RETRY,
        output_required=False,
    )
    def lora_adapter(
        context: dg.AssetExecutionContext,
        platform: PlatformConfigResource,
        storage: StorageResource,
        mlflow: MlflowResource,
    ):
        """A LoRA adapter fine-tuned on sft_dataset over base_model with
        prompt_template; resumes from its last checkpoint on retry.
        """
        config = platform.config
        inputs = _training_inputs(storage)
        new = _new_pairs(storage, inputs.pair_hashes)
        changed = _changed_since_last_adapter(storage, inputs.base, inputs.template)
        if new < config.training.min_new_examples and not changed:
            _observe_skip(context, new, len(inputs.pair_hashes), config.training.min_new_examples)
            return
        if changed:
            context.log.info(f"training although only {new} pairs are new: {changed}")
        plan = plan_adapter(
            config,
            inputs.pairs.to_pylist(),
            inputs.base,
            inputs.template,
            sft_version=storage.datasets.current_version(SFT_DATASET_DATA, None),
            models_dir=storage.models_dir,
        )
        trained = _train_in_mlflow_run(context, config, mlflow, plan, new)
        version = storage.write_record(LORA_ADAPTER_DATA, trained.record, context.run.run_id)
        pairs = pa.table({"pair_hash": sorted(inputs.pair_hashes)})
        storage.datasets.write(LORA_ADAPTER_PAIRS_DATA, None, [pairs], pairs.schema, context.run.run_id)
        yield dg.MaterializeResult(
            data_version=dg.DataVersion(plan.fingerprint),
            metadata=_adapter_metadata(trained, version, new, len(plan.examples), mlflow.uri),
        )

    return lora_adapter


@dataclass(frozen=True)
class _TrainingInputs:
    pairs: pa.Table
    pair_hashes: set[str]
    base: dict
    template: PromptTemplate


@dataclass(frozen=True)
class _Trained:
    record: dict
    result: "TrainResult"


def _training_inputs(storage: StorageResource) -> _TrainingInputs:
    train = storage.datasets.read(SFT_DATASET_DATA, None)
    base = storage.read_record(BASE_MODEL_DATA)
    template = template_of(storage.read_record(PROMPT_TEMPLATE_DATA))
    if train is None:
        raise dg.Failure("sft_dataset has not been materialized; materialize it first")
    return _TrainingInputs(train, set(train.column("pair_hash").to_pylist()), base, template)


def _new_pairs(storage: StorageResource, hashes: set[str]) -> int:
    """How many training pairs the last adapter was not trained on."""
    earlier = storage.datasets.read(LORA_ADAPTER_PAIRS_DATA, None)
    return len(hashes - set(earlier.column("pair_hash").to_pylist() if earlier is not None else []))


def _changed_since_last_adapter(storage: StorageResource, base: dict, template: PromptTemplate) -> str | None:
    """Why the last adapter is stale whatever the data: another base model or prompt template; None if neither."""
    last = storage.datasets.read(LORA_ADAPTER_DATA, None)
    if last is None or last.num_rows == 0:
        return None
    row = last.to_pylist()[0]
    if row.get("prompt_template_version") != template.version:
        return f"prompt template {row.get('prompt_template_version')} -> {template.version}"
    if row.get("base_model_weights_hash") != base["weights_hash"]:
        return f"base model weights {row.get('base_model_weights_hash')} -> {base['weights_hash']}"
    return None


def _observe_skip(context: dg.AssetExecutionContext, new: int, pairs: int, minimum: int) -> None:
    note = (
        f"skipped: {new} new training pairs since the last adapter, fewer than training.min_new_examples={minimum}; "
        f"{minimum - new} more are needed (or lower training.min_new_examples). "
        "model_eval and production_model do not run; production is unchanged."
    )
    context.log.info(note)
    context.log_event(
        dg.AssetObservation(
            asset_key=LORA_ADAPTER, metadata={"note": note, "new_examples": new, "training_pairs": pairs}
        )
    )


def _train_in_mlflow_run(
    context: dg.AssetExecutionContext, config: PlatformConfig, mlflow: MlflowResource, plan: AdapterPlan, new: int
) -> _Trained:
    """Trains the adapter inside an MLflow run that holds its lineage, parameters, loss curve and packaged adapter."""
    from llm_platform.model.provenance import package_for_registry

    with mlflow.run(run_name=f"lora-{plan.fingerprint[:8]}", tags=lineage_tags(plan, context.run.run_id)) as run:
        run.log_params(training_params(plan, new))
        result, adapter_location = _train(config, plan, step_logger(plan, run.log_metric, context.log.info))
        # A resumed training is a new MLflow run; the steps restored from the checkpoint belong in its curve too.
        for step, loss in enumerate(result.losses[: result.resumed_from_step], start=1):
            run.log_metric("train_loss", loss, step=step)
        run.log_metrics(
            {"tokens_per_second": result.tokens_per_second, "final_loss": mean(result.losses[-LOSS_WINDOW:])}
        )
        package_for_registry(result.adapter_dir, base_info(plan.base))
        run.log_artifacts(result.adapter_dir, ADAPTER_ARTIFACT)
        return _Trained(adapter_record(plan, result, adapter_location, run.info.run_id), result)


def _train(
    config: PlatformConfig, plan: AdapterPlan, on_step: Callable[[int, float], None]
) -> tuple["TrainResult", str]:
    """(TrainResult, the adapter's storage location), trained in this step or on training.multi_node's machines."""
    request = training_request(plan)
    if config.training.multi_node is None:
        from llm_platform.model.stored_training import train_lora_stored

        return train_lora_stored(request, on_step)
    # the nodes share the storage root's volume (a job file outside it is refused)
    result = _train_on_nodes(config, request, plan.fingerprint, on_step)
    return result, result.adapter_dir


def _train_on_nodes(
    config: PlatformConfig, request: "TrainingRequest", fingerprint: str, on_step: Callable[[int, float], None]
) -> "TrainResult":
    """lora_adapter's training as a Kubeflow PyTorchJob over training.multi_node.num_nodes machines."""
    from llm_platform.model.pytorch_job import job_name, train_on_pytorch_job

    assert config.training.multi_node is not None  # lora_adapter trains on nodes only when it is set
    return train_on_pytorch_job(
        request, name=job_name(fingerprint), multi_node=config.training.multi_node, pod=config.gpu_pod, on_step=on_step
    )


def _adapter_metadata(trained: _Trained, version: str, new: int, examples: int, tracking_uri: str) -> dict:
    result = trained.result
    return {
        **{k: v for k, v in trained.record.items() if k != "prompt_text"},
        "record_version": version,
        "status": result.status,
        "resumed_from_step": result.resumed_from_step,
        "first_loss": mean(result.losses[:LOSS_WINDOW]),
        "training_pairs": examples,
        "new_pairs": new,
        "device": result.device,
        "dtype": result.dtype,
        "tokens_per_second": result.tokens_per_second,
        "seconds": result.seconds,
        "padding_share": result.padding_share,
        "num_processes": result.num_processes,
        "attention": result.attention,
        "mlflow_tracking_uri": tracking_uri,
        "losses": dg.MetadataValue.json([round(x, 4) for x in result.losses]),
    }


def _model_eval_check_specs(checks: Sequence[GateCheck]) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(check.name, asset=MODEL_EVAL, blocking=True, description=check.description)
        for check in checks
    ]


def model_eval_asset(
    gpu_tags: dict, checks: Sequence[GateCheck], published_index: dg.AssetsDefinition
) -> dg.AssetsDefinition:
    quiet_skipped_eval_warnings()

    @dg.asset(
        group_name=GROUP,
        kinds={"pytorch", "mlflow"},
        deps=[LORA_ADAPTER, SFT_EVAL_SPLIT, BASE_MODEL, PROMPT_TEMPLATE, published_index],
        op_tags=gpu_tags,
        pool=GPU_POOL,
        retry_policy=MLFLOW_RETRY,
        check_specs=_model_eval_check_specs(checks),
    )
    def model_eval(
        context: dg.AssetExecutionContext,
        platform: PlatformConfigResource,
        storage: StorageResource,
        mlflow: MlflowResource,
    ) -> dg.MaterializeResult:
        """The upstream adapter, the base model and production (from the MLflow registry) scored
        on sft_eval_split, plain and with chunks from the served index.
        """
        from llm_platform.model.evaluation_run import evaluate_models

        config = platform.config
        adapter = storage.read_record(LORA_ADAPTER_DATA)
        template = _adapter_template(adapter, storage)
        pairs = _eval_pairs(storage, config.evaluation.max_examples)
        table, index_version = _served_index(config, storage)
        production_version = registered_version(mlflow, mlflow.registered_model)
        outcome = evaluate_models(
            config,
            adapter,
            template,
            pairs,
            table,
            mlflow=mlflow,
            production_version=production_version,
            log=context.log.info,
        )
        gates = _gates(config, outcome.scores, outcome.scores.get("production"))
        verdict = Verdict.of(gates, checks)
        context.log.info(f"gates: {verdict.summary()}")
        with mlflow.run(
            run_name="", tags={"evaluated_by_dagster_run": context.run.run_id}, run_id=adapter["mlflow_run_id"]
        ) as run:
            run.log_metrics({f"eval_{k}": v for k, v in outcome.scores["candidate"].items()})
            _log_verdict(run, verdict)
        record = _eval_record(
            storage, adapter, outcome, len(pairs), table.name, index_version, production_version, gates
        )
        storage.write_record(MODEL_EVAL_DATA, record, context.run.run_id)
        return dg.MaterializeResult(
            data_version=dg.DataVersion(
                stable_hash(record["scores"], adapter["fingerprint"], str(index_version), template.version)
            ),
            metadata={**_eval_metadata(record, outcome, pairs), **_verdict_metadata(verdict)},
            check_results=_gate_check_results(gates, checks),
        )

    return model_eval


def _adapter_template(adapter: dict, storage: StorageResource) -> PromptTemplate:
    """The template the adapter was trained with, refused if prompt_template has moved on since."""
    template = template_of(
        {"kind": adapter["prompt_kind"], "text": adapter["prompt_text"], "version": adapter["prompt_template_version"]}
    )
    current = storage.read_record(PROMPT_TEMPLATE_DATA)["version"]
    if current != template.version:
        raise dg.Failure(
            f"prompt_template is now {current} but lora_adapter was trained with "
            f"{template.version}; re-materialize lora_adapter",
            allow_retries=False,
        )
    return template


def _eval_pairs(storage: StorageResource, max_examples: int) -> list[tuple[str, str]]:
    eval_rows = (storage.datasets.read(SFT_EVAL_SPLIT_DATA, None) or pa.table({})).to_pylist()[:max_examples]
    if not eval_rows:
        raise dg.Failure(
            "sft_eval_split is empty: add curated pairs or lower sft.eval_fraction's hash threshold",
            allow_retries=False,
        )
    return [(r["instruction"], r["response"]) for r in eval_rows]


def _served_index(config: PlatformConfig, storage: StorageResource):
    """The index table as the service reads it (at the published tag) and that version."""
    try:
        table = open_published(storage.lancedb(), configured_table_name(config), config.index.published_tag)
    except (LookupError, FileNotFoundError, ValueError) as err:
        raise dg.Failure(
            f"model_eval scores retrieval-augmented answers from the served index, which is not there: {err}",
            allow_retries=False,
        ) from None
    return table, published_version(table, config.index.published_tag)


def _gates(config: PlatformConfig, scores: dict, production: dict | None) -> list[GateResult]:
    return evaluate_gates(
        scores["candidate"],
        production,
        minimums=config.gates.minimums,
        max_regression=config.gates.max_regression,
        base=scores.get("base"),
        beat_base=config.gates.beat_base,
    )


def _eval_record(
    storage: StorageResource,
    adapter: dict,
    outcome: "EvalOutcome",
    examples: int,
    index_table: str,
    index_version,
    production_version: str | None,
    gates: list[GateResult],
) -> dict:
    from llm_platform.model.provenance import code_version

    return {
        "adapter_record": storage.datasets.current_version(LORA_ADAPTER_DATA, None),
        "adapter_fingerprint": adapter["fingerprint"],
        "mlflow_run_id": adapter["mlflow_run_id"],
        "adapter_dir": adapter["adapter_dir"],
        "scores": json.dumps(outcome.scores),
        "eval_split_version": storage.datasets.current_version(SFT_EVAL_SPLIT_DATA, None),
        "eval_examples": examples,
        "index_table": index_table,
        "index_version": index_version,
        "prompt_template_version": adapter["prompt_template_version"],
        "device": outcome.device,
        "production_version": production_version,
        "gates": json.dumps([g.as_record() for g in gates]),
        **code_version(),
    }


def _eval_metadata(record: dict, outcome: "EvalOutcome", pairs: list[tuple[str, str]]) -> dict:
    scores = outcome.scores
    metrics = sorted({m for s in scores.values() for m in s})
    table_rows = [
        {"metric": m, **{name: round(s.get(m, float("nan")), 4) for name, s in scores.items()}} for m in metrics
    ]
    samples = [
        {"question": q, "reference": a, "candidate": c, "candidate_rag": r}
        for (q, a), c, r in zip(pairs, outcome.answers["plain"], outcome.answers["rag"], strict=False)
    ]
    return {
        "scores": markdown_table(table_rows, ["metric", *scores], limit=len(table_rows)),
        "examples": len(pairs),
        "evaluated_adapter": record["adapter_dir"],
        "mlflow_run_id": record["mlflow_run_id"],
        "production_version": record["production_version"] or "none",
        "eval_split_version": record["eval_split_version"],
        "index_version": record["index_version"],
        "prompt_template_version": record["prompt_template_version"],
        "device": outcome.device,
        "package_version": record["package_version"],
        "git_commit": record["git_commit"],
        "answers_preview": markdown_table(samples, ["question", "reference", "candidate", "candidate_rag"]),
        **{f"candidate_{k}": v for k, v in scores["candidate"].items()},
        **{f"base_{k}": v for k, v in scores["base"].items()},
    }


def _log_verdict(run, verdict: Verdict) -> None:
    """The verdict on the adapter's MLflow run: pass/fail and the sentence as
    tags, every gate's row as evaluation/gates.json.
    """
    # MLflow caps a tag value at 5000 characters; the JSON artifact holds the whole verdict.
    run.set_tags({"gates_passed": str(verdict.passed).lower(), "gate_verdict": verdict.summary()[:5000]})
    run.log_dict(verdict.as_json(), GATES_ARTIFACT)


def _verdict_metadata(verdict: Verdict) -> dict:
    rows = verdict.rows()
    return {
        "verdict": verdict.summary(),
        "gates_passed": verdict.passed,
        "gates": markdown_table(
            rows, ["gate", "result", "candidate", "bound", "compared_with", "detail"], limit=len(rows)
        ),
    }


def _gate_check_results(gates: list[GateResult], checks: Sequence[GateCheck]) -> list[dg.AssetCheckResult]:
    """One result per declared check: Dagster fails a step that leaves a declared check without one."""
    by_check = {gate.check: _gate_check_result(gate) for gate in gates}
    return [
        by_check.get(check)
        or dg.AssetCheckResult(check_name=check.name, passed=True, description=NOT_APPLIED_WITHOUT_PRODUCTION)
        for check in checks
    ]


def _gate_check_result(gate: GateResult) -> dg.AssetCheckResult:
    compared = {gate.compared_with: gate.baseline} if gate.compared_with else {}
    return dg.AssetCheckResult(
        check_name=gate.check.name,
        passed=gate.passed,
        description=gate.message,
        metadata={"candidate": gate.value, gate.bound_label: gate.minimum, **compared},
    )


def production_model_asset(cpu_tags: dict) -> dg.AssetsDefinition:
    @dg.asset(group_name=GROUP, kinds={"mlflow"}, deps=[MODEL_EVAL], op_tags=cpu_tags, retry_policy=MLFLOW_RETRY)
    def production_model(
        context: dg.AssetExecutionContext,
        platform: PlatformConfigResource,
        storage: StorageResource,
        mlflow: MlflowResource,
    ) -> dg.MaterializeResult:
        """The MLflow registered version under the `production` alias, moved only when every gate passed."""
        config = platform.config
        evaluated = storage.read_record(MODEL_EVAL_DATA)
        adapter = storage.read_record(LORA_ADAPTER_DATA)
        scores = json.loads(evaluated["scores"])
        current = registered_version(mlflow, mlflow.registered_model)
        _refuse_unless_gates_pass(config, scores, evaluated, current)
        tags = promotion_tags(adapter, evaluated, scores, context.run.run_id)
        version = mlflow.promote(run_id=evaluated["mlflow_run_id"], artifact_path=ADAPTER_ARTIFACT, tags=tags)
        storage.write_record(PRODUCTION_MODEL_DATA, {"registered_version": str(version), **tags}, context.run.run_id)
        context.log.info(f"{mlflow.registered_model} version {version} is now 'production' (was {current or 'none'})")
        return dg.MaterializeResult(
            data_version=dg.DataVersion(f"{mlflow.registered_model}/{version}"),
            metadata={
                "registered_model": mlflow.registered_model,
                "version": str(version),
                "previous_version": current or "none",
                "adapter_dir": evaluated["adapter_dir"],
                "mlflow_run_id": evaluated["mlflow_run_id"],
                "tracking_uri": mlflow.uri,
                "prompt_template_version": adapter["prompt_template_version"],
                "base_model_commit": adapter["base_model_commit"] or "",
            },
        )

    return production_model


def _refuse_unless_gates_pass(config: PlatformConfig, scores: dict, evaluated: dict, current: str | None) -> None:
    """Fails unless every gate passes against the production version
    model_eval compared with (which must still be production).
    """
    baseline = scores.get("production") if current is not None and current == evaluated["production_version"] else None
    if current is not None and baseline is None:
        raise dg.Failure(
            f"production moved to version {current} after model_eval ran; re-materialize model_eval before promoting"
        )
    failed = [g.message for g in _gates(config, scores, baseline) if not g.passed]
    if failed:
        raise dg.Failure("not promoting; production is unchanged: " + "; ".join(failed))
