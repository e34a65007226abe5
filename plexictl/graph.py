"""`plexictl render --graph`: a stack as a Mermaid flowchart, for the docs and for pull requests.

The picture answers what a reviewer asks of a stack: which components it has (each a subgraph),
how a request flows through them (edge → mesh → tracks → data: WAF/CDN and Ingress, the Service
and its VirtualService, each track's Deployment with its share of traffic, the databases, caches
and buckets the pods use), and which resources Pulumi protects from deletion (🔒, class
`protected`). Everything comes from the rendering: the resource types, the routes of the
VirtualServices, the Services' selectors and the `Output` lineage of every input
(`property_dependencies`), so a resource the program adds shows up without a change here.
Deterministic: nodes, subgraphs and edges are sorted, ids derive from kinds and logical names.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from plexictl.offline import Rendering, Resource

_LAYERS = {
    # type token (or Kubernetes kind) -> its place in the data flow
    "aws:cloudfront/distribution:Distribution": "edge",
    "aws:wafv2/webAcl:WebAcl": "edge",
    "Ingress": "edge",
    "Service": "mesh",
    "VirtualService": "mesh",
    "Deployment": "tracks",
    "aws:rds/instance:Instance": "data",
    "aws:rds/cluster:Cluster": "data",
    "aws:elasticache/replicationGroup:ReplicationGroup": "data",
    "aws:elasticache/cluster:Cluster": "data",
    "aws:s3/bucket:Bucket": "data",
    "aws:dynamodb/table:Table": "data",
}
_LAYER_STYLES = {
    "edge": "fill:#fff4e0,stroke:#b36b00",
    "mesh": "fill:#e8f0ff,stroke:#2b5fb3",
    "tracks": "fill:#e9f7ea,stroke:#2e7d32",
    "data": "fill:#f3e8ff,stroke:#6a1b9a",
}
PROTECTED_STYLE = "stroke:#b00020,stroke-width:3px"
GRAPH_FILE = "graph.mmd"


def _kind(resource: Resource) -> str:
    return resource.type.rsplit(":", 1)[-1]


def layer(resource: Resource) -> str | None:
    """edge, mesh, tracks or data for a resource on the request path; None for the rest."""
    if not resource.custom:
        return None
    return _LAYERS.get(_kind(resource) if resource.is_kubernetes else resource.type)


def display_name(resource: Resource) -> str:
    """A Kubernetes object's metadata.name (what kubectl shows), else the logical name."""
    name = (resource.inputs.get("metadata") or {}).get("name") if resource.is_kubernetes else None
    return name if isinstance(name, str) else resource.name


def _ident(prefix: str, *parts: str) -> str:
    return prefix + "_" + re.sub(r"\W+", "_", "_".join(parts)).strip("_")


def _quote(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


@dataclass(frozen=True)
class _Edge:
    source: str
    target: str
    label: str = ""


class _Graph:
    """The rendering indexed for the picture: flow nodes, components, edges."""

    def __init__(self, rendering: Rendering) -> None:
        self.rendering = rendering
        self.by_urn = rendering.by_urn()
        self.components = {r.urn: r for r in rendering.resources if not r.custom}
        self.nodes = {r.urn: r for r in rendering.resources if layer(r) is not None}
        self.ids = self._node_ids()
        self.edges: set[_Edge] = set()
        self.protected_lists: list[str] = []
        """The ids of the nodes that list a component's other protected resources."""

    def _node_ids(self) -> dict[str, str]:
        ids: dict[str, str] = {}
        for urn, resource in sorted(self.nodes.items()):
            ident = _ident("n", _kind(resource), resource.name)
            while ident in ids.values():  # two resources of one kind and name under other parents
                ident += "_"
            ids[urn] = ident
        return ids

    def of_kind(self, kind: str) -> list[Resource]:
        return [r for r in self.nodes.values() if _kind(r) == kind]

    def link(self, source: Resource, target: Resource, label: str = "") -> None:
        self.edges.add(_Edge(self.ids[source.urn], self.ids[target.urn], label))

    def lineage(self, resource: Resource) -> set[str]:
        """The URNs the resource's inputs were computed from."""
        return {urn for urns in resource.property_dependencies.values() for urn in urns}


def _edge_edges(graph: _Graph) -> None:
    """WAF in front of what it filters, CDN to its origins."""
    associated = {
        urn
        for r in graph.rendering.resources
        if r.type == "aws:wafv2/webAclAssociation:WebAclAssociation"
        for urn in r.property_dependencies.get("webAclArn", [])
    }
    for acl in graph.of_kind("WebAcl"):
        if acl.urn in associated:  # attached to the load balancer in front of the Ingresses
            for ingress in graph.of_kind("Ingress"):
                graph.link(acl, ingress, "load balancer")
    for node in graph.nodes.values():
        for urn in sorted(graph.lineage(node)):
            source = graph.nodes.get(urn)
            if source is not None and _kind(source) == "WebAcl" and node is not source:
                graph.link(source, node, "filters")
    for cdn in graph.of_kind("Distribution"):
        for urn in sorted(graph.lineage(cdn)):
            origin = graph.nodes.get(urn)
            if origin is not None and layer(origin) != "edge":
                graph.link(cdn, origin, "origin")


def _service_host(service: Resource) -> tuple[str, str]:
    metadata = service.inputs.get("metadata") or {}
    return str(metadata.get("name")), str(metadata.get("namespace") or "default")


def _services_by_host(graph: _Graph) -> dict[str, Resource]:
    """Each Service by every name a client may use for it: name, name.ns, the cluster FQDN."""
    hosts = {}
    for service in graph.of_kind("Service"):
        name, namespace = _service_host(service)
        for host in (name, f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local"):
            hosts[host] = service
    return hosts


def _mesh_edges(graph: _Graph) -> None:
    """Ingress → Service (its backends), Service → the VirtualServices routing its host."""
    services = _services_by_host(graph)
    for ingress in graph.of_kind("Ingress"):
        namespace = (ingress.inputs.get("metadata") or {}).get("namespace") or "default"
        for rule in (ingress.inputs.get("spec") or {}).get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or []:
                backend = ((path.get("backend") or {}).get("service") or {}).get("name")
                service = services.get(f"{backend}.{namespace}")
                if service is not None:
                    graph.link(ingress, service, str(rule.get("host") or "*"))
    for virtual_service in graph.of_kind("VirtualService"):
        for host in (virtual_service.inputs.get("spec") or {}).get("hosts") or []:
            if (service := services.get(host)) is not None:
                graph.link(service, virtual_service)


def _subset_labels(graph: _Graph, host: str, subset: str) -> dict[str, str] | None:
    for rule in graph.rendering.resources:
        if _kind(rule) == "DestinationRule" and (rule.inputs.get("spec") or {}).get("host") == host:
            for entry in rule.inputs["spec"].get("subsets") or []:
                if entry.get("name") == subset:
                    return dict(entry.get("labels") or {})
    return None


def _track_edges(graph: _Graph) -> None:
    """VirtualService → each track's Deployment, labelled with its weight on the default routes,
    and `+ header/host match` where an opt-in route (the canary header, the preview host) sends
    traffic to it too."""
    services = _services_by_host(graph)
    deployments = graph.of_kind("Deployment")
    for virtual_service in graph.of_kind("VirtualService"):
        weights: dict[tuple[str, str], set[int]] = defaultdict(set)
        matched: set[tuple[str, str]] = set()
        for route in (virtual_service.inputs.get("spec") or {}).get("http") or []:
            for destination in route.get("route") or []:
                target = destination.get("destination") or {}
                key = (str(target.get("host")), str(target.get("subset") or ""))
                # A route that selects on the path alone (the WebSocket twin) carries the same
                # weights; one that selects on headers or the host is an opt-in audience.
                if any(set(match) - {"uri"} for match in route.get("match") or []):
                    matched.add(key)
                else:
                    weights[key].add(int(destination.get("weight", 100)))
        for host, subset in sorted(weights.keys() | matched):
            service = services.get(host)
            selector = dict(((service.inputs.get("spec") or {}).get("selector") or {}) if service else {})
            labels = _subset_labels(graph, host, subset) if subset else {}
            if service is None or labels is None:
                continue
            wanted = {**selector, **labels}
            label = "/".join(f"{w}%" for w in sorted(weights.get((host, subset), ())))
            if (host, subset) in matched:
                label = f"{label} + header/host match" if label else "header/host match"
            for deployment in deployments:
                pod_labels = ((deployment.inputs.get("spec") or {}).get("template") or {}).get("metadata") or {}
                if wanted.items() <= (pod_labels.get("labels") or {}).items():
                    graph.link(virtual_service, deployment, label)


def _data_edges(graph: _Graph) -> None:
    """Deployment → every data resource its pod spec was computed from (endpoints, bucket names)."""
    for deployment in graph.of_kind("Deployment"):
        for urn in sorted(graph.lineage(deployment)):
            target = graph.nodes.get(urn)
            if target is not None and layer(target) == "data":
                graph.link(deployment, target)


def mermaid(rendering: Rendering) -> str:
    """The stack as a Mermaid flowchart (text for a ```mermaid block or a .mmd file)."""
    graph = _Graph(rendering)
    for add_edges in (_edge_edges, _mesh_edges, _track_edges, _data_edges):
        add_edges(graph)
    lines = [f"%% stack {rendering.stack}: rendered by `plexictl render --graph`", "flowchart LR"]
    lines += _component_lines(graph)  # before the classes: it collects the protected lists
    for edge in sorted(graph.edges, key=lambda e: (e.source, e.target, e.label)):
        arrow = f"-->|{_quote(edge.label)}|" if edge.label else "-->"
        lines.append(f"  {edge.source} {arrow} {edge.target}")
    lines += _class_lines(graph)
    return "\n".join(lines) + "\n"


def _component_lines(graph: _Graph) -> list[str]:
    """Subgraphs for the components, nested as the program nests them. The one component every
    other hangs under (the stack's Platform) is left out: a box around everything says nothing."""
    children: dict[str, list[str]] = defaultdict(list)
    for urn, component in graph.components.items():
        children[component.parent].append(urn)
    roots = [urn for urn, c in graph.components.items() if c.parent not in graph.components]
    top = children[roots[0]] if len(roots) == 1 else roots
    members: dict[str, list[Resource]] = defaultdict(list)
    for resource in graph.rendering.resources:
        if resource.custom and (resource.urn in graph.nodes or resource.protect):
            members[resource.parent].append(resource)
    lines = []
    if len(roots) == 1:
        lines += _member_lines(graph, members[roots[0]], "  ")
    lines += _member_lines(graph, [r for r in graph.nodes.values() if r.parent not in graph.components], "  ")
    for urn in sorted(top, key=lambda u: graph.components[u].name):
        lines += _subgraph(graph, urn, children, members, "  ")
    return lines


def _subgraph(graph: _Graph, urn: str, children, members, indent: str) -> list[str]:
    component = graph.components[urn]
    title = f"{component.type.rsplit(':', 1)[-1]} {component.name}"
    lines = [f"{indent}subgraph {_ident('c', title)}[{_quote(title)}]"]
    body = _member_lines(graph, members[urn], indent + "  ")
    for child in sorted(children[urn], key=lambda u: graph.components[u].name):
        body += _subgraph(graph, child, children, members, indent + "  ")
    if not body:  # a component off the request path, holding nothing protected
        count = sum(r.parent == urn for r in graph.rendering.resources)
        body = [f"{indent}  {_ident('s', title)}[{_quote(f'{count} resources')}]"]
    return [*lines, *body, f"{indent}end"]


def _member_lines(graph: _Graph, resources: list[Resource], indent: str) -> list[str]:
    """A component's flow nodes, and one node listing the other resources it protects."""
    lines = []
    for resource in sorted((r for r in resources if r.urn in graph.nodes), key=lambda r: graph.ids[r.urn]):
        lock = "🔒 " if resource.protect else ""
        label = f"{lock}{_kind(resource)}<br/>{display_name(resource)}"
        lines.append(f"{indent}{graph.ids[resource.urn]}[{_quote(label)}]")
    others = sorted(f"{_kind(r)} {display_name(r)}" for r in resources if r.protect and r.urn not in graph.nodes)
    if others:
        parent = graph.components.get(resources[0].parent)
        ident = _ident("p", f"{_kind(parent)} {parent.name}" if parent else "stack")
        graph.protected_lists.append(ident)
        lines.append(f"{indent}{ident}[{_quote('🔒 also protected:<br/>' + '<br/>'.join(others))}]")
    return lines


def _class_lines(graph: _Graph) -> list[str]:
    lines = [f"  classDef {name} {style}" for name, style in _LAYER_STYLES.items()]
    lines.append(f"  classDef protected {PROTECTED_STYLE}")
    by_layer: dict[str, list[str]] = defaultdict(list)
    for urn, resource in graph.nodes.items():
        by_layer[str(layer(resource))].append(graph.ids[urn])
    for name in _LAYER_STYLES:
        if by_layer[name]:
            lines.append(f"  class {','.join(sorted(by_layer[name]))} {name}")
    protected = sorted(graph.ids[urn] for urn, r in graph.nodes.items() if r.protect)
    protected += sorted(graph.protected_lists)
    if protected:
        lines.append(f"  class {','.join(protected)} protected")
    return lines
