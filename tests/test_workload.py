"""The WorkloadTrack component on its own, under the mock engine: the real inputs it registers."""

from __future__ import annotations

import pytest

from components.cluster.pod_security import RUN_AS_UID
from components.cluster.workload_track import WorkloadTrack, WorkloadTrackArgs
from components.config.workloads import Workload
from components.release.plan import Track
from plexictl.offline import run

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
SA = "kubernetes:core/v1:ServiceAccount"


CANARY = Track("canary", "v2.0.0", runs_workers=False)


def render_track(workload: Workload, track=CANARY, name="web"):
    def program():
        WorkloadTrack(
            f"{name}-{track.name}",
            WorkloadTrackArgs(
                stack="test",
                workload_name=name,
                workload=workload,
                track=track,
                image_repository="ghcr.io/plexichat/plexichat",
                namespace="plexichat",
            ),
        )

    return run(program, "test")


@pytest.fixture(scope="module")
def web():
    return render_track(Workload(role="web", min_replicas=3, max_replicas=12, memory_mib=768))


def test_one_of_each_object_parented_to_the_component(web):
    component = [r for r in web.resources if r.type == "plexichat:workload:WorkloadTrack"]
    assert len(component) == 1
    for type_ in (DEPLOYMENT, HPA, PDB, SA):
        (resource,) = web.of_type(type_)
        assert resource.parent == component[0].urn
        assert resource.inputs["metadata"]["name"] == "plexichat-web-canary"
        assert resource.inputs["metadata"]["namespace"] == "plexichat"


def test_deployment_selects_by_track_never_by_version(web):
    spec = web.of_type(DEPLOYMENT)[0].inputs["spec"]
    assert spec["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "plexichat",
        "app.kubernetes.io/component": "web",
        "plexichat.com/track": "canary",
    }
    pod_labels = spec["template"]["metadata"]["labels"]
    assert pod_labels["version"] == "v2.0.0"
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()


def test_hpa_owns_replicas(web):
    deployment = web.of_type(DEPLOYMENT)[0].inputs["spec"]
    assert "replicas" not in deployment
    hpa = web.of_type(HPA)[0].inputs["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "plexichat-web-canary"}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 12)
    assert {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["metrics"]} == {
        "cpu": 70,
        "memory": 75,
    }
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300


def _metrics_by_type(rendering) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for metric in rendering.of_type(HPA)[0].inputs["spec"]["metrics"]:
        found.setdefault(metric["type"], []).append(metric)
    return found


def test_a_colour_sized_for_all_traffic_also_scales_on_the_services_request_rate():
    """Both blue-green colours ask for the size the whole Service's traffic needs, whichever
    of them is live, so a flip (a route change only) lands on full capacity."""
    workload = Workload(role="web", requests_per_second_per_pod=40)
    colour = Track("green", "v2.0.0", runs_workers=False, sized_for_all_traffic=True)
    (service_rate,) = _metrics_by_type(render_track(workload, colour))["Object"]
    assert service_rate["object"] == {
        "describedObject": {"apiVersion": "v1", "kind": "Service", "name": "plexichat-web"},
        "metric": {"name": "istio_requests_per_second"},
        "target": {"type": "AverageValue", "averageValue": "40"},
    }
    # A canary (its share of traffic only) and a colour without a rate setting: CPU and memory.
    assert "Object" not in _metrics_by_type(render_track(workload))
    assert "Object" not in _metrics_by_type(render_track(Workload(role="web"), colour))


def test_rollout_never_reduces_capacity(web):
    spec = web.of_type(DEPLOYMENT)[0].inputs["spec"]
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}
    assert spec["progressDeadlineSeconds"] == 600


def test_restricted_pod_security(web):
    pod = web.of_type(DEPLOYMENT)[0].inputs["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    ctx = container["securityContext"]
    assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == RUN_AS_UID
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert pod["volumes"][0]["emptyDir"]["sizeLimit"] == "256Mi"


def test_resources_probes_and_graceful_shutdown(web):
    pod = web.of_type(DEPLOYMENT)[0].inputs["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/plexichat/plexichat:v2.0.0"
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "768Mi"},
        "limits": {"cpu": "1", "memory": "768Mi"},
    }
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["startupProbe"]["failureThreshold"] == 30
    assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": 10}}
    assert pod["terminationGracePeriodSeconds"] == 60
    zones = [c for c in pod["topologySpreadConstraints"] if c["topologyKey"] == "topology.kubernetes.io/zone"]
    assert zones and zones[0]["labelSelector"]["matchLabels"]["plexichat.com/track"] == "canary"


def test_pdb_always_lets_a_drain_progress(web):
    spec = web.of_type(PDB)[0].inputs["spec"]
    assert spec["maxUnavailable"] == 1
    assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert spec["selector"] == web.of_type(DEPLOYMENT)[0].inputs["spec"]["selector"]


def test_service_account_mounts_no_token(web):
    assert web.of_type(SA)[0].inputs["automountServiceAccountToken"] is False


def test_worker_uses_its_metrics_port_and_args():
    worker = render_track(
        Workload(role="worker", port=9090, args=["worker"], pre_stop_delay_seconds=0),
        Track("stable", "v1.0.0", runs_workers=True),
        name="worker",
    )
    (container,) = worker.of_type(DEPLOYMENT)[0].inputs["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
    assert container["args"] == ["worker"]
    assert container["readinessProbe"]["httpGet"]["port"] == "metrics"
    assert "preStop" not in (container.get("lifecycle") or {})
