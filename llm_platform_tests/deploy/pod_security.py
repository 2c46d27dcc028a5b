"""The Kubernetes "restricted" Pod Security Standard (v1.31), as the admission controller checks it.

https://kubernetes.io/docs/concepts/security/pod-security-standards/ — every
baseline control plus the restricted ones. No maintained PyPI package implements
the profile (the real one is Go code inside the API server), so the rules are
written out here, each as one function returning the violations it finds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

Pod = dict[str, Any]

_BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
_RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
_SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
_SELINUX_TYPES = {None, "", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
_SECCOMP_OK = {"RuntimeDefault", "Localhost"}
_WORKLOAD_POD_PATHS = {
    "Pod": ("spec",),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def pod_spec_of(obj: dict[str, Any]) -> Pod | None:
    """The pod spec inside a Pod, Job, CronJob or any object with spec.template.spec; None for other objects."""
    path = _WORKLOAD_POD_PATHS.get(obj.get("kind", ""), ("spec", "template", "spec"))
    node: Any = obj
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _containers(pod: Pod) -> Iterator[tuple[str, dict[str, Any]]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in pod.get(field) or []:
            yield f"{field}[{container.get('name', '?')}]", container


def _context(container: dict[str, Any]) -> dict[str, Any]:
    return container.get("securityContext") or {}


def _host_namespaces(pod: Pod) -> Iterator[str]:
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            yield f"{field} must not be true"


def _host_process(pod: Pod) -> Iterator[str]:
    if ((pod.get("securityContext") or {}).get("windowsOptions") or {}).get("hostProcess"):
        yield "securityContext.windowsOptions.hostProcess must not be true"
    for where, container in _containers(pod):
        if (_context(container).get("windowsOptions") or {}).get("hostProcess"):
            yield f"{where}: windowsOptions.hostProcess must not be true"


def _privileged(pod: Pod) -> Iterator[str]:
    for where, container in _containers(pod):
        if _context(container).get("privileged"):
            yield f"{where}: privileged must not be true"


def _host_ports(pod: Pod) -> Iterator[str]:
    for where, container in _containers(pod):
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                yield f"{where}: hostPort {port['hostPort']} is not allowed"


def _app_armor(pod: Pod) -> Iterator[str]:
    contexts = [("pod", pod.get("securityContext") or {})] + [(w, _context(c)) for w, c in _containers(pod)]
    for where, context in contexts:
        profile = (context.get("appArmorProfile") or {}).get("type")
        if profile == "Unconfined":
            yield f"{where}: appArmorProfile must not be Unconfined"
    for key, value in ((pod.get("metadata") or {}).get("annotations") or {}).items():
        if (
            key.startswith("container.apparmor.security.beta.kubernetes.io/")
            and value not in ("runtime/default",)
            and not value.startswith("localhost/")
        ):
            yield f"annotation {key}={value} is not an allowed AppArmor profile"


def _se_linux(pod: Pod) -> Iterator[str]:
    contexts = [("pod", pod.get("securityContext") or {})] + [(w, _context(c)) for w, c in _containers(pod)]
    for where, context in contexts:
        options = context.get("seLinuxOptions") or {}
        if options.get("type") not in _SELINUX_TYPES:
            yield f"{where}: seLinuxOptions.type {options['type']!r} is not allowed"
        if options.get("user") or options.get("role"):
            yield f"{where}: seLinuxOptions.user and .role must not be set"


def _proc_mount(pod: Pod) -> Iterator[str]:
    for where, container in _containers(pod):
        if _context(container).get("procMount", "Default") != "Default":
            yield f"{where}: procMount must be Default"


def _sysctls(pod: Pod) -> Iterator[str]:
    for sysctl in (pod.get("securityContext") or {}).get("sysctls") or []:
        if sysctl.get("name") not in _SAFE_SYSCTLS:
            yield f"sysctl {sysctl.get('name')} is not in the safe set"


def _volume_types(pod: Pod) -> Iterator[str]:
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= _RESTRICTED_VOLUMES:
            yield f"volume {volume.get('name')}: type {', '.join(sorted(kinds - _RESTRICTED_VOLUMES))} is not allowed"


def _privilege_escalation(pod: Pod) -> Iterator[str]:
    for where, container in _containers(pod):
        if _context(container).get("allowPrivilegeEscalation") is not False:
            yield f"{where}: allowPrivilegeEscalation must be false"


def _non_root(pod: Pod) -> Iterator[str]:
    pod_context = pod.get("securityContext") or {}
    for where, container in _containers(pod):
        context = _context(container)
        if context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is not True:
            yield f"{where}: runAsNonRoot must be true (on the pod or the container)"
    if pod_context.get("runAsUser") == 0:
        yield "securityContext.runAsUser must not be 0"
    for where, container in _containers(pod):
        if _context(container).get("runAsUser") == 0:
            yield f"{where}: runAsUser must not be 0"


def _seccomp(pod: Pod) -> Iterator[str]:
    pod_profile = ((pod.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
    if pod_profile is not None and pod_profile not in _SECCOMP_OK:
        yield f"securityContext.seccompProfile.type {pod_profile} is not allowed"
    for where, container in _containers(pod):
        profile = (_context(container).get("seccompProfile") or {}).get("type", pod_profile)
        if profile not in _SECCOMP_OK:
            yield f"{where}: seccompProfile.type must be RuntimeDefault or Localhost (on the pod or the container)"


def _capabilities(pod: Pod) -> Iterator[str]:
    for where, container in _containers(pod):
        capabilities = _context(container).get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            yield f"{where}: capabilities.drop must include ALL"
        added = set(capabilities.get("add") or [])
        if added - {"NET_BIND_SERVICE"}:
            yield (
                f"{where}: capabilities.add may only hold NET_BIND_SERVICE, not "
                f"{', '.join(sorted(added - {'NET_BIND_SERVICE'}))}"
            )
        if added - _BASELINE_CAPABILITIES:
            yield f"{where}: capabilities {', '.join(sorted(added - _BASELINE_CAPABILITIES))} are beyond baseline"


def _host_path(pod: Pod) -> Iterator[str]:
    for volume in pod.get("volumes") or []:
        if "hostPath" in volume:
            yield f"volume {volume.get('name')}: hostPath is not allowed"


RULES: dict[str, Callable[[Pod], Iterator[str]]] = {
    "host namespaces": _host_namespaces,
    "host process": _host_process,
    "privileged": _privileged,
    "host ports": _host_ports,
    "AppArmor": _app_armor,
    "SELinux": _se_linux,
    "/proc mount": _proc_mount,
    "sysctls": _sysctls,
    "hostPath volumes": _host_path,
    "volume types": _volume_types,
    "privilege escalation": _privilege_escalation,
    "running as non-root": _non_root,
    "seccomp": _seccomp,
    "capabilities": _capabilities,
}


def restricted_violations(pod: Pod) -> list[str]:
    """Every way `pod` (a pod spec) breaks the restricted profile; empty when it passes."""
    return [f"{rule}: {message}" for rule, check in RULES.items() for message in check(pod)]
