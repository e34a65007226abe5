"""prod-dr, prod's warm standby in the DR region, and its failover (docs/dr.md "The standby
stack", "Failover and failback").

The standby renders with the same program, reading prod's `drSource` through a StackReference
(plexictl/offline/stack_references.py). Failing over is the one edit `dr.role: standby ->
active`: `plexictl diff` shows exactly the documented changes, and nothing is replaced."""

from __future__ import annotations

import pytest

from components.config import floors
from components.config.parse import parse_stack_config
from components.config.stack import StackSettings
from components.data.stateful import STATEFUL_TYPES
from plexictl.diff import diff
from plexictl.offline import UNKNOWN, Rendering, stack_config
from tests.conftest import render_edited, rendered, stack_file
from tests.test_settings import _set

STANDBY, PRIMARY = "prod-dr", "prod"
RDS = "aws:rds/instance:Instance"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ROUTING = "kubernetes:monitoring.coreos.com/v1alpha1:AlertmanagerConfig"

FAILOVER_DATABASE_INPUTS = {
    # Removing it promotes the replica in place (pulumi-aws rds.Instance docs).
    "replicateSourceDb",
    # RDS manages a new master password in this region (the primary's secret is in the lost one).
    "manageMasterUserPassword",
    "masterUserSecretKmsKeyId",
    # The promotion's follow-up changes (the master password) apply at once, not in the window.
    "applyImmediately",
    # A replica cannot leave a final snapshot; the promoted instance does.
    "skipFinalSnapshot",
    "finalSnapshotIdentifier",
}
"""The failover edit's changes to the instance: docs/dr.md "Failover and failback" lists them."""


def promoted(preview: bool = False) -> Rendering:
    return render_edited(STANDBY, _set("dr.role", "active"), preview)


def settings(stack: str, edit=None) -> StackSettings:
    """The stack's parsed settings (its pinned file, after `edit`)."""
    data = stack_file(stack)
    if edit:
        edit(data["config"])
    config, secret_keys = stack_config(stack, stack_file=data)
    return parse_stack_config(config, stack, set(secret_keys))


def instance(r: Rendering):
    return r.one(RDS, "database-primary")


# --- the standby ---------------------------------------------------------------------------------


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_the_standby_renders_reading_its_primary(preview):
    r = rendered(STANDBY, preview)
    assert r.warnings == []
    assert set(r.references) == {PRIMARY}  # prod's outputs, through the StackReference
    source = instance(r).inputs["replicateSourceDb"]
    assert source == (UNKNOWN if preview else rendered(PRIMARY).outputs["drSource"]["databaseArn"])


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_every_aws_resource_of_the_standby_is_in_the_dr_region_through_its_explicit_provider(preview):
    r = rendered(STANDBY, preview)
    (provider,) = r.of_type("pulumi:providers:aws")  # no second region, no default provider
    assert provider.inputs["region"] == "us-west-2" == stack_file(PRIMARY)["config"]["plexichat:backups"]["drRegion"]
    aws = [x for x in r.resources if x.custom and x.type.startswith("aws:")]
    assert aws and all(x.provider.startswith(f"{provider.urn}::") for x in aws)


def test_the_pair_agrees_on_region_zone_domain_and_bucket():
    primary, standby = stack_file(PRIMARY)["config"], stack_file(STANDBY)["config"]
    assert standby["plexichat:dr"]["primaryStack"] == PRIMARY and primary["plexichat:dr"]["standbyStack"] == STANDBY
    assert standby["plexichat:dr"]["primaryRegion"] == primary["plexichat:aws"]["region"]
    assert standby["plexichat:dr"]["hostedZoneId"] == primary["plexichat:dr"]["hostedZoneId"]
    assert standby["plexichat:domain"] == primary["plexichat:domain"]
    # The bucket the standby names is the DR copy prod owns, replicated into its region.
    assert standby["plexichat:backups"]["bucketName"] == rendered(PRIMARY).outputs["backups"]["drBucket"]


def test_the_replica_is_encrypted_in_its_region_and_hardened_like_the_primary():
    r, primary = rendered(STANDBY), rendered(PRIMARY)
    replica, source = instance(r), instance(primary)
    inputs = replica.inputs
    assert inputs["replicateSourceDb"] == primary.outputs["drSource"]["databaseArn"]  # by ARN: cross-region
    key = r.one("aws:kms/key:Key", "database-key")
    assert inputs["kmsKeyId"].startswith("arn:aws:kms:us-west-2:") and key.provider == replica.provider
    assert inputs["storageEncrypted"] is True and inputs["dbSubnetGroupName"] == "plexichat-prod-dr-private"
    for same in (
        "instanceClass",
        "storageType",
        "publiclyAccessible",
        "iamDatabaseAuthenticationEnabled",
        "deletionProtection",
        "caCertIdentifier",
        "monitoringInterval",
        "performanceInsightsEnabled",
        "performanceInsightsRetentionPeriod",
        "enabledCloudwatchLogsExports",
        "multiAz",
        "backupRetentionPeriod",
        "deleteAutomatedBackups",
    ):
        assert inputs[same] == source.inputs[same], same
    assert inputs["performanceInsightsKmsKeyId"] == inputs["kmsKeyId"]
    assert inputs["parameterGroupName"].endswith(source.inputs["parameterGroupName"].rsplit("-", 1)[-1])
    # What a replica inherits from its source, and must not set.
    for inherited in ("engine", "engineVersion", "dbName", "username", "port", "manageMasterUserPassword"):
        assert inherited not in inputs, inherited
    assert replica.protect and replica.retain_on_delete
    assert not [x for x in r.of_type(RDS) if x.name != "database-primary"]  # no replicas of its own


def test_the_standby_creates_nothing_its_primary_owns_and_nothing_it_cannot_run():
    r = rendered(STANDBY)
    # Its own load balancer's log bucket aside (docs/edge.md), so that a failover adds none.
    types = {x.type for x in r.resources if not x.name.startswith("web-load-balancer-access-logs")}
    # The DR bucket, vault and key are prod's; the roles' secrets are prod's, replicated here.
    assert not types & {"aws:s3/bucket:Bucket", "aws:backup/vault:Vault", "aws:backup/plan:Plan"}
    assert not [x for x in r.resources if ":plexichat:data:Backups" in x.urn or "DatabaseRoleSecrets" in x.urn]
    # A read-only replica: no bootstrap, no migration, no master credential of its own.
    assert not r.of_type("kubernetes:batch/v1:Job")
    assert "masterSecretArn" in r.outputs["database"] and r.outputs["database"]["masterSecretArn"] is None
    assert r.outputs["backups"] == {
        "bucket": "plexichat-prod-backups-123456789012-dr",
        "vault": rendered(PRIMARY).outputs["drSource"]["backupVault"],
        "ownedBy": PRIMARY,
    }


def test_the_standbys_pods_log_in_with_the_copies_of_the_primarys_role_secrets():
    primary, standby = rendered(PRIMARY), rendered(STANDBY)
    source = primary.outputs["drSource"]
    key = source["roleSecretsKeyArn"]
    for role in ("plexichat_app", "plexichat_migrator"):
        secret = primary.one("aws:secretsmanager/secret:Secret", f"database-roles-{role}")
        assert secret.inputs["replicas"] == [{"region": "us-west-2", "kmsKeyId": key}]
        assert source["roleSecretArns"][role].startswith("arn:aws:secretsmanager:us-west-2:")
    store = [p for p in standby.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == "app-access-store-policy"]
    (policy,) = store
    assert source["roleSecretArns"]["plexichat_app"] in policy.inputs["policy"] and key in policy.inputs["policy"]


# --- workloads and the app's readiness contract -----------------------------------------------------


def _container(deployment):
    (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    return container


def _env(container) -> dict:
    return {e["name"]: e.get("value") for e in container["env"]}


def test_the_standby_runs_standby_replicas_and_the_promoted_stack_the_settings_sizes():
    workloads = stack_file(STANDBY)["config"]["plexichat:workloads"]
    standby_size = stack_file(STANDBY)["config"]["plexichat:dr"]["standbyReplicas"]
    for hpa in rendered(STANDBY).of_type(HPA):
        assert hpa.inputs["spec"]["minReplicas"] == hpa.inputs["spec"]["maxReplicas"] == standby_size, hpa.name
    for hpa in promoted().of_type(HPA):
        workload = workloads[hpa.inputs["metadata"]["labels"]["app.kubernetes.io/component"]]
        spec = hpa.inputs["spec"]
        assert (spec["minReplicas"], spec["maxReplicas"]) == (workload["minReplicas"], workload["maxReplicas"])


def test_a_standby_pod_is_ready_for_the_kubelet_while_readyz_turns_users_away():
    """The app answers 503 on /readyz while PLEXICHAT_DR_ROLE is standby (Route 53's health check
    reads it); the kubelet asks /livez then, or the Deployments would never become ready."""
    for deployment in rendered(STANDBY).of_type(DEPLOYMENT):
        container = _container(deployment)
        assert _env(container)["PLEXICHAT_DR_ROLE"] == "standby"
        assert container["readinessProbe"]["httpGet"]["path"] == "/livez"
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    for deployment in promoted().of_type(DEPLOYMENT):
        container = _container(deployment)
        assert _env(container)["PLEXICHAT_DR_ROLE"] == "active"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for deployment in rendered(PRIMARY).of_type(DEPLOYMENT):  # the primary is left as it was
        assert "PLEXICHAT_DR_ROLE" not in _env(_container(deployment))
    # What Route 53 asks (components/edge/dns_failover.py): the path the standby fails.
    paths = [c.inputs.get("resourcePath") for c in rendered(STANDBY).of_type("aws:route53/healthCheck:HealthCheck")]
    assert "/readyz" in paths and "/livez" not in paths


def test_the_standbys_pods_use_the_dr_replica_and_cache():
    r = rendered(STANDBY)
    replica_address = f"{instance(r).inputs['identifier']}.c0ffee123456.us-west-2.rds.amazonaws.com"
    for deployment in r.of_type(DEPLOYMENT):
        env = _env(_container(deployment))
        assert env["PLEXICHAT_DATABASE_HOST"] == env["PLEXICHAT_DATABASE_READER_HOSTS"] == replica_address
        assert env["PLEXICHAT_REDIS_HOST"] == "master.plexichat-prod-dr.c0ffee.use1.cache.amazonaws.com"
        assert env["PLEXICHAT_BACKUP_BUCKET"] == "plexichat-prod-backups-123456789012-dr"
        assert env["AWS_REGION"] == "us-west-2"


# --- alert routing ------------------------------------------------------------------------------------


def _routes(r: Rendering) -> dict[str, str]:
    (config,) = r.of_type(ROUTING)
    route = config.inputs["spec"]["route"]
    return {m["matchers"][0]["value"]: m["receiver"] for m in route["routes"]}


def test_the_standby_pages_only_for_replication_and_the_promoted_stack_like_the_primary():
    standby, active = rendered(STANDBY), promoted()
    assert "pagerduty" not in _routes(standby).values() and _routes(standby)["critical"] == "chat"
    assert _routes(active) == _routes(rendered(PRIMARY)) and _routes(active)["critical"] == "pagerduty"
    # The alarm topic still pages: it carries the replication alarms.
    assert standby.of_type("aws:sns/topicSubscription:TopicSubscription")
    data_alarms = [a for a in standby.of_type(ALARM) if a.component.startswith("CloudAlarms ")]
    assert data_alarms and all(a.inputs["actionsEnabled"] is False for a in data_alarms)
    replication = [a for a in standby.of_type(ALARM) if a.inputs["metricName"] == "ReplicaLag"]
    assert replication and all(a.inputs["actionsEnabled"] is True for a in replication)
    assert all(a.inputs["actionsEnabled"] is True for a in active.of_type(ALARM))


def test_the_standby_routing_needs_no_pager_and_falls_back_to_nowhere_without_chat():
    standby = settings(STANDBY)
    assert standby.alert_routing.routes == {"critical": "chat", "warning": "chat", "info": "lowPriority"}
    without_chat = standby.model_copy(update={"alert_chat_webhook_url": None})
    assert without_chat.alert_routing.critical == "none"
    assert settings(PRIMARY).alert_routing == settings(PRIMARY).alerting


# --- floors -------------------------------------------------------------------------------------------


def test_the_standby_meets_the_standby_floors_and_the_promoted_stack_all_of_them():
    standby = settings(STANDBY)
    assert standby.floor_role == "standby" and floors.unmet(standby, "standby") == []
    active = settings(STANDBY, _set("dr.role", "active"))
    assert active.floor_role == "active" and floors.unmet(active, "active") == []


# --- failover: one edit, nothing replaced -------------------------------------------------------------


def test_failover_is_an_update_of_the_database_and_replaces_nothing():
    before, after = rendered(STANDBY), promoted()
    change = diff(before, after, STANDBY)
    assert change.risks == []  # the replacement guard stays quiet
    removed = [c for c in change.changes if c.kind == "removed"]
    assert not [c for c in removed if c.type in STATEFUL_TYPES]
    (database,) = [c for c in change.changes if c.urn == instance(before).urn]
    assert database.kind == "changed" and instance(after).urn == instance(before).urn
    assert {f.path.split("[")[0].split(".")[0] for f in database.fields} == FAILOVER_DATABASE_INPUTS
    assert "replicateSourceDb" not in instance(after).inputs


# What else the failover edit may change (docs/dr.md "Failover and failback"): the workloads'
# size, role and readiness path, the alert routing, and what a writable database brings (its
# replicas, bootstrap and migration, backups, master password rotation). DNS, restore tests and
# data-path alarms are their own components'.
EXPECTED_CHANGES = {
    "changed": {
        RDS,
        DEPLOYMENT,
        HPA,
        ROUTING,
        ALARM,
        "kubernetes:external-secrets.io/v1:ExternalSecret",  # the receivers: now the pager's key too
        "aws:secretsmanager/secretVersion:SecretVersion",
    },
    "added": {
        RDS,  # the promoted database's read replicas
        "aws:cloudwatch/logGroup:LogGroup",
        ALARM,
        "aws:secretsmanager/secretRotation:SecretRotation",
        "aws:backup/plan:Plan",
        "aws:backup/selection:Selection",
        "aws:iam/role:Role",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "kubernetes:batch/v1:Job",
        "kubernetes:core/v1:ConfigMap",
        "kubernetes:core/v1:ServiceAccount",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "kubernetes:external-secrets.io/v1:ExternalSecret",
        "kubernetes:external-secrets.io/v1:SecretStore",
    },
}
OTHER_COMPONENTS = ("DnsFailover ", "RestoreTesting ", "DataPathAlarms ")


def test_failover_changes_only_what_the_runbook_says():
    change = diff(rendered(STANDBY), promoted(), STANDBY)
    unexpected = [
        (c.kind, c.type, c.label)
        for c in change.changes
        if c.type not in EXPECTED_CHANGES.get(c.kind, set())
        and not c.type.startswith("plexichat:")
        and not c.component.startswith(OTHER_COMPONENTS)
    ]
    assert unexpected == []
    cloud_alarms = [c for c in change.changes if c.kind == "changed" and c.component.startswith("CloudAlarms ")]
    assert cloud_alarms and all([f.path for f in c.fields] == ["actionsEnabled"] for c in cloud_alarms)


def test_the_promoted_database_backs_up_into_the_primarys_dr_vault():
    r = promoted()
    (plan,) = r.of_type("aws:backup/plan:Plan")
    vault = rendered(PRIMARY).outputs["drSource"]["backupVault"]
    assert {rule["targetVaultName"] for rule in plan.inputs["rules"]} == {vault}
    assert not r.of_type("aws:backup/vault:Vault")  # the vault stays prod's (and its lock)
    (selection,) = r.of_type("aws:backup/selection:Selection")
    assert selection.inputs["resources"] == [
        f"arn:aws:rds:us-west-2:123456789012:db:{instance(r).inputs['identifier']}"
    ]


STATEFUL_URNS_STANDBY = {
    "plexichat:data:Database$aws:rds/instance:Instance::database-primary",
    "plexichat:data:Database$aws:kms/key:Key::database-key",
    "plexichat:data:Cache$aws:elasticache/replicationGroup:ReplicationGroup::cache-group",
    "plexichat:data:Cache$aws:kms/key:Key::cache-key",
    "plexichat:data:Cache$aws:secretsmanager/secret:Secret::cache-auth-secret",
}


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_the_standbys_data_keeps_its_urns_when_promoted(preview):
    """The same URNs in both roles: promotion updates them, never replaces them."""
    prefix = f"urn:pulumi:{STANDBY}::plexichat::"
    for r in (rendered(STANDBY, preview), promoted(preview)):
        data = {x.urn.removeprefix(prefix) for x in r.resources if x.type in STATEFUL_TYPES and ":data:" in x.urn}
        assert data >= STATEFUL_URNS_STANDBY
