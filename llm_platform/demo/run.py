"""The demo: the whole graph on the bundled corpus, recorded in a local Dagster instance.

Runs go through the same jobs the UI, sensors and backfills use, into a persistent
instance under the storage root, so `dagster dev` afterwards shows their history.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from llm_platform.automation.jobs import INDEX_JOB, PUBLISH_INDEX_JOB, TRAINING_JOB
from llm_platform.automation.local_runs import local_instance as demo_instance
from llm_platform.automation.local_runs import materialization as _materialization
from llm_platform.automation.local_runs import run_job as _run
from llm_platform.config import CONFIG_ENV, DEMO_CONFIG, PlatformConfig, load_config, platform_home
from llm_platform.definitions import build_definitions
from llm_platform.library_warnings import ignore_third_party_deprecations, quiet_progress_bars
from llm_platform.tiny_model_notice import tiny_model_notice


def _print_model_summary(training: dg.ExecuteInProcessResult) -> None:
    base, adapter = _materialization(training, "base_model"), _materialization(training, "lora_adapter")
    evaluation, production = _materialization(training, "model_eval"), _materialization(training, "production_model")
    print(f"  base model: {base.get('kind', '?')} {base.get('name', '?')} ({base.get('note', '')})")
    if adapter:
        print(
            f"  adapter: {adapter.get('adapter_dir')} (MLflow run {adapter.get('mlflow_run_id')}, mean loss of "
            f"first and last 10 steps {adapter.get('first_loss', 0):.3f} -> {adapter.get('final_loss', 0):.3f})"
        )
    else:
        print("  adapter: training skipped (see the lora_adapter observation in the UI for why)")
    if evaluation:
        print("\nEvaluation (model_eval)\n" + str(evaluation.get("scores", "")))
        print("\nGates (model_eval checks)\n" + str(evaluation.get("gates", "")))
    for check in training.get_asset_check_evaluations():
        if (
            not check.passed and check.asset_key.to_user_string() != "model_eval"
        ):  # model_eval's gates are in the table above
            print(f"  check failed: {check.asset_key.to_user_string()} {check.check_name}: {check.description}")
    print(_promotion_line(evaluation, production))


def _promotion_line(evaluation: dict, production: dict) -> str:
    """Whether the adapter was promoted and why: production_model's materialization and model_eval's verdict."""
    verdict = (
        f"model_eval verdict: {evaluation['verdict']}"
        if "verdict" in evaluation
        else "model_eval did not run, so nothing was judged"
    )
    if production:
        return (
            f"  promoted: {production.get('registered_model')} version {production.get('version')} is now production "
            f"(was {production.get('previous_version')}, MLflow {production.get('tracking_uri', '')}).\n  {verdict}"
        )
    return f"  production unchanged.\n  {verdict}"


def run_demo(config_path: str | None = None) -> int:
    """Materialize every source through the index, publish it, and print a summary."""
    quiet_progress_bars()
    ignore_third_party_deprecations()
    config = load_config(config_path)
    home = platform_home()
    instance = demo_instance(home)
    defs = build_definitions(config, executor="in_process")
    print(
        f"llm_platform demo: config {config.config_path}\n  data under {home}\n "
        f" Dagster instance {instance.root_directory}"
    )
    notice = tiny_model_notice(config)
    if notice:
        print(notice)
    ok = True
    summary = []
    for source in config.partition_keys:
        result = _run(defs, INDEX_JOB, instance, source)
        ok &= result.success
        raw, emb, idx = (_materialization(result, a) for a in ("raw_documents", "embeddings", "vector_index"))
        summary.append(
            f"  {source:<10} documents {raw.get('documents', '?'):>4}  quarantined {raw.get('quarantined', '?'):>3}  "
            f"embedded {emb.get('computed', '?'):>5} reused "
            f"{emb.get('reused', '?'):>5}  rows {idx.get('rows_for_source', '?'):>5}"
        )
    publish = _run(defs, PUBLISH_INDEX_JOB, instance)
    ok &= publish.success
    training = _run(defs, TRAINING_JOB, instance)
    ok &= training.success
    evaluation, published = _materialization(publish, "retrieval_eval"), _materialization(publish, "published_index")
    print("\nSummary\n" + "\n".join(summary))
    print(
        f"  retrieval: hit rate@{config.index.retrieval_k} "
        f"{evaluation.get(f'hit_rate_at_{config.index.retrieval_k}', float('nan')):.3f}, "
        f"published version {published.get('published_version', 'not published')}"
    )
    _print_model_summary(training)
    print("\n" + next_steps(config, instance.root_directory))
    return 0 if ok else 1


def next_steps(config: PlatformConfig, dagster_home: str) -> str:
    """What to run after the demo: the README's commands, with the config and
    instance of this run where they are not the defaults.
    """
    from llm_platform.local_instance import default_dagster_home

    env = "" if Path(config.config_path) == DEMO_CONFIG.resolve() else f"{CONFIG_ENV}={config.config_path} "
    if Path(dagster_home).resolve() != default_dagster_home(platform_home()):
        env += f"DAGSTER_HOME={dagster_home} "
    return (
        f'Next:\n  {env}.venv/bin/llm-platform search "how do I define a function"\n'
        f"  {env}make ui   # the runs above in the Dagster UI: http://127.0.0.1:3000\n"
        "  your own documents: docs/own-documents.md"
    )
