"""The demo: the whole graph on the bundled corpus, recorded in a local Dagster instance.

Runs go through the same jobs the UI, sensors and backfills use, into a persistent
instance under the storage root, so `dagster dev` afterwards shows their history.
"""

from __future__ import annotations

import os
import time

import dagster as dg

from llm_platform.automation.jobs import INDEX_JOB, PUBLISH_INDEX_JOB, TRAINING_JOB
from llm_platform.config import load_config, platform_home
from llm_platform.definitions import build_definitions

_QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def demo_instance(home: str) -> dg.DagsterInstance:
    """The persistent local instance `make ui` shows ($DAGSTER_HOME, else <home>/dagster), configured by llm_platform/dagster.yaml."""
    from llm_platform.local_instance import DAGSTER_HOME_ENV, default_dagster_home, prepare_dagster_home

    os.environ[DAGSTER_HOME_ENV] = str(prepare_dagster_home(default_dagster_home(home)))
    return dg.DagsterInstance.get()


def _run(defs: dg.Definitions, job: str, instance: dg.DagsterInstance, partition: str | None = None) -> dg.ExecuteInProcessResult:
    label = f"{job}[{partition}]" if partition else job
    started = time.perf_counter()
    print(f"▶ {label} …", flush=True)
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=partition, raise_on_error=False, run_config=_QUIET
    )
    status = "ok" if result.success else "FAILED"
    print(f"  {label}: {status} in {time.perf_counter() - started:.1f}s (run {result.run_id[:8]})", flush=True)
    return result


def _materialization(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key.to_user_string() == asset:
            return {k: v.value for k, v in materialization.metadata.items()}
    return {}


def _print_model_summary(training: dg.ExecuteInProcessResult) -> None:
    base, adapter = _materialization(training, "base_model"), _materialization(training, "lora_adapter")
    evaluation, production = _materialization(training, "model_eval"), _materialization(training, "production_model")
    print(f"  base model: {base.get('kind', '?')} {base.get('name', '?')} ({base.get('note', '')})")
    if adapter:
        print(f"  adapter: {adapter.get('adapter_dir')} (MLflow run {adapter.get('mlflow_run_id')}, mean loss of first and last 10 steps {adapter.get('first_loss', 0):.3f} -> {adapter.get('final_loss', 0):.3f})")
    else:
        print("  adapter: training skipped (see the lora_adapter observation in the UI for why)")
    if evaluation:
        print("\nEvaluation (model_eval)\n" + str(evaluation.get("scores", "")))
        print("\nGates (model_eval checks)\n" + str(evaluation.get("gates", "")))
    for check in training.get_asset_check_evaluations():
        if not check.passed and check.asset_key.to_user_string() != "model_eval":  # model_eval's gates are in the table above
            print(f"  check failed: {check.asset_key.to_user_string()} {check.check_name}: {check.description}")
    print(_promotion_line(evaluation, production))


def _promotion_line(evaluation: dict, production: dict) -> str:
    """Whether the adapter was promoted and why: production_model's materialization and model_eval's verdict."""
    verdict = f"model_eval verdict: {evaluation['verdict']}" if "verdict" in evaluation else "model_eval did not run, so nothing was judged"
    if production:
        return (f"  promoted: {production.get('registered_model')} version {production.get('version')} is now production "
                f"(was {production.get('previous_version')}, MLflow {production.get('tracking_uri', '')}).\n  {verdict}")
    return f"  production unchanged.\n  {verdict}"


def run_demo(config_path: str | None = None) -> int:
    """Materialize every source through the index, publish it, and print a summary."""
    config = load_config(config_path)
    home = platform_home()
    instance = demo_instance(home)
    defs = build_definitions(config, executor="in_process")
    print(f"llm_platform demo: config {config.config_path}\n  data under {home}\n  Dagster instance {instance.root_directory}")
    ok = True
    summary = []
    for source in config.source_names:
        result = _run(defs, INDEX_JOB, instance, source)
        ok &= result.success
        raw, emb, idx = (_materialization(result, a) for a in ("raw_documents", "embeddings", "vector_index"))
        summary.append(f"  {source:<10} documents {raw.get('documents', '?'):>4}  quarantined {raw.get('quarantined', '?'):>3}  "
                       f"embedded {emb.get('computed', '?'):>5} reused {emb.get('reused', '?'):>5}  rows {idx.get('rows_for_source', '?'):>5}")
    publish = _run(defs, PUBLISH_INDEX_JOB, instance)
    ok &= publish.success
    training = _run(defs, TRAINING_JOB, instance)
    ok &= training.success
    evaluation, published = _materialization(publish, "retrieval_eval"), _materialization(publish, "published_index")
    print("\nSummary\n" + "\n".join(summary))
    print(f"  retrieval: hit rate@{config.index.retrieval_k} {evaluation.get(f'hit_rate_at_{config.index.retrieval_k}', float('nan')):.3f}, "
          f"published version {published.get('published_version', 'not published')}")
    _print_model_summary(training)
    print("\nNext:\n  .venv/bin/llm-platform search \"how do I define a function\"\n"
          f"  DAGSTER_HOME={instance.root_directory} .venv/bin/dagster dev   # then open http://127.0.0.1:3000")
    return 0 if ok else 1
