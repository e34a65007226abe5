"""Whole-program tests: every Pulumi.<stack>.yaml, run as `pulumi up` and `pulumi preview` would
run it, produces valid, secure Kubernetes objects through the explicit provider."""

from __future__ import annotations

import kubernetes_validate

from plexictl.offline import UNKNOWN, Rendering
from tests.conftest import current_stack_file, render_edited, rendered, rendered_current
from tests.crd_models import is_custom_resource, validate_strictly
from tests.release_state import pinned_release, pinned_version

KUBERNETES_VERSION = "1.33"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CUSTOM_RESOURCE_GROUPS = {"external-secrets.io"}


def pod_specs(rendering: Rendering):
    for d in rendering.of_type(DEPLOYMENT):
        yield d.inputs["metadata"]["name"], d.inputs["spec"]["template"]["spec"]


def test_renders_without_warnings(any_stack):
    assert any_stack.warnings == []
    assert any_stack.kubernetes_objects()


def test_preview_and_up_register_the_same_resources(current_stack):
    """Resources created inside apply() would show up only in `up`: there must be none."""
    up, preview = rendered_current(current_stack), rendered_current(current_stack, True)
    assert {r.urn for r in up.resources} == {r.urn for r in preview.resources}


def test_every_kubernetes_object_is_valid_for_the_target_version(any_stack):
    """Built-in kinds against the Kubernetes schema, custom resources (Istio, cert-manager, ...)
    against their CRD models; both strictly (an unknown field is an error)."""
    for resource in any_stack.kubernetes_objects():
        manifest = resource.manifest()
        for key in ("data", "stringData"):
            if manifest.get(key) == "[secret]":
                manifest[key] = {}  # the SDK marks a Secret's whole map secret; values are masked
        if "[unknown until apply]" in str(manifest):
            continue  # preview mode: a computed value; `up` mode validates the same object
        if manifest["apiVersion"].split("/")[0] in CUSTOM_RESOURCE_GROUPS:
            continue  # no schema package installs here; tests/test_app_access.py checks the shape
        if is_custom_resource(manifest):
            validate_strictly(manifest)
        else:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_no_kubernetes_resource_uses_the_default_provider(any_stack):
    k8s = [r for r in any_stack.resources if r.type.startswith("kubernetes:") and r.custom]
    assert k8s
    for resource in k8s:
        # A provider reference is `<provider urn>::<provider id>`; the default one is `default_*`.
        provider_urn = resource.provider.rsplit("::", 1)[0]
        assert provider_urn.endswith("pulumi:providers:kubernetes::plexichat-k8s"), resource.urn


CLUSTER_SCOPED_KINDS = {"Namespace", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
"""The app namespace itself, and the break-glass admission policy (components/identity/
break_glass_access.py), which the API server only has at cluster scope (its binding selects the
app namespace)."""


def test_every_namespaced_object_names_the_app_namespace(any_stack):
    """...but for the one key the program patches into the NGINX controller's own ConfigMap."""
    for resource in any_stack.kubernetes_objects():
        if resource.type == "kubernetes:core/v1:ConfigMapPatch":
            assert resource.inputs["metadata"]["namespace"] == "nginx-ingress", resource.urn
            assert list(resource.inputs["data"]) == ["ssl-protocols"], resource.urn
        elif resource.type.split(":")[-1] in CLUSTER_SCOPED_KINDS:
            assert "namespace" not in resource.inputs["metadata"], resource.urn
        else:
            assert resource.inputs["metadata"]["namespace"] == "plexichat", resource.urn


def test_every_container_is_hardened(any_stack):
    for name, pod in pod_specs(any_stack):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"] + pod.get("initContainers", []):
            ctx = container["securityContext"]
            assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] >= 10000, name
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["capabilities"]["drop"] == ["ALL"] and "add" not in ctx["capabilities"], name
            assert ctx["seccompProfile"]["type"] == "RuntimeDefault", name
            assert not ctx.get("privileged"), name
            resources = container["resources"]
            assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}, name
            assert resources["requests"]["memory"] == resources["limits"]["memory"], name
            assert not container["image"].endswith(":latest"), name
            assert container["readinessProbe"] != container["livenessProbe"], name
            assert "startupProbe" in container, name
        assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), name


def test_hpa_targets_each_deployment_which_sets_no_replicas(any_stack):
    deployments = {d.inputs["metadata"]["name"]: d for d in any_stack.of_type(DEPLOYMENT)}
    hpas = any_stack.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    assert sorted(h.inputs["spec"]["scaleTargetRef"]["name"] for h in hpas) == sorted(deployments)
    assert all("replicas" not in d.inputs["spec"] for d in deployments.values())
    pdbs = any_stack.of_type("kubernetes:policy/v1:PodDisruptionBudget")
    assert sorted(p.inputs["metadata"]["name"] for p in pdbs) == sorted(deployments)


def test_namespace_enforces_restricted_pod_security_and_sidecars(any_stack):
    (namespace,) = any_stack.of_type("kubernetes:core/v1:Namespace")
    labels = namespace.inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["istio-injection"] == "enabled"


def test_web_service_selects_every_track(any_stack):
    (service,) = any_stack.of_type("kubernetes:core/v1:Service")
    spec = service.inputs["spec"]
    assert spec["type"] == "ClusterIP"
    assert "plexichat.com/track" not in spec["selector"]
    web_pods = [
        pod_labels
        for name, pod_labels in (
            (d.inputs["metadata"]["name"], d.inputs["spec"]["template"]["metadata"]["labels"])
            for d in any_stack.of_type(DEPLOYMENT)
        )
        if name.startswith("plexichat-web-")
    ]
    assert web_pods and all(spec["selector"].items() <= labels.items() for labels in web_pods)


def _policies(rendering: Rendering) -> dict[str, dict]:
    return {
        p.inputs["metadata"]["name"]: p.inputs["spec"]
        for p in rendering.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    }


def test_network_is_default_deny_then_only_the_needed_flows(any_stack):
    policies = _policies(any_stack)
    deny = policies["default-deny"]
    assert deny["podSelector"] == {} and sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny and "egress" not in deny
    # Ingress only from named namespaces or the app's own namespace, never from an IP block.
    for name, spec in policies.items():
        for rule in spec.get("ingress", []):
            for peer in rule["from"]:
                assert "ipBlock" not in peer, name
    web = policies["allow-web-from-ingress"]
    assert web["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "nginx-ingress"
    }
    # Data ports are reachable only inside the VPC; the open internet only on 443.
    for name, spec in policies.items():
        for rule in spec.get("egress", []):
            for peer in rule.get("to", []):
                if peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0":
                    assert [p["port"] for p in rule["ports"]] == [443], name
    data = policies["allow-egress-data"]["egress"][0]
    assert sorted(p["port"] for p in data["ports"]) == [5432, 6379]
    assert data["to"][0]["ipBlock"]["cidr"].startswith("10.")


def test_every_pod_can_resolve_dns_and_be_scraped(any_stack):
    policies = _policies(any_stack)
    # Every app pod (all but a Job's, which has its own policy with DNS in it).
    assert policies["allow-egress-dns"]["podSelector"] == {
        "matchExpressions": [{"key": "plexichat.com/job", "operator": "DoesNotExist"}]
    }
    for job in any_stack.of_type("kubernetes:batch/v1:Job"):
        labels = job.inputs["spec"]["template"]["metadata"]["labels"]
        own = [
            p
            for p in policies.values()
            if p["podSelector"].get("matchLabels", {}).items() <= labels.items() and p["podSelector"].get("matchLabels")
        ]
        assert any(r["ports"][0]["port"] == 53 for p in own for r in p["egress"]), job.name
    scrape = policies["allow-prometheus-scrape"]
    open_to_prometheus = {p["port"] for p in scrape["ingress"][0]["ports"]}
    (pod_monitor,) = any_stack.of_type("kubernetes:monitoring.coreos.com/v1:PodMonitor")
    scraped_names = {e["port"] for e in pod_monitor.inputs["spec"]["podMetricsEndpoints"]}
    deployments = any_stack.of_type(DEPLOYMENT)
    for deployment in deployments:
        template = deployment.inputs["spec"]["template"]
        scraped = {
            p["containerPort"] for c in template["spec"]["containers"] for p in c["ports"] if p["name"] in scraped_names
        }
        assert scraped, deployment.name  # every pod has a port the PodMonitor scrapes
        assert scraped <= open_to_prometheus, deployment.name
        # Prometheus is outside the mesh: under mTLS STRICT a scrape through the sidecar is
        # refused, so the scraped port must bypass it.
        bypassing = template["metadata"]["annotations"]["traffic.sidecar.istio.io/excludeInboundPorts"]
        assert scraped <= {int(p) for p in bypassing.split(",")}, deployment.name


TRACKS = {"rolling": {"stable"}, "canary": {"stable", "canary"}, "blueGreen": {"blue", "green"}}


def test_outputs_tell_operators_what_runs(current_stack):
    outputs = rendered_current(current_stack).outputs
    strategy = current_stack_file(current_stack)["config"]["plexichat:release"]["strategy"]
    assert outputs["releaseStrategy"] == strategy
    assert set(outputs["tracks"]) == TRACKS[strategy]
    assert sum(t["weightPercent"] for t in outputs["tracks"].values()) == 100
    assert outputs["url"].startswith("https://") and outputs["namespace"] == "plexichat"


def _by_name(rendering: Rendering, type_prefix: str = "kubernetes:") -> dict[str, dict]:
    return {r.urn: r.inputs for r in rendering.resources if r.type.startswith(type_prefix) and r.custom}


def test_version_bump_never_changes_a_selector():
    """docs/design.md invariant 2: selectors are immutable in Kubernetes; versions live in pod labels."""
    before = rendered("prod")
    after = render_edited("prod", lambda c: c["plexichat:release"]["canary"].update(version=pinned_version("v9.9.9")))
    after_by_urn = after.by_urn()
    changed_images = 0
    for deployment in before.of_type(DEPLOYMENT):
        new = after_by_urn[deployment.urn].inputs["spec"]
        assert new["selector"] == deployment.inputs["spec"]["selector"]
        changed_images += new["template"] != deployment.inputs["spec"]["template"]
    assert changed_images == 1  # only the canary's pod template changed


def test_canary_weight_change_touches_no_workload_object():
    """docs/design.md invariant 1 (workload side): a weight shift is routing only."""
    before = _by_name(rendered("prod"))
    after = _by_name(render_edited("prod", lambda c: c["plexichat:release"]["canary"].update(weight=25)))
    routing = ("VirtualService",)
    assert before.keys() == after.keys()
    changed = [urn for urn in before if before[urn] != after[urn]]
    assert all(urn.split("::")[-2].endswith(routing) for urn in changed), changed


def test_no_cloud_resource_uses_a_default_provider(any_stack):
    """Region and tags come from the stack settings, never from ambient AWS configuration."""
    for resource in any_stack.resources:
        if resource.custom and resource.type.startswith("aws:"):
            provider_name = resource.provider.rsplit("::", 2)[-2]
            assert not provider_name.startswith("default"), resource.urn
    aws_provider = any_stack.one("pulumi:providers:aws", "plexichat-aws")
    region = current_stack_file(any_stack.stack)["config"]["plexichat:aws"]["region"]
    assert aws_provider.inputs["region"] == region


def test_kubernetes_provider_follows_the_stack_settings():
    def edit(config):
        config["plexichat:kubernetes"] = {"context": "ops-cluster", "renderYamlToDirectory": "gitops/prod"}

    (provider,) = render_edited("prod", edit).of_type("pulumi:providers:kubernetes")
    assert provider.inputs["context"] == "ops-cluster"
    assert provider.inputs["renderYamlToDirectory"] == "gitops/prod"
    assert provider.inputs["namespace"] == "plexichat"
    (default,) = rendered("prod").of_type("pulumi:providers:kubernetes")
    assert default.inputs["context"] == "plexichat-prod" and "renderYamlToDirectory" not in default.inputs


def test_a_preview_knows_only_what_the_program_sets():
    """As in `pulumi preview`: ARNs and endpoints AWS computes are unknown until `up`, while
    values the program sets (names, weights) are known."""
    preview, up = rendered("prod", True), rendered("prod")
    (topic,) = preview.of_type("aws:sns/topic:Topic")
    assert topic.inputs["kmsMasterKeyId"] == UNKNOWN
    assert up.of_type("aws:sns/topic:Topic")[0].inputs["kmsMasterKeyId"].startswith("arn:aws:kms:")
    assert preview.outputs["appRoleArn"] == UNKNOWN and up.outputs["appRoleArn"].startswith("arn:aws:iam::")
    weight = pinned_release("prod")["canary"]["weight"]
    assert preview.outputs["canaryWeightPercent"] == up.outputs["canaryWeightPercent"] == weight


def _pull_policies(rendering: Rendering) -> dict[str, tuple[str, str]]:
    """Image and imagePullPolicy of the app's containers, by Deployment or migration Job name."""
    found = {}
    for resource in [*rendering.of_type(DEPLOYMENT), *rendering.of_type("kubernetes:batch/v1:Job")]:
        name = resource.inputs["metadata"]["name"]
        if resource.type == DEPLOYMENT or name.startswith("plexichat-migrate-"):
            (container,) = resource.inputs["spec"]["template"]["spec"]["containers"]
            found[name] = (container["image"], container["imagePullPolicy"])
    return found


def test_images_pinned_by_digest_are_pulled_if_not_present_and_tags_always():
    """A digest names one image for good: what a node has cached is that image, and pods restart
    while the registry is down. A tag can move: `Always` keeps a node from running a stale image
    under it (components/config/versions.py pull_policy)."""
    prod = _pull_policies(rendered("prod"))  # production: every version pinned by digest
    assert {"plexichat-web-stable", "plexichat-web-canary", "plexichat-worker-stable"} <= set(prod)
    assert any(name.startswith("plexichat-migrate-") for name in prod)
    for name, (image, policy) in prod.items():
        assert "@sha256:" in image and policy == "IfNotPresent", name
    dev = _pull_policies(rendered("dev"))  # tags only
    assert any(name.startswith("plexichat-migrate-") for name in dev)
    for name, (image, policy) in dev.items():
        assert "@" not in image and policy == "Always", name

    # Per image, not per stack: a pinned blue next to a tag-only green.
    def pin_blue(config):
        config["plexichat:release"]["blue"] = pinned_version("v1.4.2")

    staging = _pull_policies(render_edited("staging", pin_blue))
    assert staging["plexichat-web-blue"] == (f"ghcr.io/plexichat/plexichat:{pinned_version('v1.4.2')}", "IfNotPresent")
    assert staging["plexichat-web-green"] == ("ghcr.io/plexichat/plexichat:v1.5.0", "Always")
    (job,) = [name for name in staging if name.startswith("plexichat-migrate-")]
    assert staging[job] == ("ghcr.io/plexichat/plexichat:v1.5.0", "Always")  # the schema's: green's v1.5.0
