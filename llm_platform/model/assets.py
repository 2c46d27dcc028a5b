"""lora_adapter, model_eval and production_model: train, score, and promote through gates."""

import json
from typing import TYPE_CHECKING, Any

import dagster as dg
import pyarrow as pa

from llm_platform.config import PlatformConfig
from llm_platform.identity import stable_hash
from llm_platform.index.table import configured_table_name, open_published, published_version
from llm_platform.metadata import gate_checks, markdown_table
from llm_platform.model.gates import GateResult, evaluate_gates
from llm_platform.model.prompts import PromptTemplate
from llm_platform.model.registry import ADAPTER_ARTIFACT, TINY_LOCAL, registered_version
from llm_platform.resources.mlflow import MlflowResource
from llm_platform.resources.platform import PlatformConfigResource, StorageResource

if TYPE_CHECKING:
    from llm_platform.model.base_model import BaseModelInfo
    from llm_platform.model.training import LoraTrainingConfig

GPU_POOL = "gpu"
# Single-step losses are noisy; first/final loss in metadata are means over this many steps.
LOSS_WINDOW = 10
# MLflow servers and object stores fail transiently; a retried step resumes, it does not redo work.
MLFLOW_RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)


def gate_check_names(config: PlatformConfig) -> list[str]:
    """The blocking checks on model_eval: typed gate checks (metric and kind) from the configured gates."""
    return [check.name for check in gate_checks(config.gates.minimums, config.gates.beat_base)]


def _check_name(gate_name: str) -> str:
    metric = gate_name.split("<=")[0].split(">=")[0]
    return gate_name if gate_name.endswith(("_no_regression", "_beats_base")) else f"{metric}_bound"


def _gate_check_results(gates: list[GateResult], gate_checks: list[str]) -> list[dg.AssetCheckResult]:
    """One result per declared check: Dagster fails a step that leaves a declared check without one."""
    by_name = {_check_name(g.metric): dg.AssetCheckResult(check_name=_check_name(g.metric), passed=g.passed, description=g.message,
                                                          metadata={"value": g.value, "bound": g.minimum, "production": g.baseline}) for g in gates}
    first = "no production model yet; nothing to regress from"
    return [by_name.get(name) or dg.AssetCheckResult(check_name=name, passed=True, description=first) for name in gate_checks]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _training_config(config: PlatformConfig) -> "LoraTrainingConfig":
    from llm_platform.model.training import LoraTrainingConfig

    settings = config.training.model_dump(exclude={"min_new_examples", "multi_node"})
    return LoraTrainingConfig(**{**settings, "target_modules": tuple(settings["target_modules"])})


def _template(record: dict) -> PromptTemplate:
    return PromptTemplate(record["kind"], record["text"], record["version"])


def _base_source(base: dict) -> str:
    """What `load_base_model` gets: the tiny LM's folder, or a configured model's id (with its commit as revision)."""
    return base["path"] if base["kind"] == TINY_LOCAL else base["name"]


def _base_info(record: dict) -> "BaseModelInfo":
    from llm_platform.model.base_model import BaseModelInfo

    # A base_model row as stored: its columns are BaseModelInfo's fields.
    fields: dict[str, Any] = {f: record.get(f) for f in ("path", "kind", "name", "revision", "weights_hash", "num_parameters", "note", "commit")}
    return BaseModelInfo(**fields, weight_files=tuple(filter(None, (record.get("weight_files") or "").split(","))))


def _changed_since_last_adapter(storage: StorageResource, base: dict, template: PromptTemplate) -> str | None:
    """Why the last adapter is stale whatever the data: another base model or prompt template; None if neither."""
    last = storage.datasets.read("lora_adapter", None)
    if last is None or last.num_rows == 0:
        return None
    row = last.to_pylist()[0]
    if row.get("prompt_template_version") != template.version:
        return f"prompt template {row.get('prompt_template_version')} -> {template.version}"
    if row.get("base_model_weights_hash") != base["weights_hash"]:
        return f"base model weights {row.get('base_model_weights_hash')} -> {base['weights_hash']}"
    return None


def _gates(config: PlatformConfig, scores: dict, production: dict | None) -> list[GateResult]:
    return evaluate_gates(scores["candidate"], production, minimums=config.gates.minimums, max_regression=config.gates.max_regression,
                          base=scores.get("base"), beat_base=config.gates.beat_base)


def _train_on_nodes(config: PlatformConfig, training: "LoraTrainingConfig", base_path: str, examples: list, output_dir: str, fingerprint: str, on_step,
                    template: PromptTemplate, base_revision: str | None):
    """lora_adapter's training as a Kubeflow PyTorchJob over training.multi_node.num_nodes machines."""
    from llm_platform.model.pytorch_job import job_name, train_on_pytorch_job

    assert config.training.multi_node is not None  # lora_adapter trains on nodes only when it is set
    return train_on_pytorch_job(base_model_dir=base_path, examples=examples, config=training, output_dir=output_dir,
                                name=job_name(fingerprint), multi_node=config.training.multi_node, pod=config.gpu_pod, on_step=on_step,
                                prompt_template=template, base_revision=base_revision)


def build_training_assets(gpu_tags: dict, cpu_tags: dict, gate_checks: list[str]) -> list[dg.AssetsDefinition]:
    """The three model assets; GPU steps carry `gpu_tags` and share the `gpu` pool."""

    @dg.asset(
        group_name="model", kinds={"pytorch", "mlflow"}, deps=["sft_dataset", "base_model", "prompt_template"], op_tags=gpu_tags, pool=GPU_POOL,
        retry_policy=dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL), output_required=False,
    )
    def lora_adapter(context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource, mlflow: MlflowResource):
        """A LoRA adapter fine-tuned on sft_dataset over base_model with prompt_template; resumes from its last checkpoint on retry."""
        config = platform.config
        train = storage.datasets.read("sft_dataset", None)
        base = storage.read_record("base_model")
        template = _template(storage.read_record("prompt_template"))
        if train is None:
            raise dg.Failure("sft_dataset has not been materialized; materialize it first")
        hashes = set(train.column("pair_hash").to_pylist())
        earlier = storage.datasets.read("lora_adapter_pairs", None)
        new = len(hashes - set(earlier.column("pair_hash").to_pylist() if earlier is not None else []))
        changed = _changed_since_last_adapter(storage, base, template)
        if new < config.training.min_new_examples and not changed:
            note = f"skipped: {new} new training pairs since the last adapter, fewer than training.min_new_examples={config.training.min_new_examples}"
            context.log.info(note)
            context.log_event(dg.AssetObservation(asset_key="lora_adapter", metadata={"note": note, "new_examples": new, "training_pairs": len(hashes)}))
            return
        if changed:
            context.log.info(f"training although only {new} pairs are new: {changed}")
        sft_version = storage.datasets.current_version("sft_dataset", None)
        training = _training_config(config)
        fingerprint = stable_hash(sft_version or "", base["weights_hash"], template.version, json.dumps(training.__dict__, sort_keys=True, default=str))
        output_dir = f"{storage.models_dir}/adapters/{fingerprint[:16]}"
        examples = [(r["instruction"], r["response"]) for r in train.to_pylist()]
        lineage = {"dagster_run_id": context.run.run_id, "sft_dataset_version": sft_version or "", "base_model": base["name"], "base_model_kind": base["kind"],
                   "base_model_weights_hash": base["weights_hash"], "base_model_revision": base.get("revision") or "", "base_model_commit": base.get("commit") or "",
                   "prompt_template_version": template.version, "prompt_template_kind": template.kind}
        with mlflow.run(run_name=f"lora-{fingerprint[:8]}", tags=lineage) as run:
            run.log_params({**training.__dict__, "target_modules": ",".join(training.target_modules), "train_pairs": len(examples), "new_pairs": new})
            log_every = max(1, -(-len(examples) // training.batch_size) * training.epochs // 10)

            def on_step(step: int, loss: float) -> None:
                run.log_metric("train_loss", loss, step=step)
                if step % log_every == 0:
                    context.log.info(f"step {step}: loss {loss:.4f}")

            from llm_platform.model.provenance import package_for_registry

            if config.training.multi_node is None:
                from llm_platform.model.stored_training import train_lora_stored

                result, adapter_location = train_lora_stored(base_model=_base_source(base), examples=examples, config=training, output_url=output_dir,
                                                             on_step=on_step, prompt_template=template, base_revision=base.get("commit"))
            else:  # the nodes share the storage root's volume (a job file outside it is refused)
                result = _train_on_nodes(config, training, _base_source(base), examples, output_dir, fingerprint, on_step, template, base.get("commit"))
                adapter_location = result.adapter_dir
            # A resumed training is a new MLflow run; the steps restored from the checkpoint belong in its curve too.
            for step, loss in enumerate(result.losses[: result.resumed_from_step], start=1):
                run.log_metric("train_loss", loss, step=step)
            run.log_metrics({"tokens_per_second": result.tokens_per_second, "final_loss": _mean(result.losses[-LOSS_WINDOW:])})
            package_for_registry(result.adapter_dir, _base_info(base))
            run.log_artifacts(result.adapter_dir, ADAPTER_ARTIFACT)
            run_id = run.info.run_id
        record = {"adapter_dir": adapter_location, "fingerprint": fingerprint, "mlflow_run_id": run_id, "sft_dataset_version": sft_version,
                  "base_model": base["name"], "base_model_path": _base_source(base), "base_model_commit": base.get("commit"), "base_model_weights_hash": base["weights_hash"],
                  "prompt_template_version": template.version, "prompt_kind": template.kind, "prompt_text": template.text,
                  "steps": result.steps, "final_loss": _mean(result.losses[-LOSS_WINDOW:])}
        version = storage.write_record("lora_adapter", record, context.run.run_id)
        pairs = pa.table({"pair_hash": sorted(hashes)})
        storage.datasets.write("lora_adapter_pairs", None, [pairs], pairs.schema, context.run.run_id)
        yield dg.MaterializeResult(
            data_version=dg.DataVersion(fingerprint),
            metadata={**{k: v for k, v in record.items() if k != "prompt_text"}, "record_version": version, "status": result.status,
                      "resumed_from_step": result.resumed_from_step, "first_loss": _mean(result.losses[:LOSS_WINDOW]), "training_pairs": len(examples), "new_pairs": new,
                      "device": result.device, "dtype": result.dtype, "tokens_per_second": result.tokens_per_second, "seconds": result.seconds,
                      "padding_share": result.padding_share, "num_processes": result.num_processes, "attention": result.attention,
                      "mlflow_tracking_uri": mlflow.uri, "losses": dg.MetadataValue.json([round(x, 4) for x in result.losses])},
        )

    @dg.asset(
        group_name="model", kinds={"pytorch", "mlflow"}, deps=[lora_adapter, "sft_eval_split", "base_model", "prompt_template", "published_index"],
        op_tags=gpu_tags, pool=GPU_POOL, retry_policy=MLFLOW_RETRY,
        check_specs=[dg.AssetCheckSpec(name, asset="model_eval", blocking=True) for name in gate_checks],
    )
    def model_eval(context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource, mlflow: MlflowResource) -> dg.MaterializeResult:
        """The upstream adapter, the base model and production (from the MLflow registry) scored on sft_eval_split, plain and with chunks from the served index."""
        from llm_platform.model.evaluation_run import evaluate_models
        from llm_platform.model.provenance import code_version

        config = platform.config
        adapter = storage.read_record("lora_adapter")
        template = _template({"kind": adapter["prompt_kind"], "text": adapter["prompt_text"], "version": adapter["prompt_template_version"]})
        current = storage.read_record("prompt_template")["version"]
        if current != template.version:
            raise dg.Failure(f"prompt_template is now {current} but lora_adapter was trained with {template.version}; re-materialize lora_adapter", allow_retries=False)
        eval_rows = (storage.datasets.read("sft_eval_split", None) or pa.table({})).to_pylist()[: config.evaluation.max_examples]
        if not eval_rows:
            raise dg.Failure("sft_eval_split is empty: add curated pairs or lower sft.eval_fraction's hash threshold", allow_retries=False)
        pairs = [(r["instruction"], r["response"]) for r in eval_rows]
        table, index_version = _served_index(config, storage)
        production_version = registered_version(mlflow, mlflow.registered_model)
        outcome = evaluate_models(config, adapter, template, pairs, table, mlflow=mlflow, production_version=production_version, log=context.log.info)
        scores = outcome.scores
        gates = _gates(config, scores, scores.get("production"))
        with mlflow.run(run_name="", tags={"evaluated_by_dagster_run": context.run.run_id}, run_id=adapter["mlflow_run_id"]) as run:
            run.log_metrics({f"eval_{k}": v for k, v in scores["candidate"].items()})
        record = {"adapter_record": storage.datasets.current_version("lora_adapter", None), "adapter_fingerprint": adapter["fingerprint"],
                  "mlflow_run_id": adapter["mlflow_run_id"], "adapter_dir": adapter["adapter_dir"], "scores": json.dumps(scores),
                  "eval_split_version": storage.datasets.current_version("sft_eval_split", None), "eval_examples": len(pairs),
                  "index_table": table.name, "index_version": index_version, "prompt_template_version": template.version, "device": outcome.device,
                  "production_version": production_version, "gates": json.dumps([g.__dict__ for g in gates]), **code_version()}
        storage.write_record("model_eval", record, context.run.run_id)
        metrics = sorted({m for s in scores.values() for m in s})
        table_rows = [{"metric": m, **{name: round(s.get(m, float("nan")), 4) for name, s in scores.items()}} for m in metrics]
        samples = [{"question": q, "reference": a, "candidate": c, "candidate_rag": r}
                   for (q, a), c, r in zip(pairs, outcome.answers["plain"], outcome.answers["rag"], strict=False)]
        return dg.MaterializeResult(
            data_version=dg.DataVersion(stable_hash(record["scores"], adapter["fingerprint"], str(index_version), template.version)),
            metadata={"scores": markdown_table(table_rows, ["metric", *scores], limit=len(table_rows)), "examples": len(pairs),
                      "evaluated_adapter": adapter["adapter_dir"], "mlflow_run_id": adapter["mlflow_run_id"], "production_version": production_version or "none",
                      "eval_split_version": record["eval_split_version"], "index_version": index_version, "prompt_template_version": template.version,
                      "device": outcome.device, "package_version": record["package_version"], "git_commit": record["git_commit"],
                      "answers_preview": markdown_table(samples, ["question", "reference", "candidate", "candidate_rag"]),
                      **{f"candidate_{k}": v for k, v in scores["candidate"].items()}, **{f"base_{k}": v for k, v in scores["base"].items()}},
            check_results=_gate_check_results(gates, gate_checks),
        )

    @dg.asset(group_name="model", kinds={"mlflow"}, deps=[model_eval], op_tags=cpu_tags, retry_policy=MLFLOW_RETRY)
    def production_model(context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource, mlflow: MlflowResource) -> dg.MaterializeResult:
        """The MLflow registered version under the `production` alias, moved only when every gate passed."""
        config = platform.config
        evaluated = storage.read_record("model_eval")
        adapter = storage.read_record("lora_adapter")
        scores = json.loads(evaluated["scores"])
        current = registered_version(mlflow, mlflow.registered_model)
        baseline = scores.get("production") if current is not None and current == evaluated["production_version"] else None
        if current is not None and baseline is None:
            raise dg.Failure(f"production moved to version {current} after model_eval ran; re-materialize model_eval before promoting")
        failed = [g.message for g in _gates(config, scores, baseline) if not g.passed]
        if failed:
            raise dg.Failure("not promoting; production is unchanged: " + "; ".join(failed))
        tags = {"base_model": adapter["base_model"], "base_model_commit": adapter["base_model_commit"] or "", "base_model_weights_hash": adapter["base_model_weights_hash"],
                "prompt_template_version": adapter["prompt_template_version"], "adapter_fingerprint": adapter["fingerprint"], "dagster_run_id": context.run.run_id,
                "eval_split_version": evaluated["eval_split_version"] or "", "index_version": str(evaluated["index_version"]),
                **{f"eval_{k}": f"{v:.6f}" for k, v in scores["candidate"].items()}}
        version = mlflow.promote(run_id=evaluated["mlflow_run_id"], artifact_path=ADAPTER_ARTIFACT, tags=tags)
        storage.write_record("production_model", {"registered_version": str(version), **tags}, context.run.run_id)
        context.log.info(f"{mlflow.registered_model} version {version} is now 'production' (was {current or 'none'})")
        return dg.MaterializeResult(
            data_version=dg.DataVersion(f"{mlflow.registered_model}/{version}"),
            metadata={"registered_model": mlflow.registered_model, "version": str(version), "previous_version": current or "none",
                      "adapter_dir": evaluated["adapter_dir"], "mlflow_run_id": evaluated["mlflow_run_id"], "tracking_uri": mlflow.uri,
                      "prompt_template_version": adapter["prompt_template_version"], "base_model_commit": adapter["base_model_commit"] or ""},
        )

    return [lora_adapter, model_eval, production_model]


def _served_index(config: PlatformConfig, storage: StorageResource):
    """The index table as the service reads it (at the published tag) and that version."""
    try:
        table = open_published(storage.lancedb(), configured_table_name(config), config.index.published_tag)
    except (LookupError, FileNotFoundError, ValueError) as err:
        raise dg.Failure(f"model_eval scores retrieval-augmented answers from the served index, which is not there: {err}", allow_retries=False) from None
    return table, published_version(table, config.index.published_tag)
