"""The one Definitions object of the llm_platform code location."""

from __future__ import annotations

import gc
import os

import dagster as dg

from llm_platform.automation.conditions import build_automation_sensor
from llm_platform.automation.executors import platform_executor
from llm_platform.automation.failure_sensor import build_failure_sensor
from llm_platform.automation.freshness_sensor import build_freshness_sensor
from llm_platform.automation.jobs import build_jobs
from llm_platform.automation.policies import PolicyTargets, apply_policies, platform_policies
from llm_platform.automation.sensors import build_source_sensor
from llm_platform.config import PlatformConfig, default_config
from llm_platform.documents.assets import document_assets
from llm_platform.index.assets import published_index_asset, retrieval_eval_asset, vector_index_asset
from llm_platform.index.embedding_assets import embeddings_asset
from llm_platform.local_instance import warn_if_dagster_home_unset
from llm_platform.model.assets import (
    GPU_POOL,
    configured_gate_checks,
    lora_adapter_asset,
    model_eval_asset,
    production_model_asset,
)
from llm_platform.model.sft_assets import base_model_asset, prompt_template_asset, sft_pairs_asset
from llm_platform.pod_specs import chosen_pod, k8s_op_tags
from llm_platform.resources.mlflow import mlflow_resource
from llm_platform.resources.platform import CONFIG_TAG, PlatformConfigResource, StorageResource
from llm_platform.serving.assets import serving_log

EXECUTOR_ENV = "LLM_PLATFORM_EXECUTOR"


def build_definitions(config: PlatformConfig, *, home: str = "", executor: str | None = None) -> dg.Definitions:
    """Assets, checks, jobs and sensors for `config`; partitions are its source
    names, or their shard keys (llm_platform.shards).
    """
    sources = dg.StaticPartitionsDefinition(config.partition_keys)
    cpu_tags = k8s_op_tags(config.cpu_pod)
    raw_documents, cleaned_corpus, chunks = document_assets(sources, cpu_tags)
    embedding_pod = chosen_pod(config.embedding.pod, cpu_pod=config.cpu_pod, gpu_pod=config.gpu_pod)
    # On a GPU pod the step takes a GPU, so it queues with training for the GPU pool.
    embeddings = embeddings_asset(
        sources, chunks, k8s_op_tags(embedding_pod), pool=GPU_POOL if embedding_pod.gpus else None
    )
    vector_index = vector_index_asset(sources, chunks, cpu_tags)
    retrieval_eval = retrieval_eval_asset(cpu_tags)
    published_index = published_index_asset(cpu_tags)
    sft_pairs = sft_pairs_asset(chunks, cpu_tags)
    base_model = base_model_asset(cleaned_corpus, cpu_tags)
    prompt_template = prompt_template_asset(cpu_tags)
    gpu_tags = k8s_op_tags(config.gpu_pod)
    lora_adapter = lora_adapter_asset(gpu_tags)
    model_eval = model_eval_asset(gpu_tags, configured_gate_checks(config), published_index)
    production_model = production_model_asset(cpu_tags)
    targets = PolicyTargets(
        # serving_log folds in what the service logged, which no upstream materialization signals.
        publications=[published_index, production_model],
        training=[lora_adapter],
        manual=[base_model, serving_log],
        index_freshness=[vector_index, published_index],
        eval_freshness=[model_eval],
    )
    built = [
        raw_documents,
        cleaned_corpus,
        chunks,
        embeddings,
        vector_index,
        retrieval_eval,
        published_index,
        sft_pairs,
        base_model,
        prompt_template,
        lora_adapter,
        model_eval,
        production_model,
        serving_log,
    ]
    assets = apply_policies(built, platform_policies(targets, config))
    return dg.Definitions(
        assets=assets,
        jobs=build_jobs({CONFIG_TAG: config.config_sha256}),
        sensors=[
            build_source_sensor(config),
            build_automation_sensor(),
            build_failure_sensor(config.alerts.webhook_url, config.alerts.ui_url),
            build_freshness_sensor(assets, config.alerts.webhook_url, config.alerts.ui_url),
        ],
        resources={
            "platform": PlatformConfigResource(path=config.config_path),
            "storage": StorageResource(home=home),
            "mlflow": mlflow_resource(config.mlflow, home, in_dagster=True),
        },
        executor=platform_executor(executor or os.environ.get(EXECUTOR_ENV, "multiprocess")),
    )


warn_if_dagster_home_unset()
defs = build_definitions(default_config())

# What is loaded by now (torch, transformers, Dagster: ~700k objects) lives as long as
# the process. Freezing it keeps every full garbage collection in a step from rescanning
# it, which costs ~0.5 s each time on 2 cores: more than a whole unchanged step.
gc.freeze()
