"""Whether NetworkPolicies let one pod open a connection to another, per the Kubernetes semantics.

Enough of networking.k8s.io/v1 for this namespace's policies: podSelector
(matchLabels, matchExpressions In/NotIn/Exists/DoesNotExist), namespaceSelector
(a peer in another namespace), ipBlock (an address outside the cluster) and ports.
A pod no policy selects for a direction is open in that direction; a selected pod
allows what any selecting policy's rules allow, and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Labels = dict[str, str]


@dataclass(frozen=True)
class Peer:
    """A pod of the namespace (labels), or an address outside it (`external`: Postgres, the API server)."""

    labels: Labels = field(default_factory=dict)
    external: bool = False


def selects(selector: dict[str, Any] | None, labels: Labels) -> bool:
    """Label-selector semantics; an empty selector selects everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _peer_matches(rule_peers: list[dict[str, Any]] | None, peer: Peer) -> bool:
    if not rule_peers:  # no `from`/`to`: every peer
        return True
    for entry in rule_peers:
        if "ipBlock" in entry and peer.external:
            return True
        if (
            "podSelector" in entry
            and "namespaceSelector" not in entry
            and not peer.external
            and selects(entry["podSelector"], peer.labels)
        ):
            return True
    return False


def _port_matches(rule_ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    if not rule_ports:
        return True
    return any(p.get("protocol", "TCP") == protocol and p.get("port") in (None, port) for p in rule_ports)


def _allowed(policies: list[dict[str, Any]], pod: Labels, peer: Peer, port: int, protocol: str, direction: str) -> bool:
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in policies
        if direction in p["spec"].get("policyTypes", ["Ingress"]) and selects(p["spec"].get("podSelector"), pod)
    ]
    if not selecting:
        return True
    return any(
        _peer_matches(rule.get(peers_key), peer) and _port_matches(rule.get("ports"), port, protocol)
        for policy in selecting
        for rule in policy["spec"].get(key) or []
    )


def can_connect(policies: list[dict[str, Any]], source: Peer, target: Peer, port: int, protocol: str = "TCP") -> bool:
    """Whether `source` may open `port` on `target`: egress from the source and ingress to the target both allowed."""
    egress = source.external or _allowed(policies, source.labels, target, port, protocol, "Egress")
    ingress = target.external or _allowed(policies, target.labels, source, port, protocol, "Ingress")
    return egress and ingress
