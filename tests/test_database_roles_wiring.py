"""The database roles in the program: the pods and the migration log in as plexichat_app and
plexichat_migrator, the master credential reaches the bootstrap Job alone, and each appAuth mode
gets its credentials (password: rotated secrets; iam: rds-db:connect on exactly its user)."""

from __future__ import annotations

import json

import pytest

from components.data.database import DB_NAME
from components.data.database_roles import bootstrap_sql
from plexictl.offline.mocks import computed_aws_outputs
from plexictl.offline.rendering import is_secret
from tests.conftest import STACKS, is_dr_standby, primary_of, render_edited, rendered, stack_file, stack_region

JOB = "kubernetes:batch/v1:Job"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"
SECRET = "aws:secretsmanager/secret:Secret"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
SAR_STACK = "aws:serverlessrepository/cloudFormationStack:CloudFormationStack"
MASTER_SECRET = "plexichat-db-master-credentials"
MULTI_USER_ROTATION = (
    "arn:aws:serverlessrepo:us-east-1:297356227824:applications/SecretsManagerRDSPostgreSQLRotationMultiUser"
)


def iam(config):
    config["plexichat:database"]["appAuth"] = "iam"


def _strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def _job(r, name: str):
    (job,) = [j for j in r.of_type(JOB) if j.inputs["metadata"]["name"] == name]
    return job


def _container(workload) -> dict:
    (container,) = workload.inputs["spec"]["template"]["spec"]["containers"]
    return container


def _env(workload) -> dict[str, dict]:
    return {e["name"]: e for e in _container(workload)["env"]}


def _master_secret_arn(r) -> str:
    (primary,) = [i for i in r.of_type("aws:rds/instance:Instance") if "replicateSourceDb" not in i.inputs]
    region = stack_region(r.stack)
    return f"arn:aws:secretsmanager:{region}:123456789012:secret:rds!db-{primary.inputs['identifier']}-AbCdEf"


def _renderings():
    for stack in STACKS:
        for preview in (False, True):
            yield pytest.param(stack, preview, None, id=f"{stack}-{'preview' if preview else 'up'}")
    yield pytest.param("prod", False, iam, id="prod-iam")


@pytest.mark.parametrize("stack,preview,edit", list(_renderings()))
def test_no_deployment_can_reach_the_master_credential(stack, preview, edit):
    r = render_edited(stack, edit, preview) if edit else rendered(stack, preview)
    if is_dr_standby(stack):  # a replica has no master credential of its own: nothing reads one
        assert not [w for w in r.kubernetes_objects() if MASTER_SECRET in _strings(w.inputs)]
        assert not [e for e in r.of_type(EXTERNAL_SECRET) if "rds!db-" in json.dumps(e.inputs)]
        return
    master_arn = _master_secret_arn(r)
    reads = {e.inputs["metadata"]["name"]: list(_strings(e.inputs["spec"])) for e in r.of_type(EXTERNAL_SECRET)}
    assert any(master_arn in strings for strings in reads.values()) or preview
    for deployment in r.of_type(DEPLOYMENT):
        strings = list(_strings(deployment.inputs))
        assert MASTER_SECRET not in strings and master_arn not in strings
        referenced = {
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in _container(deployment)["env"]
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        for secret in referenced:  # no Secret a Deployment reads is synced from the master secret
            assert master_arn not in reads[secret]
    # The master's Secret is read by exactly one pod template: the bootstrap Job's.
    readers = [w.inputs["metadata"]["name"] for w in r.kubernetes_objects() if MASTER_SECRET in _strings(w.inputs)]
    assert sorted(readers) == ["plexichat-db-bootstrap", MASTER_SECRET]  # the Job and its ExternalSecret


@pytest.mark.parametrize("stack", STACKS)
def test_the_bootstrap_job_converges_the_roles_as_master_before_the_migration(stack):
    r = rendered(stack)
    if is_dr_standby(stack):  # a read-only replica: the roles and the schema come with the data
        assert r.of_type(JOB) == []
        return
    job = _job(r, "plexichat-db-bootstrap")
    container, pod = _container(job), job.inputs["spec"]["template"]["spec"]
    script = container["command"][-1]
    assert script.startswith("exec psql -v ON_ERROR_STOP=1 ")
    assert '-v app_password="$PLEXICHAT_APP_PASSWORD"' in script and script.endswith("-f /bootstrap/bootstrap.sql")
    (config_map,) = [c for c in r.of_type("kubernetes:core/v1:ConfigMap") if c.name == "database-bootstrap-sql"]
    assert config_map.inputs["data"]["bootstrap.sql"] == bootstrap_sql(DB_NAME, break_glass=_break_glass(stack))
    env = _env(job)
    assert env["PGUSER"]["valueFrom"]["secretKeyRef"] == {"name": MASTER_SECRET, "key": "username"}
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": MASTER_SECRET, "key": "password"}
    assert env["PLEXICHAT_APP_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "plexichat-db-credentials"
    assert env["PLEXICHAT_MIGRATOR_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == (
        "plexichat-db-migrator-credentials"
    )
    assert pod["serviceAccountName"] == "plexichat-db-bootstrap" and pod["automountServiceAccountToken"] is False
    assert job.inputs["spec"]["template"]["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
    (policy,) = [
        p for p in r.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy") if p.name.startswith("database-")
    ]
    assert policy.inputs["spec"]["podSelector"]["matchLabels"] == {"plexichat.com/job": "db-bootstrap"}
    assert [port["port"] for rule in policy.inputs["spec"]["egress"][1:] for port in rule["ports"]] == [5432]
    (migration,) = [j for j in r.of_type(JOB) if j.inputs["metadata"]["name"].startswith("plexichat-migrate-")]
    assert job.urn in migration.dependencies
    migrator = _env(migration)
    assert migrator["PLEXICHAT_DATABASE_USER"]["valueFrom"]["secretKeyRef"] == {
        "name": "plexichat-db-migrator-credentials",
        "key": "username",
    }


@pytest.mark.parametrize("stack", STACKS)
def test_password_mode_two_role_secrets_rotated_every_30_days_by_the_multi_user_function(stack):
    r = rendered(stack)
    if is_dr_standby(stack):  # the primary's secrets, replicated here: rotated there (docs/dr.md)
        assert not [s for s in r.of_type(SECRET) if "/plexichat_" in s.inputs["name"]] and not r.of_type(SAR_STACK)
        source = rendered(primary_of(stack)).outputs["drSource"]
        (store,) = [p for p in r.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == "app-access-store-policy"]
        assert all(arn in store.inputs["policy"] for arn in source["roleSecretArns"].values())
        return
    ident = f"plexichat-{stack}"
    key = computed_aws_outputs("aws:kms/key:Key", "database-key", {})["arn"]
    secrets = {s.inputs["name"]: s for s in r.of_type(SECRET) if s.inputs["name"].startswith(f"{ident}/")}
    assert set(secrets) == {f"{ident}/plexichat_app", f"{ident}/plexichat_migrator"}
    assert all(s.inputs["kmsKeyId"] == key for s in secrets.values())
    for version in r.of_type("aws:secretsmanager/secretVersion:SecretVersion"):
        if not version.name.startswith("database-roles-"):
            continue
        assert is_secret(version.inputs["secretString"]) and "secretString" in version.ignore_changes
        value = json.loads(version.inputs["secretString"]["value"])
        assert value["masterarn"] == _master_secret_arn(r) and value["engine"] == "postgres"
        assert value["username"] in ("plexichat_app", "plexichat_migrator") and value["password"]
    (sar,) = r.of_type(SAR_STACK)
    assert sar.inputs["applicationId"] == MULTI_USER_ROTATION
    assert sar.inputs["parameters"]["masterSecretArn"] == _master_secret_arn(r)
    function = computed_aws_outputs(SAR_STACK, sar.name, sar.inputs)["outputs"]["RotationLambdaARN"]
    rotations = {rot.inputs["secretId"]: rot.inputs for rot in r.of_type(ROTATION)}
    role_rotations = [  # the cache token's has a function of its own (tests/test_cache.py)
        rot for secret, rot in rotations.items() if "rotationLambdaArn" in rot and secret.startswith("database-roles-")
    ]
    assert len(role_rotations) == 2
    for rotation in role_rotations:
        assert rotation["rotationLambdaArn"] == function
        assert rotation["rotationRules"]["automaticallyAfterDays"] == 30
    # The master's own RDS-managed rotation stays.
    assert rotations[_master_secret_arn(r)]["rotationRules"]["automaticallyAfterDays"] == 30


def _break_glass(stack: str) -> str | None:
    """The break-glass role's access the stack file asks for (docs/admin-access.md), if any."""
    settings = stack_file(stack)["config"].get("plexichat:adminAccess", {}).get("breakGlass", {})
    return settings.get("access", "read") if settings.get("enabled") else None


def _policy(r, name: str) -> dict[str, dict]:
    policy = json.loads(r.one("aws:iam/rolePolicy:RolePolicy", name).inputs["policy"])
    return {s["Sid"]: s for s in policy["Statement"]}


@pytest.mark.parametrize("preview", [False, True])
def test_iam_mode_connects_as_exactly_each_role_and_has_no_passwords(preview):
    r = render_edited("prod", iam, preview)
    assert not r.of_type(SAR_STACK)
    assert not [s for s in r.of_type(SECRET) if "/plexichat_" in s.inputs["name"]]
    (config_map,) = [c for c in r.of_type("kubernetes:core/v1:ConfigMap") if c.name == "database-bootstrap-sql"]
    assert config_map.inputs["data"]["bootstrap.sql"] == bootstrap_sql(
        DB_NAME, iam=True, break_glass=_break_glass("prod")
    )
    assert "PASSWORD" not in _container(_job(r, "plexichat-db-bootstrap"))["command"][-1]
    for deployment in r.of_type(DEPLOYMENT):
        env = _env(deployment)
        assert env["PLEXICHAT_DATABASE_USER"] == {"name": "PLEXICHAT_DATABASE_USER", "value": "plexichat_app"}
        assert env["PLEXICHAT_DATABASE_IAM_AUTH"]["value"] == "true"
        assert "PLEXICHAT_DATABASE_PASSWORD" not in env
        assert deployment.inputs["metadata"]["annotations"]["secret.reloader.stakater.com/reload"] == (
            "plexichat-cache-auth"
        )
    (migration,) = [j for j in r.of_type(JOB) if j.inputs["metadata"]["name"].startswith("plexichat-migrate-")]
    assert _env(migration)["PLEXICHAT_DATABASE_USER"]["value"] == "plexichat_migrator"
    (account,) = [
        a for a in r.of_type("kubernetes:core/v1:ServiceAccount") if a.inputs["metadata"]["name"] == "plexichat-migrate"
    ]
    assert account.inputs["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] in (
        "arn:aws:iam::123456789012:role/app-access-migrator-role",
        "[unknown until apply]",
    )
    if preview:
        return  # resource ids are known after apply
    ids = {
        i.inputs["identifier"]: computed_aws_outputs(i.type, i.name, i.inputs)["resourceId"]
        for i in r.of_type("aws:rds/instance:Instance")
    }
    assert len(ids) == 3  # the primary and prod's two replicas
    user = "arn:aws:rds-db:us-east-1:123456789012:dbuser:{}/{}"
    app = _policy(r, "app-access-policy")["ConnectAsApp"]
    assert app["Action"] == "rds-db:connect"
    assert sorted(app["Resource"]) == sorted(user.format(i, "plexichat_app") for i in ids.values())
    migrator = _policy(r, "app-access-migrator-policy")
    assert list(migrator) == ["ConnectAsMigrator"]
    assert migrator["ConnectAsMigrator"]["Action"] == "rds-db:connect"
    assert migrator["ConnectAsMigrator"]["Resource"] == [user.format(ids["plexichat-prod"], "plexichat_migrator")]
