"""`plexictl render`: a stack's desired state as files, without a cloud account or the Pulumi CLI.

Kubernetes objects become one YAML file each (`kubernetes/<kind>-<name>.yaml`, ready for
`kubectl diff -f`), cloud resources one readable inventory (`cloud.yaml`) and, for the tools that
read Terraform (checkov's `terraform_plan` framework), the AWS resources as a Terraform plan
(`terraform-plan.json`, see `plexictl.offline.terraform_plan`), and the stack outputs
`outputs.yaml`. Secrets are masked everywhere. With `--graph`, also a Mermaid picture of the stack
(`graph.mmd`, see `plexictl.graph`).
"""

from __future__ import annotations

import collections
import pathlib
import shutil
from typing import Any

import yaml

from plexictl.offline import Rendering, mask_secrets, terraform_plan

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when available: much faster
_FIRST_KEYS = ("apiVersion", "kind", "metadata", "spec")
PLAN_FILE = "terraform-plan.json"


def ordered(manifest: dict[str, Any]) -> dict[str, Any]:
    """apiVersion, kind, metadata, spec first, the way people read manifests."""
    head = {k: manifest[k] for k in _FIRST_KEYS if k in manifest}
    return {**head, **{k: v for k, v in manifest.items() if k not in head}}


def manifest_file_name(manifest: dict[str, Any]) -> str:
    return f"{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"


def write(rendering: Rendering, out: pathlib.Path) -> dict[str, int]:
    """Write the rendering under `out` (replacing an earlier render there); return file counts."""
    k8s_dir = out / "kubernetes"
    if k8s_dir.exists():
        shutil.rmtree(k8s_dir)  # a removed object must not linger from the previous render
    k8s_dir.mkdir(parents=True)
    manifests = [ordered(r.manifest()) for r in rendering.kubernetes_objects()]
    for manifest in manifests:
        (k8s_dir / manifest_file_name(manifest)).write_text(_dump(manifest))
    cloud = [
        {
            "type": r.type,
            "name": r.name,
            "component": r.component,
            "protect": r.protect,
            "inputs": mask_secrets(r.inputs),
        }
        for r in rendering.resources
        if r.custom and not r.type.startswith(("kubernetes:", "pulumi:providers:"))
    ]
    (out / "cloud.yaml").write_text(_dump({"resources": cloud}))
    (out / PLAN_FILE).write_text(terraform_plan.dumps(rendering))
    (out / "outputs.yaml").write_text(_dump(mask_secrets(rendering.outputs)))
    return {"kubernetes": len(manifests), "cloud": len(cloud)}


def write_graph(rendering: Rendering, out: pathlib.Path, graph_file: str = "") -> pathlib.Path:
    """The stack's Mermaid diagram, in `graph_file` or else `out/graph.mmd`; returns the path."""
    from plexictl import graph

    path = pathlib.Path(graph_file) if graph_file else out / graph.GRAPH_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(graph.mermaid(rendering))
    return path


def summary(rendering: Rendering) -> str:
    """The table printed after a render: what exists per component, routes, endpoints."""
    per_component: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in rendering.resources:
        if r.custom and not r.type.startswith("pulumi:providers:"):
            per_component[r.component or "(stack)"][r.type.rsplit(":", 1)[-1]] += 1
    lines = [f"stack {rendering.stack}: {sum(sum(c.values()) for c in per_component.values())} resources"]
    width = max(len(c) for c in per_component) if per_component else 0
    for component in sorted(per_component):
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(per_component[component].items()))
        lines.append(f"  {component:<{width}}  {counts}")
    outputs = rendering.outputs
    lines.append("")
    lines.append(f"release: {outputs.get('releaseStrategy')}")
    for track, info in (outputs.get("tracks") or {}).items():
        lines.append(f"  track {track:<7} {info['version']:<12} {info['weightPercent']:>3}% of traffic")
    lines.extend(_data_tier_summary(outputs))
    for key in sorted(set(outputs) - {"tracks", "releaseStrategy"} - set(_DATA_TIER_OUTPUTS)):
        lines.append(f"{key}: {mask_secrets(outputs[key])}")
    return "\n".join(lines)


_DATA_TIER_OUTPUTS = ("database", "cache", "backups")


def _data_tier_summary(outputs: dict[str, Any]) -> list[str]:
    """Endpoints, replicas, retention and DR: what an operator checks before and after a change."""
    if not all(key in outputs for key in _DATA_TIER_OUTPUTS):
        return []
    db, cache, backups = (outputs[key] for key in _DATA_TIER_OUTPUTS)
    if not all(isinstance(value, dict) for value in (db, cache, backups)):
        return ["data tier: endpoints are computed by AWS, known after `pulumi up` (preview)"]
    readers = ", ".join(db["readerEndpoints"]) if db["readReplicas"] else "(none: reads go to the primary)"
    return [
        "data tier:",
        f"  database  primary {db['primaryEndpoint']} ({'Multi-AZ' if db['multiAz'] else 'single AZ'}), "
        f"backups kept {db['backupRetentionDays']} days",
        f"            {db['readReplicas']} read replica(s): {readers}",
        f"  cache     {cache['primaryEndpoint']} ({cache['nodes']} node(s)), readers {cache['readerEndpoint']}",
        f"  backups   s3://{backups['bucket']}, vault {backups['vault']}"
        + (f" (owned by {backups['ownedBy']}: the DR copies of its primary)" if backups.get("ownedBy") else ""),
        _dr_line(backups),
    ]


def _dr_line(backups: dict[str, Any]) -> str:
    if backups.get("ownedBy"):
        return f"  DR        this stack is the DR side of {backups['ownedBy']}"
    if backups.get("drRegion"):
        return f"  DR        {backups['drRegion']}: s3://{backups['drBucket']}"
    return "  DR        none"


def _dump(value: Any) -> str:
    return yaml.dump(value, Dumper=_DUMPER, sort_keys=False, default_flow_style=False, width=100)
