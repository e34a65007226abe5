"""The config contract: valid stack files parse; every kind of mistake is one clear RunError
naming the key path, raised before any resource is registered."""

from __future__ import annotations

import copy
import json

import pulumi
import pytest

from components.config import parse
from components.config.parse import parse_stack_config
from components.config.stack import StackSettings
from plexictl.offline import project_file, stack_config
from tests.conftest import current_config, render_edited, stack_file
from tests.release_state import pin_versions, pinned_release, pinned_version


def test_every_stack_file_parses(current_stack):
    config, secret_keys = current_config(current_stack)
    assert isinstance(parse_stack_config(config, current_stack, secret_keys), StackSettings)


def test_project_defaults_match_the_settings_models():
    """Pulumi.yaml's declared defaults and the models' defaults must never disagree."""
    declared = project_file()["config"]
    for key, spec in declared.items():
        field = StackSettings.model_fields[parse._TOP_LEVEL_KEYS[key]]
        if "default" in spec:
            assert spec["default"] == field.default, key
        else:
            assert field.is_required(), f"{key} has a model default but none in Pulumi.yaml"


def _set(path: str, value):
    """An edit that sets `plexichat:<a.b.c>` in a stack file's config (like `config set --path`)."""
    top, *rest = path.split(".")

    def edit(config):
        if not rest:
            config[f"plexichat:{top}"] = value
            return
        node = config[f"plexichat:{top}"]
        for part in rest[:-1]:
            node = node.setdefault(part, {})
        node[rest[-1]] = value

    return edit


def _remove(path: str):
    top, *rest = path.split(".")

    def edit(config):
        if not rest:
            del config[f"plexichat:{top}"]
            return
        node = config[f"plexichat:{top}"]
        for part in rest[:-1]:
            node = node[part]
        del node[rest[-1]]

    return edit


def _replace_release(release):
    return _set("release", release)


BAD_CONFIGS = [
    # (stack, edit, key path the error must name, a word the message must contain)
    ("prod", _set("release.canary.weight", 150), "plexichat:release.canary.weight", "0 to 100"),
    ("prod", _set("release.canary.weight", -1), "plexichat:release.canary.weight", "0 to 100"),
    ("prod", _set("release.canary.weight", 12.5), "plexichat:release.canary.weight", "integer"),
    ("prod", _set("release.canary.weight", "ten"), "plexichat:release.canary.weight", "integer"),
    ("prod", _set("release.canary.weight", 30), "plexichat:release.canary.weight", "steps"),
    ("prod", _set("release.canary.steps", [50, 25]), "plexichat:release.canary.steps", "increasing"),
    ("prod", _set("release.strategy", "linear"), "plexichat:release.strategy", "blueGreen"),
    ("prod", _remove("release.strategy"), "plexichat:release.strategy", "rolling"),
    ("staging", _set("release.active", "purple"), "plexichat:release.active", "must be blue or green (got 'purple')"),
    ("staging", _remove("release.green"), "plexichat:release.green", "required"),
    ("dev", _remove("release.version"), "plexichat:release.version", "required"),
    ("dev", _set("release.version", "latest"), "plexichat:release.version", "v1.2.3"),
    ("dev", _set("release.version", "1.2"), "plexichat:release.version", "sha256"),
    ("prod", _remove("release.canary.version"), "plexichat:release.canary.version", "required"),
    (
        "prod",
        _set("release.canary.wieght", 10),
        "plexichat:release.canary.wieght",
        "allowed here: analysis, header, steps, version, weight;",
    ),
    (
        "prod",
        _set("release.canary.header.nme", "x"),
        "plexichat:release.canary.header.nme",
        "allowed here: name, value;",
    ),
    (
        "staging",
        _set("release.colour", "blue"),
        "plexichat:release.colour",
        "allowed here: active, blue, green, paused, strategy, verify;",
    ),
    (
        "dev",
        _set("workloads.web.probes.readyPath", "/r"),
        "plexichat:workloads.web.probes.readyPath",
        "allowed here: livenessPath, readinessPath, startupFailureThreshold;",
    ),
    (
        "dev",
        lambda config: config.update({"release": config.pop("plexichat:release")}),
        "plexichat:release",
        "written without its namespace as `release:`",
    ),
    ("prod", _set("release.canary.header.name", "X Bad"), "plexichat:release.canary.header.name", "header"),
    ("dev", _set("relase", {"strategy": "rolling"}), "plexichat:relase", "unknown key"),
    ("dev", _set("workloads.web.minReplicas", "two"), "plexichat:workloads.web.minReplicas", "1 to 100"),
    ("dev", _set("workloads.web.maxReplicas", 0), "plexichat:workloads.web.maxReplicas", "1 to 100"),
    ("prod", _set("workloads.web.maxReplicas", 2), "plexichat:workloads.web.maxReplicas", ">= minReplicas"),
    ("dev", _set("workloads.web.port", 80), "plexichat:workloads.web.port", "unprivileged"),
    ("dev", _set("workloads.web.cpuRequest", "lots"), "plexichat:workloads.web.cpuRequest", "CPU quantity"),
    (
        "dev",
        _set("workloads.worker.role", "cron"),
        "plexichat:workloads.worker.role",
        "must be web or worker (got 'cron')",
    ),
    ("dev", _remove("workloads.web"), "plexichat:workloads", "exactly one workload"),
    ("dev", _set("workloads.web.metricsPort", 8080), "plexichat:workloads.web.metricsPort", "must differ"),
    ("dev", _set("workloads.worker.metricsPort", 9100), "plexichat:workloads.worker.metricsPort", "must equal port"),
    (
        "dev",
        _set("workloads.worker.requestsPerSecondPerPod", 50),
        "plexichat:workloads.worker.requestsPerSecondPerPod",
        "web workloads only",
    ),
    (
        "staging",
        _set("workloads.web.requestsPerSecondPerPod", 0),
        "plexichat:workloads.web.requestsPerSecondPerPod",
        "1 to 100000",
    ),
    ("dev", _set("domain", "Not A Domain"), "plexichat:domain", "DNS name"),
    ("dev", _remove("domain"), "plexichat:domain", "required"),
    ("dev", _set("namespace", "Plexi_Chat"), "plexichat:namespace", "DNS label"),
    ("dev", _set("network.vpcId", "vpc-xyz"), "plexichat:network.vpcId", "VPC id"),
    (
        "dev",
        _set("network.privateSubnetIds", ["subnet-0a1b2c3d4e5f60011"]),
        "plexichat:network.privateSubnetIds",
        "at least 2",
    ),
    ("dev", _remove("network"), "plexichat:network", "required"),
    ("dev", _set("release", "rolling"), "plexichat:release", "strategy"),
    ("dev", _set("kubernetes.ingresNamespace", "x"), "plexichat:kubernetes.ingresNamespace", "allowed here: context,"),
    ("prod", _set("release.version", "v1.0.0"), "plexichat:release.version", "belongs to strategy rolling, not canary"),
    # Dangerous settings: refused before anything is registered (docs/design.md "Production floors").
    ("dev", _set("namespace", "kube-system"), "plexichat:namespace", "not default, istio-system or kube-*"),
    ("dev", _set("namespace", "kube-public"), "plexichat:namespace", "not default, istio-system or kube-*"),
    ("dev", _set("namespace", "default"), "plexichat:namespace", "the app's own namespace"),
    ("dev", _set("namespace", "istio-system"), "plexichat:namespace", "the app's own namespace"),
    ("dev", _set("namespace", "nginx-ingress"), "plexichat:namespace", "must not be kubernetes.ingressNamespace"),
    ("dev", _set("namespace", "monitoring"), "plexichat:namespace", "must not be kubernetes.monitoringNamespace"),
    (
        "dev",
        lambda config: (
            config["plexichat:kubernetes"].update(istioNamespace="mesh", ingressNamespace="mesh")
            or config.update({"plexichat:namespace": "mesh"})
        ),
        "plexichat:namespace",
        "must not be kubernetes.istioNamespace (mesh)",
    ),
    (
        "dev",
        _set("kubernetes.renderYamlToDirectory", "../../../../../etc/cron.d"),
        "plexichat:kubernetes.renderYamlToDirectory",
        "relative path inside the project without '..'",
    ),
    (
        "dev",
        _set("kubernetes.renderYamlToDirectory", "/etc/cron.d"),
        "plexichat:kubernetes.renderYamlToDirectory",
        "Secrets included, in plain text",
    ),
    (
        "dev",
        _set("kubernetes.renderYamlToDirectory", "out/../../x"),
        "plexichat:kubernetes.renderYamlToDirectory",
        "without '..'",
    ),
    ("dev", _remove("kubernetes.context"), "plexichat:kubernetes.context", "unless kubernetes.renderYamlToDirectory"),
    ("dev", _remove("kubernetes"), "plexichat:kubernetes.context", "never deploys to whatever context is current"),
    ("dev", _set("kubernetes.context", ""), "plexichat:kubernetes.context", "must not be empty"),
    ("dev", _set("network.vpcCidr", "0.0.0.0/0"), "plexichat:network.vpcCidr", "must be a private range"),
    ("dev", _set("network.vpcCidr", "52.0.0.0/16"), "plexichat:network.vpcCidr", "RFC 1918"),
    ("dev", _set("network.vpcCidr", "100.0.0.0/8"), "plexichat:network.vpcCidr", "100.64.0.0/10"),
    (
        "dev",
        _set("imageRepository", "ghcr.io/plexichat-evil/x"),
        "plexichat:imageRepository",
        "must lie under one of allowedRegistries (ghcr.io/plexichat), got 'ghcr.io/plexichat-evil/x'",
    ),
    ("dev", _set("imageRepository", "docker.io/plexichat/plexichat"), "plexichat:imageRepository", "allowedRegistries"),
    (
        "dev",
        _set("allowedRegistries", ["https://ghcr.io/plexichat"]),
        "plexichat:allowedRegistries.0",
        "a registry host with an optional path",
    ),
    ("dev", _set("allowedRegistries", ["plexichat"]), "plexichat:allowedRegistries.0", "registry host"),
    ("dev", _set("allowedRegistries", []), "plexichat:allowedRegistries", "at least 1"),
    (
        "dev",
        _remove("environment"),
        "plexichat:environment",
        "required, but not set; one of production, staging, development",
    ),
    ("dev", _set("environment", "prod"), "plexichat:environment", "must be production, staging or development"),
    # Staging and production speak TLS 1.3 to PostgreSQL, which RDS serves from 16 on.
    (
        "staging",
        _set("database.engineVersion", "15"),
        "plexichat:database.engineVersion",
        "must be 16 or newer in a staging stack",
    ),
    (
        "prod",
        _set("database.engineVersion", "15"),
        "plexichat:database.engineVersion",
        "must be 16 or newer in a production stack",
    ),
    (
        "prod",
        _set("database.engineVersion", "15.8"),
        "plexichat:database.engineVersion",
        "older majors stop at TLS 1.2",
    ),
    # Disaster recovery (docs/dr.md): a pair that cannot work is refused like any other config.
    ("prod-dr", _remove("dr.primaryStack"), "plexichat:dr.primaryStack", "required with role standby"),
    ("prod-dr", _set("dr.primaryRegion", "us-west-2"), "plexichat:dr.primaryRegion", "must differ from aws.region"),
    ("prod", _set("dr.role", "active"), "plexichat:dr.role", "active is the role of a promoted standby"),
    (
        "prod",
        lambda config: _remove("backups.drRegion")(config) or _remove("dataProtection.pinned.drRegion")(config),
        "plexichat:backups.drRegion",
        "is required with dr.role primary",
    ),
]


@pytest.mark.parametrize(
    "stack,edit,key,hint", BAD_CONFIGS, ids=[f"{b[0]}:{b[2].split(':')[1]}:{i}" for i, b in enumerate(BAD_CONFIGS)]
)
def test_bad_config_is_one_run_error_naming_the_key_and_registers_nothing(stack, edit, key, hint):
    with pytest.raises(pulumi.RunError) as raised:
        render_edited(stack, edit)
    message = str(raised.value)
    lines = [line for line in message.splitlines() if line.strip().startswith(f"- {key}:")]
    assert lines, f"no problem reported for {key}:\n{message}"
    assert any(hint in line for line in lines), message
    assert "Traceback" not in message


def test_a_bad_config_registers_no_resource():
    """The error is raised before the first registration: nothing half-applies."""
    from plexictl.offline import recording

    registered = []
    original = recording.record
    recording.record = lambda request, urn, *rest: registered.append(urn) or original(request, urn, *rest)
    try:
        with pytest.raises(pulumi.RunError):
            render_edited("prod", _set("release.canary.weight", 150))
    finally:
        recording.record = original
    assert registered == []


def test_all_problems_are_reported_at_once():
    def edit(config):
        _set("release.canary.weight", 150)(config)
        _set("domain", "BAD")(config)
        _set("typo", 1)(config)

    with pytest.raises(pulumi.RunError) as raised:
        render_edited("prod", edit)
    message = str(raised.value)
    for key in ("plexichat:release.canary.weight", "plexichat:domain", "plexichat:typo"):
        assert f"- {key}:" in message


def test_what_the_dangerous_settings_allow_still_renders():
    """The safe side of each new check: a registry and its subpaths, the CGNAT range, a relative
    GitOps directory (which needs no context)."""

    def edit(config):
        _set("allowedRegistries", ["ghcr.io/plexichat", "123456789012.dkr.ecr.us-east-1.amazonaws.com"])(config)
        _set("imageRepository", "123456789012.dkr.ecr.us-east-1.amazonaws.com/mirror/plexichat")(config)
        _set("network.vpcCidr", "100.64.0.0/16")(config)
        _set("network.dataSubnetCidrs", ["100.64.32.0/24"])(config)
        _set("kubernetes", {"renderYamlToDirectory": "rendered/manifests"})(config)
        _set("namespace", "plexichat-dev")(config)

    rendering = render_edited("dev", edit)
    assert rendering.outputs["namespace"] == "plexichat-dev"


def test_other_namespaces_are_not_ours_to_judge():
    config, secrets = stack_config("dev")
    config["aws:region"] = "eu-west-1"
    config["kubernetes:context"] = "anything"
    parse_stack_config(config, "dev", secrets)  # no error


def test_digest_versions_are_accepted():
    config, secret_keys = stack_config("dev")
    digest = "sha256:" + "ab" * 32
    config["plexichat:release"] = json.dumps({"strategy": "rolling", "version": digest})
    assert parse_stack_config(config, "dev", secret_keys).release.version == digest


def test_weights_0_and_100_are_legal():
    for weight in (0, 100):
        rendering = render_edited("prod", _set("release.canary.weight", weight))
        assert rendering.outputs["canaryWeightPercent"] == weight


def test_configuration_reference_is_current():
    from plexictl import config_reference
    from plexictl.offline import ROOT

    document = config_reference.DOCUMENT
    assert config_reference.markdown() in (ROOT / document).read_text(), (
        f"{document} is stale: run `.venv/bin/plexictl config-reference --write {document}`"
    )


def test_a_header_value_set_with_config_set_path_is_still_a_string():
    """`pulumi config set --path release.canary.header.value true` stores a YAML boolean."""
    rendering = render_edited("prod", _set("release.canary.header.value", True))
    (vs,) = rendering.of_type("kubernetes:networking.istio.io/v1:VirtualService")
    assert '"exact": "true"' in str(vs.inputs).replace("'", '"')


# ---------------------------------------------------------------------------------------------
# What the environment asks: production runs only images pinned by digest; staging and
# production speak TLS 1.3 to PostgreSQL.


def _parse_edited(stack: str, edit) -> StackSettings:
    """`stack`'s pinned stack file after `edit`, parsed as the program parses it."""
    data = copy.deepcopy(stack_file(stack))
    edit(data["config"])
    config, secret_keys = stack_config(stack, stack_file=data)
    return parse_stack_config(config, stack, secret_keys)


BARE_RELEASES = {
    "rolling": {"strategy": "rolling", "version": "v1.5.0"},
    "canary": {
        "strategy": "canary",
        "stable": "v1.4.2",
        "canary": {"version": "v1.5.0", "weight": 10, "steps": [10, 25, 50, 100]},
    },
    "blueGreen": {"strategy": "blueGreen", "active": "blue", "blue": "v1.4.2", "green": "v1.5.0"},
}
"""One release block per strategy, every version a bare tag."""
RELEASE_PATHS = {
    "stable": "canary",
    "canary.version": "canary",
    "blue": "blueGreen",
    "green": "blueGreen",
    "version": "rolling",
}
"""Every release path that names a version, and the strategy it belongs to."""


def _with_bare_tag_at(path: str) -> dict:
    """The release block of the path's strategy, pinned by digest but for a bare tag at `path`."""
    block = pin_versions(copy.deepcopy(BARE_RELEASES[RELEASE_PATHS[path]]))
    *parents, key = path.split(".")
    node = block
    for parent in parents:
        node = node[parent]
    node[key] = node[key].partition("@")[0]
    return block


def test_the_pinned_prod_release_uses_the_tests_digests():
    release = pinned_release("prod")
    assert release["stable"] == pinned_version("v1.4.2")
    assert release["canary"]["version"] == pinned_version("v1.5.0")


@pytest.mark.parametrize("path", list(RELEASE_PATHS))
def test_production_refuses_a_bare_tag_naming_the_path_and_the_pin_option(path):
    block = _with_bare_tag_at(path)
    with pytest.raises(pulumi.RunError) as raised:
        render_edited("prod", _set("release", block))
    message = str(raised.value)
    assert "Traceback" not in message
    release_problems = [line.strip() for line in message.splitlines() if line.strip().startswith("- plexichat:release")]
    (problem,) = release_problems  # that path, and no other: the pinned ones pass
    tag = "v1.5.0" if path in ("canary.version", "green", "version") else "v1.4.2"
    assert problem.startswith(f"- plexichat:release.{path}: must name its image by digest in a production stack")
    assert f"{tag}@sha256:<64 hex>" in problem and f"got {tag};" in problem
    assert "--pin" in problem  # how to get the digest


def test_production_refuses_a_bare_schema_version_and_accepts_a_pinned_one():
    """The schema version names the migration Job's image: a bare tag would run an unpinned image
    and leave the release's pinned pods not waiting for it (they compare the exact version)."""
    with pytest.raises(pulumi.RunError, match=r"plexichat:migrations\.schemaVersion: must name its image by digest"):
        render_edited("prod", _set("migrations.schemaVersion", "v1.5.0"))
    settings = _parse_edited("prod", _set("migrations.schemaVersion", pinned_version("v1.5.0")))
    assert settings.migrations.schema_version == pinned_version("v1.5.0")


@pytest.mark.parametrize("strategy", list(BARE_RELEASES))
@pytest.mark.parametrize("form", ["tag@digest", "digest"])
def test_production_accepts_versions_pinned_by_digest(strategy, form):
    block = pin_versions(copy.deepcopy(BARE_RELEASES[strategy]))
    if form == "digest":  # bare: the digest alone, without the readable tag
        block = json.loads(json.dumps(block).replace('"v1.4.2@', '"').replace('"v1.5.0@', '"'))
        assert "@" not in json.dumps(block)
    settings = _parse_edited("prod", _set("release", block))
    assert settings.environment == "production" and settings.release.strategy == strategy


def test_production_renders_a_bare_digest():
    digest = pinned_version("v1.5.0").partition("@")[2]
    rendering = render_edited("prod", _set("release", {"strategy": "rolling", "version": digest}))
    (web,) = [d for d in rendering.of_type("kubernetes:apps/v1:Deployment") if d.name.startswith("web-")]
    assert web.inputs["spec"]["template"]["spec"]["containers"][0]["image"] == f"ghcr.io/plexichat/plexichat@{digest}"


@pytest.mark.parametrize("strategy", list(BARE_RELEASES))
@pytest.mark.parametrize("stack", ["staging", "dev"])
def test_staging_and_development_accept_bare_tags(stack, strategy):
    settings = _parse_edited(stack, _set("release", copy.deepcopy(BARE_RELEASES[strategy])))
    assert settings.environment != "production" and settings.release.strategy == strategy


def test_a_stack_that_says_staging_accepts_bare_tags_whatever_its_name():
    def prod_as_staging(config):
        config["plexichat:environment"] = "staging"
        config["plexichat:release"] = copy.deepcopy(BARE_RELEASES["canary"])

    assert _parse_edited("prod", prod_as_staging).release.stable == "v1.4.2"


def test_development_may_run_postgresql_15_and_staging_16():
    rendering = render_edited("dev", _set("database.engineVersion", "15"))
    primary = rendering.one("aws:rds/instance:Instance", "database-primary")
    assert primary.inputs["engineVersion"] == "15"
    assert _parse_edited("staging", _set("database.engineVersion", "16")).database.major_version == 16
