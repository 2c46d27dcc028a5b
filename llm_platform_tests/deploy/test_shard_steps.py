"""A backfill of a sharded source under k8s_job_executor: one run per
shard, each step its own Job with its pod's resources.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest
from dagster._core.execution.api import create_execution_plan
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import construct_dagster_k8s_job, get_k8s_job_name, get_user_defined_k8s_config
from kubernetes.client import ApiClient

from llm_platform.automation.jobs import DOCUMENT_ASSETS, INDEX_JOB
from llm_platform.config import load_config
from llm_platform.pod_specs import GPU_RESOURCE

SHARD_KEYS = ["wiki.0-of-3", "wiki.1-of-3", "wiki.2-of-3"]
CONFIG = """\
sources:
  - name: wiki
    location: corpus
    shards: 3
embedding:
  device: cuda
  pod: gpu
"""


@pytest.fixture
def index_job(tmp_path) -> dg.JobDefinition:
    from llm_platform.definitions import build_definitions

    (tmp_path / "corpus").mkdir()
    (tmp_path / "platform.yaml").write_text(CONFIG, encoding="utf-8")
    config = load_config(tmp_path / "platform.yaml")
    return build_definitions(config, home=str(tmp_path / "home"), executor="k8s").resolve_job_def(INDEX_JOB)


def _step_job(run: dg.DagsterRun, step_key: str, step_tags: dict[str, str], launcher) -> dict[str, Any]:
    """The Job k8s_job_executor builds for one step of `run` (the run launcher's settings, then the step's op tags)."""
    context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=False)
    context = context.merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(step_tags)))
    name = f"dagster-step-{get_k8s_job_name(run.run_id, step_key)}"
    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config("llm-platform:test", launcher),
        args=[],
        job_name=name,
        pod_name=name,
        component="step_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/job": run.job_name, "dagster/op": step_key, "dagster/run-id": run.run_id},
    )
    return ApiClient().sanitize_for_serialization(job)


def test_a_backfill_of_the_index_job_has_one_partition_per_shard(index_job):
    assert index_job.partitions_def is not None and index_job.partitions_def.get_partition_keys() == SHARD_KEYS


@pytest.mark.parametrize("key", SHARD_KEYS)
def test_each_shard_run_executes_every_document_step(index_job, key):
    plan = create_execution_plan(index_job, tags={"dagster/partition": key})
    assert sorted(step.key for step in plan.steps) == sorted(key.to_user_string() for key in DOCUMENT_ASSETS)


def test_a_shards_embedding_step_is_a_gpu_job_and_its_other_steps_cpu_jobs(index_job, k8s_run_launcher):
    run = dg.DagsterRun(
        job_name=INDEX_JOB, run_id="0c7d2a4e-5b61-4c39-9f0e-1f8a3b7c2d10", tags={"dagster/partition": "wiki.1-of-3"}
    )
    steps = {step.key: dict(step.tags) for step in create_execution_plan(index_job, tags=run.tags).steps}
    limits = {
        key: _step_job(run, key, tags, k8s_run_launcher)["spec"]["template"]["spec"]["containers"][0]["resources"][
            "limits"
        ]
        for key, tags in steps.items()
    }
    assert {key for key, limit in limits.items() if GPU_RESOURCE in limit} == {"embeddings"}
