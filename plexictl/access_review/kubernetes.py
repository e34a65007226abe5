"""Kubernetes ServiceAccounts from the rendered desired state: the IAM role each maps to (IRSA),
the workloads that run as it, where its pods may connect (NetworkPolicies) and who may call them
(NetworkPolicies for the network, Istio AuthorizationPolicies for the mesh)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from plexictl.access_review.facts import KNOWN_AFTER_DEPLOY, Fact, known
from plexictl.access_review.iam import ROLE, role_subject
from plexictl.offline import Rendering, Resource

SERVICE_ACCOUNT_KIND = "ServiceAccount"
ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
_WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
_SECTION = "Kubernetes ServiceAccounts"
_NETWORK_HEADINGS = (("Network egress of its pods", "Egress"), ("Network ingress to its pods", "Ingress"))


def _kind(resource: Resource) -> str:
    return resource.type.rsplit(":", 1)[-1]


def _metadata(resource: Resource) -> dict[str, Any]:
    return resource.inputs.get("metadata") or {}


def _namespace(resource: Resource) -> str:
    return str(_metadata(resource).get("namespace") or "default")


def service_accounts(rendering: Rendering) -> list[Resource]:
    return [r for r in rendering.kubernetes_objects() if _kind(r) == SERVICE_ACCOUNT_KIND]


def account_name(account: Resource) -> str:
    return f"{_namespace(account)}/{_metadata(account).get('name')}"


def _pod_templates(workload: Resource) -> dict[str, Any]:
    spec = workload.inputs.get("spec") or {}
    if _kind(workload) == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return spec.get("template") or {}


def service_account_facts(rendering: Rendering) -> Iterator[Fact]:
    roles = rendering.of_type(ROLE)
    workloads = [r for r in rendering.kubernetes_objects() if _kind(r) in _WORKLOAD_KINDS]
    network = [r for r in rendering.kubernetes_objects() if _kind(r) == "NetworkPolicy"]
    mesh = [r for r in rendering.kubernetes_objects() if _kind(r) == "AuthorizationPolicy"]
    for account in service_accounts(rendering):
        subject = f"`{account_name(account)}`"
        namespace, name = _namespace(account), _metadata(account).get("name")
        yield Fact(_SECTION, subject, "IAM role", _mapped_role(account, roles))
        pods = []
        for workload in workloads:
            template = _pod_templates(workload)
            if _namespace(workload) == namespace and (template.get("spec") or {}).get("serviceAccountName") == name:
                yield Fact(_SECTION, subject, "Runs", f"{_kind(workload)} `{_metadata(workload).get('name')}`")
                pods.append((template.get("metadata") or {}).get("labels") or {})
        for user in _references(rendering, namespace, name):
            yield Fact(_SECTION, subject, "Runs", user)
        if not pods:
            continue
        for heading, direction in _NETWORK_HEADINGS:
            for line in sorted({line for labels in pods for line in reach(network, namespace, labels, direction)}):
                yield Fact(_SECTION, subject, heading, line)
        for line in sorted({line for labels in pods for line in mesh_callers(mesh, namespace, labels)}):
            yield Fact(_SECTION, subject, "Mesh callers of its pods", line)


def _mapped_role(account: Resource, roles: list[Resource]) -> str:
    arn = (_metadata(account).get("annotations") or {}).get(ROLE_ANNOTATION)
    if arn is None:
        return "none (no IRSA annotation)"
    lineage = set(account.property_dependencies.get("metadata", []))
    ours = [role for role in roles if role.urn in lineage]
    if len(ours) == 1:
        return role_subject(ours[0])
    return f"`{known(arn)}`" if arn != KNOWN_AFTER_DEPLOY else KNOWN_AFTER_DEPLOY


def _references(rendering: Rendering, namespace: str, name: Any) -> Iterator[str]:
    """Other objects that act as the ServiceAccount (an External Secrets store's `serviceAccountRef`)."""
    for resource in rendering.kubernetes_objects():
        if _namespace(resource) == namespace and _mentions(resource.inputs.get("spec"), name):
            yield f"{_kind(resource)} `{_metadata(resource).get('name')}` (as its identity)"


def _mentions(value: Any, name: Any) -> bool:
    if isinstance(value, dict):
        ref = value.get("serviceAccountRef")
        if isinstance(ref, dict) and ref.get("name") == name:
            return True
        return any(_mentions(v, name) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, name) for v in value)
    return False


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and every matchExpressions operator)."""
    selector = selector or {}
    if not (selector.get("matchLabels") or {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not ok:
            return False
    return True


def reach(policies: list[Resource], namespace: str, labels: Mapping[str, str], direction: str) -> list[str]:
    """Where pods with `labels` may connect (Egress) or be connected from (Ingress), by the
    NetworkPolicies of their namespace: unrestricted when none selects them for that direction."""
    selecting = [
        p.inputs.get("spec") or {}
        for p in policies
        if _namespace(p) == namespace
        and selects((p.inputs.get("spec") or {}).get("podSelector"), labels)
        and direction in _policy_types(p.inputs.get("spec") or {})
    ]
    if not selecting:
        return [f"unrestricted: no NetworkPolicy selects these pods for {direction.lower()}"]
    peer_key = "to" if direction == "Egress" else "from"
    lines = []
    for spec in selecting:
        for rule in spec.get(direction.lower()) or []:
            ports = _ports(rule.get("ports"))
            for peer in rule.get(peer_key) or [None]:
                lines.append(f"{_peer(peer, namespace)}: {ports}")
    return lines or ["nothing: NetworkPolicies select these pods and allow no " + direction.lower()]


def _policy_types(spec: dict[str, Any]) -> list[str]:
    return spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec else ["Ingress"])


def _ports(ports: list[dict[str, Any]] | None) -> str:
    if not ports:
        return "all ports"
    shown = []
    for port in ports:
        end = f"-{port['endPort']}" if port.get("endPort") else ""
        shown.append(f"{port.get('protocol', 'TCP')} {port.get('port', 'any')}{end}")
    return ", ".join(shown)


def _peer(peer: dict[str, Any] | None, namespace: str) -> str:
    if peer is None:
        return "anywhere"
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        excepted = f" except {', '.join(block['except'])}" if block.get("except") else ""
        return f"{block['cidr']}{excepted}"
    pods = _selector(peer["podSelector"]) if "podSelector" in peer else None
    if "namespaceSelector" in peer:
        where = _namespaces(peer["namespaceSelector"])
        return f"pods {pods} in {where}" if pods is not None else f"every pod in {where}"
    return f"pods {pods} in namespace {namespace}" if pods else f"every pod in namespace {namespace}"


def _namespaces(selector: dict[str, Any]) -> str:
    names = selector.get("matchLabels") or {}
    if set(names) == {"kubernetes.io/metadata.name"} and not selector.get("matchExpressions"):
        return f"namespace {names['kubernetes.io/metadata.name']}"
    return f"namespaces {_selector(selector)}" if selector else "every namespace"


def _selector(selector: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for e in selector.get("matchExpressions") or []:
        parts.append(f"{e['key']} {e['operator']} {','.join(e.get('values') or [])}".rstrip())
    return "{" + ", ".join(parts) + "}" if parts else ""


def mesh_callers(policies: list[Resource], namespace: str, labels: Mapping[str, str]) -> list[str]:
    """Who the Istio sidecars of pods with `labels` accept requests from: denials first, then
    what the ALLOW policies selecting them allow (anyone in the mesh when none does)."""
    lines, allowing = [], []
    for policy in policies:
        spec = policy.inputs.get("spec") or {}
        if _namespace(policy) != namespace or not selects((spec.get("selector") or {}), labels):
            continue
        action = spec.get("action", "ALLOW")
        if action == "ALLOW":
            allowing.append(spec)
        else:
            lines += [f"{action}: {line}" for line in _rules(spec)]
    if not allowing:
        return [*lines, "any mesh peer: no ALLOW AuthorizationPolicy selects these pods"]
    allowed = [line for spec in allowing for line in _rules(spec)]
    return [*lines, *(allowed or ["nobody: ALLOW policies select these pods and none has a rule"])]


def _rules(spec: dict[str, Any]) -> list[str]:
    lines = []
    for rule in spec.get("rules") or []:
        sources = [_fields(entry.get("source") or {}) for entry in rule.get("from") or []] or ["anyone"]
        operations = [_fields(entry.get("operation") or {}) for entry in rule.get("to") or []] or ["anything"]
        when = [_fields(condition) for condition in rule.get("when") or []]
        for source in sources:
            for operation in operations:
                lines.append(f"{source} → {operation}" + (f" when {'; '.join(when)}" if when else ""))
    return lines


def _fields(fields: dict[str, Any]) -> str:
    return "; ".join(f"{key} {', '.join(str(v) for v in values)}" for key, values in sorted(fields.items()))
