"""The config contract: valid stack files parse; every kind of mistake is one clear RunError
naming the key path, raised before any resource is registered."""

from __future__ import annotations

import json

import pulumi
import pytest

from components.config import parse
from components.config.parse import parse_stack_config
from components.config.stack import StackSettings
from plexictl.offline import project_file, stack_config
from tests.conftest import current_config, render_edited


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
