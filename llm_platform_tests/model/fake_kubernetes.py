"""A fake of the Kubernetes custom-objects API that plays the Kubeflow Training Operator.

The fake stands at the Kubernetes API boundary only: it stores PyTorchJobs, and
on create runs every replica's container command here, one CPU process per
node, with the PET_* variables the operator sets (node count, node rank,
rendezvous address), then records Succeeded or Failed as the operator would.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys

from kubernetes.client.exceptions import ApiException

from llm_platform_tests.processes import free_port


class FakeKubernetes:
    """CustomObjectsApi at the API boundary: stores objects; `runner` plays the operator on create."""

    def __init__(self, runner=None, existing: dict | None = None):
        self.objects: dict[str, dict] = {} if existing is None else {existing["metadata"]["name"]: existing}
        self.calls: list[str] = []
        self.runner = runner

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        assert (group, version, plural) == ("kubeflow.org", "v1", "pytorchjobs") and namespace == body["metadata"][
            "namespace"
        ]
        self.calls.append("create")
        name = body["metadata"]["name"]
        if name in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        self.objects[name] = copy.deepcopy(body)
        state = self.runner(body) if self.runner else "Running"
        self.objects[name]["status"] = {"conditions": [{"type": state, "status": "True", "message": f"job {state}"}]}

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        self.calls.append("get")
        if name not in self.objects:
            raise ApiException(status=404, reason="NotFound")
        return self.objects[name]

    def delete_namespaced_custom_object(self, group, version, namespace, plural, name, body=None):
        self.calls.append("delete")
        del self.objects[name]


def play_operator(body: dict) -> str:
    """Run every replica's container as the operator would, one CPU process per node, and report the outcome."""
    spec = body["spec"]
    nodes = sum(r["replicas"] for r in spec["pytorchReplicaSpecs"].values())
    (container,) = spec["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"]
    command = [sys.executable if part == "python" else part for part in container["command"]]
    port = free_port()
    procs = []
    for rank in range(nodes):
        env = {
            **os.environ,
            "PET_NNODES": str(nodes),
            "PET_NODE_RANK": str(rank),
            "PET_NPROC_PER_NODE": spec["nprocPerNode"],
            "PET_MASTER_ADDR": "127.0.0.1",
            "PET_MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
        }
        procs.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL))
    codes = [proc.wait(timeout=600) for proc in procs]
    return "Succeeded" if codes == [0] * nodes else "Failed"
