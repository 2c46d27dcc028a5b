"""lora_adapter, model_eval and production_model: train, score, and promote through gates."""

import json

import dagster as dg
import pyarrow as pa

from llm_platform.metadata import markdown_table
from llm_platform.config import PlatformConfig
from llm_platform.index.embedding import load_embedder
from llm_platform.model.gates import GateResult, evaluate_gates
from llm_platform.identity import stable_hash
from llm_platform.index.table import open_published, table_name
from llm_platform.resources.mlflow import MlflowResource
from llm_platform.resources.platform import PlatformConfigResource, StorageResource

GPU_POOL = "gpu"
ADAPTER_ARTIFACT = "adapter"
# Single-step losses are noisy; first/final loss in metadata are means over this many steps.
LOSS_WINDOW = 10
# MLflow servers and object stores fail transiently; a retried step resumes, it does not redo work.
MLFLOW_RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)


def gate_check_names(config: PlatformConfig) -> list[str]:
    """One blocking check per configured bound and per no-regression comparison."""
    return [name for metric in config.gates.minimums for name in (f"{metric}_bound", f"{metric}_no_regression")]


def _check_name(gate_name: str) -> str:
    metric = gate_name.split("<=")[0].split(">=")[0]
    return gate_name if gate_name.endswith("_no_regression") else f"{metric}_bound"


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


def _train_on_nodes(config: PlatformConfig, training: "LoraTrainingConfig", base_path: str, examples: list, output_dir: str, fingerprint: str, on_step):
    """lora_adapter's training as a Kubeflow PyTorchJob over training.multi_node.num_nodes machines."""
    from llm_platform.model.pytorch_job import job_name, train_on_pytorch_job

    return train_on_pytorch_job(base_model_dir=base_path, examples=examples, config=training, output_dir=output_dir,
                                name=job_name(fingerprint), multi_node=config.training.multi_node, pod=config.gpu_pod, on_step=on_step)


def build_training_assets(gpu_tags: dict, cpu_tags: dict, gate_checks: list[str]) -> list[dg.AssetsDefinition]:
    """The three model assets; GPU steps carry `gpu_tags` and share the `gpu` pool."""

    @dg.asset(
        group_name="model", kinds={"pytorch", "mlflow"}, deps=["sft_dataset", "base_model"], op_tags=gpu_tags, pool=GPU_POOL,
        retry_policy=dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL), output_required=False,
    )
    def lora_adapter(context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource, mlflow: MlflowResource):
        """A LoRA adapter fine-tuned on sft_dataset over base_model; resumes from its last checkpoint on retry."""
        config = platform.config
        train = storage.datasets.read("sft_dataset", None)
        base = storage.read_record("base_model")
        if train is None:
            raise dg.Failure("sft_dataset has not been materialized; materialize it first")
        hashes = set(train.column("pair_hash").to_pylist())
        earlier = storage.datasets.read("lora_adapter_pairs", None)
        new = len(hashes - set(earlier.column("pair_hash").to_pylist() if earlier is not None else []))
        if new < config.training.min_new_examples:
            note = f"skipped: {new} new training pairs since the last adapter, fewer than training.min_new_examples={config.training.min_new_examples}"
            context.log.info(note)
            context.log_event(dg.AssetObservation(asset_key="lora_adapter", metadata={"note": note, "new_examples": new, "training_pairs": len(hashes)}))
            return
        sft_version = storage.datasets.current_version("sft_dataset", None)
        training = _training_config(config)
        fingerprint = stable_hash(sft_version or "", base["weights_hash"], json.dumps(training.__dict__, sort_keys=True, default=str))
        output_dir = f"{storage.models_dir}/adapters/{fingerprint[:16]}"
        examples = [(r["instruction"], r["response"]) for r in train.to_pylist()]
        lineage = {"dagster_run_id": context.run_id, "sft_dataset_version": sft_version or "", "base_model": base["name"],
                   "base_model_weights_hash": base["weights_hash"], "base_model_kind": base["kind"], "base_model_path": base["path"]}
        with mlflow.run(run_name=f"lora-{fingerprint[:8]}", tags=lineage) as run:
            import mlflow as mlflow_api

            mlflow_api.log_params({**training.__dict__, "target_modules": ",".join(training.target_modules), "train_pairs": len(examples), "new_pairs": new})
            log_every = max(1, -(-len(examples) // training.batch_size) * training.epochs // 10)

            def on_step(step: int, loss: float) -> None:
                mlflow_api.log_metric("train_loss", loss, step=step)
                if step % log_every == 0:
                    context.log.info(f"step {step}: loss {loss:.4f}")

            if config.training.multi_node is None:
                from llm_platform.model.training import train_lora

                result = train_lora(base_model_dir=base["path"], examples=examples, config=training, output_dir=output_dir, on_step=on_step)
            else:
                result = _train_on_nodes(config, training, base["path"], examples, output_dir, fingerprint, on_step)
            # A resumed training is a new MLflow run; the steps restored from the checkpoint belong in its curve too.
            for step, loss in enumerate(result.losses[: result.resumed_from_step], start=1):
                mlflow_api.log_metric("train_loss", loss, step=step)
            mlflow_api.log_metrics({"tokens_per_second": result.tokens_per_second, "final_loss": _mean(result.losses[-LOSS_WINDOW:])})
            mlflow_api.log_artifacts(result.adapter_dir, ADAPTER_ARTIFACT)
            run_id = run.info.run_id
        record = {"adapter_dir": result.adapter_dir, "fingerprint": fingerprint, "mlflow_run_id": run_id, "sft_dataset_version": sft_version,
                  "base_model_path": base["path"], "base_model_weights_hash": base["weights_hash"], "steps": result.steps, "final_loss": _mean(result.losses[-LOSS_WINDOW:])}
        version = storage.write_record("lora_adapter", record, context.run_id)
        pairs = pa.table({"pair_hash": sorted(hashes)})
        storage.datasets.write("lora_adapter_pairs", None, [pairs], pairs.schema, context.run_id)
        yield dg.MaterializeResult(
            data_version=dg.DataVersion(fingerprint),
            metadata={**record, "record_version": version, "status": result.status, "resumed_from_step": result.resumed_from_step,
                      "first_loss": _mean(result.losses[:LOSS_WINDOW]), "training_pairs": len(examples), "new_pairs": new, "device": result.device,
                      "dtype": result.dtype, "tokens_per_second": result.tokens_per_second, "seconds": result.seconds,
                      "padding_share": result.padding_share, "num_processes": result.num_processes, "attention": result.attention,
                      "mlflow_tracking_uri": mlflow.uri, "losses": dg.MetadataValue.json([round(x, 4) for x in result.losses])},
        )

    @dg.asset(
        group_name="model", kinds={"pytorch", "mlflow"}, deps=[lora_adapter, "sft_eval_split", "base_model", "published_index"], op_tags=gpu_tags, pool=GPU_POOL,
        retry_policy=MLFLOW_RETRY,
        check_specs=[dg.AssetCheckSpec(name, asset="model_eval", blocking=True) for name in gate_checks],
    )
    def model_eval(context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource, mlflow: MlflowResource) -> dg.MaterializeResult:
        """The upstream adapter scored against the base and production models on sft_eval_split and the served index."""
        config = platform.config
        adapter = storage.read_record("lora_adapter")
        eval_rows = (storage.datasets.read("sft_eval_split", None) or pa.table({})).to_pylist()[: config.evaluation.max_examples]
        if not eval_rows:
            raise dg.Failure("sft_eval_split is empty: add curated pairs or lower sft.eval_fraction's hash threshold")
        pairs = [(r["instruction"], r["response"]) for r in eval_rows]
        production = mlflow.production()
        from llm_platform.model.base_model import load_base_model
        from llm_platform.model.model_scoring import generation_scores
        from llm_platform.model.training import load_adapter

        models = {"base": lambda: load_base_model(adapter["base_model_path"]), "candidate": lambda: load_adapter(adapter["base_model_path"], adapter["adapter_dir"])}
        if production is not None:
            tags = production["tags"]
            models["production"] = lambda: load_adapter(tags["base_model_path"], tags["adapter_dir"])
        retrieval = _retrieval(config, storage, eval_rows)
        scores: dict[str, dict[str, float]] = {}
        answers: dict[str, list[str]] = {}
        for name, load in models.items():
            model, tokenizer = load()
            scores[name], answers[name] = generation_scores(model, tokenizer, pairs, max_length=config.training.max_length, max_new_tokens=config.evaluation.max_new_tokens)
            scores[name].update(retrieval)
            context.log.info(f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores[name].items()))
        gates = evaluate_gates(scores["candidate"], scores.get("production"), minimums=config.gates.minimums, max_regression=config.gates.max_regression)
        with mlflow.run(run_name="", tags={"evaluated_by_dagster_run": context.run_id}, run_id=adapter["mlflow_run_id"]):
            import mlflow as mlflow_api

            mlflow_api.log_metrics({f"eval_{k}": v for k, v in scores["candidate"].items()})
        record = {"adapter_record": storage.datasets.current_version("lora_adapter", None), "mlflow_run_id": adapter["mlflow_run_id"],
                  "adapter_dir": adapter["adapter_dir"], "base_model_path": adapter["base_model_path"], "scores": json.dumps(scores),
                  "production_version": production["version"] if production else None, "gates": json.dumps([g.__dict__ for g in gates])}
        storage.write_record("model_eval", record, context.run_id)
        metrics = sorted({m for s in scores.values() for m in s})
        table = [{"metric": m, **{name: round(s.get(m, float("nan")), 4) for name, s in scores.items()}} for m in metrics]
        samples = [{"question": q, "reference": a, "candidate": c} for (q, a), c in zip(pairs, answers["candidate"])]
        return dg.MaterializeResult(
            data_version=dg.DataVersion(stable_hash(record["scores"], adapter["fingerprint"])),
            metadata={"scores": markdown_table(table, ["metric", *scores], limit=len(table)), "examples": len(pairs),
                      "evaluated_adapter": adapter["adapter_dir"], "mlflow_run_id": adapter["mlflow_run_id"],
                      "production_version": record["production_version"] or "none", "answers_preview": markdown_table(samples, ["question", "reference", "candidate"]),
                      **{f"candidate_{k}": v for k, v in scores["candidate"].items()}},
            check_results=_gate_check_results(gates, gate_checks),
        )

    @dg.asset(group_name="model", kinds={"mlflow"}, deps=[model_eval], op_tags=cpu_tags, retry_policy=MLFLOW_RETRY)
    def production_model(context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource, mlflow: MlflowResource) -> dg.MaterializeResult:
        """The MLflow registered version under the `production` alias, moved only when every gate passed."""
        config = platform.config
        evaluated = storage.read_record("model_eval")
        scores = json.loads(evaluated["scores"])
        current = mlflow.production()
        baseline = scores.get("production") if current is not None and str(current["version"]) == str(evaluated["production_version"]) else None
        if current is not None and baseline is None:
            raise dg.Failure(f"production moved to version {current['version']} after model_eval ran; re-materialize model_eval before promoting")
        failed = [g.message for g in evaluate_gates(scores["candidate"], baseline, minimums=config.gates.minimums, max_regression=config.gates.max_regression) if not g.passed]
        if failed:
            raise dg.Failure("not promoting; production is unchanged: " + "; ".join(failed))
        tags = {"adapter_dir": evaluated["adapter_dir"], "base_model_path": evaluated["base_model_path"], "dagster_run_id": context.run_id,
                **{f"eval_{k}": f"{v:.6f}" for k, v in scores["candidate"].items()}}
        version = mlflow.promote(run_id=evaluated["mlflow_run_id"], artifact_path=ADAPTER_ARTIFACT, tags=tags)
        storage.write_record("production_model", {"registered_version": str(version), **tags}, context.run_id)
        context.log.info(f"{mlflow.registered_model} version {version} is now 'production' (was {current['version'] if current else 'none'})")
        return dg.MaterializeResult(
            data_version=dg.DataVersion(f"{mlflow.registered_model}/{version}"),
            metadata={"registered_model": mlflow.registered_model, "version": str(version), "previous_version": str(current["version"]) if current else "none",
                      "adapter_dir": evaluated["adapter_dir"], "mlflow_run_id": evaluated["mlflow_run_id"], "tracking_uri": mlflow.uri},
        )

    return [lora_adapter, model_eval, production_model]


def _retrieval(config: PlatformConfig, storage: StorageResource, eval_rows: list[dict]) -> dict[str, float]:
    from llm_platform.model.model_scoring import retrieval_scores

    questions = [(r["instruction"], r["reference"]) for r in eval_rows if r["origin"] == "corpus" and r["reference"]]
    if not questions:
        return {}
    try:
        table = open_published(storage.lancedb(), table_name(config.index.table, config.embedding.model), config.index.published_tag)
    except LookupError:
        return {}
    embedder = load_embedder(config.embedding.model, device=config.embedding.device, allow_download=config.embedding.allow_download)
    return retrieval_scores(table, [q for q, _ in questions], [c for _, c in questions], embedder.encode, k=config.evaluation.retrieval_k)
