"""Istio `Telemetry` of the app namespace: access logs always, traces when the stack picks a
tracing provider (monitoring.tracing).

- Access logs: Istio's built-in `envoy` provider writes one line per request a pod's sidecar
  serves (mode SERVER: every request NGINX forwards, not the pods' own outbound calls twice) to
  the sidecar's stdout, which the cluster's log shipping sends to the application log group
  (components/observability/application_logs.py) like the app's own logs.
- Traces: the namespace's Telemetry names the provider (an extension provider of the cluster's
  mesh config) and the sampling percentage. Each web track has a Telemetry of its own, selecting
  that track's pods by the track label, which adds the track and its version as span tags
  (TRACK_SPAN_TAG, VERSION_SPAN_TAG), so a trace shows which release served it.
- A NetworkPolicy lets the app's pods reach the collector (the namespace denies all egress).

Istio applies one Telemetry per workload, the most specific: a workload's overrides each field
(tracing, accessLogging) it sets, so every track's Telemetry repeats the provider, the sampling
and the access logs in full. Only a version or strategy change touches a track's Telemetry: the
weights and the active colour are not in it (docs/design.md invariant 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import naming
from components.cluster.network_policies import APP_PODS, egress_to, namespace_peer, network_policy, tcp_ports
from components.config import versions
from components.config.monitoring import TRACK_SPAN_TAG, VERSION_SPAN_TAG, TracingSettings
from components.release.plan import Track

ACCESS_LOG_PROVIDER = "envoy"
"""Istio's built-in access-log provider: Envoy's default format, to the sidecar's stdout."""
API_VERSION = "telemetry.istio.io/v1"


@dataclass(frozen=True)
class TracingArgs:
    stack: str
    namespace: pulumi.Input[str]
    settings: TracingSettings
    web_workload: str
    tracks: Sequence[Track]
    """The web workload's release tracks (the plan's): one Telemetry each while tracing is on."""


class Tracing(pulumi.ComponentResource):
    namespace_telemetry: k8s.apiextensions.CustomResource
    track_telemetry: dict[str, k8s.apiextensions.CustomResource]
    collector_egress: k8s.networking.v1.NetworkPolicy | None

    def __init__(self, name: str, args: TracingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:observability:Tracing", name, None, opts)
        settings = args.settings
        self.namespace_telemetry = self._telemetry(f"{name}-namespace", naming.APP, args, telemetry_spec(settings))
        self.track_telemetry = {}
        self.collector_egress = None
        if settings.provider is not None:
            for track in args.tracks:
                self.track_telemetry[track.name] = self._telemetry(
                    f"{name}-{track.name}",
                    naming.object_name(args.web_workload, track.name),
                    args,
                    telemetry_spec(settings, track, naming.selector_labels(args.web_workload, track.name)),
                )
            # The sidecars export spans to the collector; every other egress stays denied.
            self.collector_egress = network_policy(
                f"{name}-collector-egress",
                "allow-egress-tracing",
                args.stack,
                args.namespace,
                APP_PODS,
                None,
                [egress_to(namespace_peer(settings.collector_namespace), tcp_ports(settings.collector_port))],
                self,
            )
        self.register_outputs({"provider": settings.provider, "traced_tracks": sorted(self.track_telemetry)})

    def _telemetry(
        self, resource_name: str, object_name: str, args: TracingArgs, spec: dict[str, Any]
    ) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            resource_name,
            api_version=API_VERSION,
            kind="Telemetry",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=object_name, namespace=args.namespace, labels=naming.common_labels(args.stack)
            ),
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self),
        )


def telemetry_spec(
    settings: TracingSettings, track: Track | None = None, selector: dict[str, str] | None = None
) -> dict[str, Any]:
    """A Telemetry's spec: access logs, and the provider with its sampling while tracing is on;
    a track's adds its selector and span tags. Complete either way (see the module's docstring)."""
    spec: dict[str, Any] = {}
    if selector is not None:
        spec["selector"] = {"matchLabels": selector}
    if settings.provider is not None:
        tracing: dict[str, Any] = {
            "providers": [{"name": settings.provider}],
            "randomSamplingPercentage": settings.sampling_percent,
        }
        if track is not None:
            tracing["customTags"] = {
                TRACK_SPAN_TAG: {"literal": {"value": track.name}},
                VERSION_SPAN_TAG: {"literal": {"value": versions.label_value(track.version)}},
            }
        spec["tracing"] = [tracing]
    spec["accessLogging"] = [{"providers": [{"name": ACCESS_LOG_PROVIDER}], "match": {"mode": "SERVER"}}]
    return spec
