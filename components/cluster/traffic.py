"""Istio traffic for the web Service: the one layer that splits traffic between release tracks.

- DestinationRule: one subset per track name, selected by the track label only; mTLS
  (ISTIO_MUTUAL), connection-pool limits and outlier detection.
- VirtualService, bound to the `mesh` gateway (so the sidecar of the NGINX controller applies it
  to external traffic): the release plan's routes in order, first match wins. Every route has a
  WebSocket twin for the WebSocket path, placed just before it with the same match and weights
  but no request timeout (chat connections live for hours).
- PeerAuthentication: STRICT mTLS for the whole namespace.

Safe ordering (no 503 during a release):
- The subsets are static: every track name any strategy uses (`SUBSETS`), so no release edit
  ever changes the DestinationRule, and a subset always exists before the first route to it and
  after the last one.
- The VirtualService depends on the DestinationRule and on the Deployment of every track it
  routes to; Pulumi waits for a Deployment to be ready, so pods exist before traffic does.
- When a track goes away, its Deployment is no longer in the program: Pulumi deletes it only
  after every create and update of the run, i.e. after the VirtualService stopped routing to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import naming
from components.cluster.app_service import AppService
from components.config.cluster import TrafficSettings
from components.release.plan import PREVIEW_HEADER, TRACK_NAMES, ReleasePlan, Route

SUBSETS = TRACK_NAMES
"""One DestinationRule subset per track name of every strategy."""
RETRY_ON = "5xx,reset,connect-failure"
WEBSOCKET_RETRY_ON = "connect-failure"
"""A WebSocket is retried only when no connection was made: nothing reached the app yet."""


@dataclass(frozen=True)
class TrafficArgs:
    stack: str
    namespace: pulumi.Input[str]
    plan: ReleasePlan
    settings: TrafficSettings
    service: AppService
    deployments: Mapping[str, k8s.apps.v1.Deployment]
    """The web Deployment of each track in the plan, by track name."""
    public_hosts: Sequence[str]
    """Hosts NGINX may present to the mesh besides the Service FQDN (the domain, preview host)."""
    preview_host: str | None = None
    """Requests for this host take the preview route (blue-green), like the preview header."""


def http_routes(
    plan: ReleasePlan, service_host: Any, settings: TrafficSettings, preview_host: str | None = None
) -> list[dict[str, Any]]:
    """The VirtualService's `http` list for `plan`, in first-match-wins order.

    Pure (no Pulumi resources), so route semantics are property-tested over every legal release
    config. `service_host` may be an Output: it is only placed, never formatted.
    """
    routes: list[dict[str, Any]] = []
    for route in plan.routes:
        matches = _matches(route, preview_host)
        destinations = [
            {
                "destination": {"host": service_host, "subset": d.track},
                # Kept at weight 0 too: a weight change is then a value change, not a new list.
                "weight": d.weight_percent,
            }
            for d in route.destinations
        ]
        # The WebSocket twin first: it is the more specific of the two, and shares the same
        # header/host match so an opted-in client's WebSocket goes where its requests go.
        routes.append(
            {
                "name": f"{route.name}-websocket",
                "match": [{**m, "uri": {"prefix": settings.websocket_path}} for m in (matches or [{}])],
                "route": destinations,
                "retries": {"attempts": settings.retries.attempts, "retryOn": WEBSOCKET_RETRY_ON},
            }
        )
        http: dict[str, Any] = {"name": route.name}
        if matches:
            http["match"] = matches
        http["route"] = destinations
        http["timeout"] = f"{settings.request_timeout_seconds}s"
        http["retries"] = {
            "attempts": settings.retries.attempts,
            "perTryTimeout": f"{settings.retries.per_try_timeout_seconds}s",
            "retryOn": RETRY_ON,
        }
        routes.append(http)
    return routes


def _matches(route: Route, preview_host: str | None) -> list[dict[str, Any]]:
    """Istio ORs the entries of `match`: the header, or (preview only) the preview host."""
    if route.header_match is None:
        return []
    name, value = route.header_match
    matches: list[dict[str, Any]] = [{"headers": {name: {"exact": value}}}]
    if preview_host is not None and route.header_match == PREVIEW_HEADER:
        matches.append({"authority": {"exact": preview_host}})
    return matches


class Traffic(pulumi.ComponentResource):
    destination_rule: k8s.apiextensions.CustomResource
    virtual_service: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: TrafficArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:traffic:Traffic", name, None, opts)
        self.destination_rule = _destination_rule(name, args, parent=self)
        self.virtual_service = _virtual_service(name, args, self.destination_rule, parent=self)
        self.peer_authentication = _peer_authentication(name, args, parent=self)
        self.register_outputs({"host": args.service.fqdn, "routed_tracks": _routed_tracks(args.plan)})


def _routed_tracks(plan: ReleasePlan) -> list[str]:
    """Every track some route sends traffic to, at any weight."""
    return sorted({d.track for r in plan.routes for d in r.destinations})


def _metadata(args: TrafficArgs) -> k8s.meta.v1.ObjectMetaArgs:
    """The DestinationRule and the VirtualService are named after the Service they route."""
    return k8s.meta.v1.ObjectMetaArgs(
        name=args.service.service_name, namespace=args.namespace, labels=naming.common_labels(args.stack)
    )


def _destination_rule(name: str, args: TrafficArgs, parent: pulumi.Resource) -> k8s.apiextensions.CustomResource:
    s = args.settings
    return k8s.apiextensions.CustomResource(
        f"{name}-destination-rule",
        api_version="networking.istio.io/v1",
        kind="DestinationRule",
        metadata=_metadata(args),
        spec={
            "host": args.service.fqdn,
            "trafficPolicy": {
                "tls": {"mode": "ISTIO_MUTUAL"},
                "connectionPool": {
                    "tcp": {"maxConnections": s.max_connections, "connectTimeout": "5s"},
                    "http": {
                        "http1MaxPendingRequests": s.max_pending_requests,
                        "http2MaxRequests": s.max_requests,
                    },
                },
                "outlierDetection": {
                    "consecutive5xxErrors": s.consecutive_errors,
                    "interval": f"{s.ejection_interval_seconds}s",
                    "baseEjectionTime": f"{s.base_ejection_seconds}s",
                    "maxEjectionPercent": s.max_ejection_percent,
                },
            },
            "subsets": [{"name": track, "labels": {naming.TRACK_LABEL: track}} for track in SUBSETS],
        },
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _virtual_service(
    name: str,
    args: TrafficArgs,
    destination_rule: k8s.apiextensions.CustomResource,
    parent: pulumi.Resource,
) -> k8s.apiextensions.CustomResource:
    host = args.service.fqdn
    routed = _routed_tracks(args.plan)
    return k8s.apiextensions.CustomResource(
        f"{name}-virtual-service",
        api_version="networking.istio.io/v1",
        kind="VirtualService",
        metadata=_metadata(args),
        spec={
            # A non-Service host listed next to the Service FQDN is served on the Service's
            # ports in every sidecar (Istio pilot, buildSidecarVirtualHostsForVirtualService),
            # so a request to the cluster IP with `Host: <domain>` takes these routes too.
            "hosts": [host, *args.public_hosts],
            # `mesh` only: the routes apply in every sidecar, the NGINX controller's included.
            "gateways": ["mesh"],
            "http": http_routes(args.plan, host, args.settings, args.preview_host),
        },
        opts=pulumi.ResourceOptions(
            parent=parent,
            # Subsets and ready pods before any route sends traffic to them (see docstring).
            depends_on=[destination_rule, *(args.deployments[t] for t in routed)],
        ),
    )


def _peer_authentication(name: str, args: TrafficArgs, parent: pulumi.Resource) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(
        f"{name}-peer-authentication",
        api_version="security.istio.io/v1",
        kind="PeerAuthentication",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            # `default` with no selector: the namespace-wide policy.
            name="default",
            namespace=args.namespace,
            labels=naming.common_labels(args.stack),
        ),
        spec={"mtls": {"mode": "STRICT"}},
        opts=pulumi.ResourceOptions(parent=parent),
    )
