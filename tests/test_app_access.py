"""Secrets into the cluster (IRSA + External Secrets), the workloads' data-tier environment, and
network access to the data ports."""

from __future__ import annotations

import json

import pytest

from plexictl.offline.mocks import computed_aws_outputs
from tests.conftest import STACKS, is_dr_standby, primary_of, rendered, stack_region

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SECRET_STORE = "kubernetes:external-secrets.io/v1:SecretStore"
EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"


def _walk_strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk_strings(v)
    elif isinstance(value, str):
        yield value


def _trust(stack: str, role: str) -> tuple[str, dict]:
    """The OIDC issuer and the condition block of a role's only trust statement."""
    inputs = rendered(stack).one("aws:iam/role:Role", role).inputs
    (statement,) = json.loads(inputs["assumeRolePolicy"])["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].startswith("arn:aws:iam::123456789012:oidc-provider/oidc.eks.")
    return statement["Principal"]["Federated"].split(":oidc-provider/")[1], statement["Condition"]


@pytest.mark.parametrize("stack", STACKS)
def test_each_role_trusts_only_its_service_accounts_through_the_clusters_oidc_provider(stack):
    account = "system:serviceaccount:plexichat:plexichat-"
    store, admin_store = f"{account}external-secrets", f"{account}db-admin-secrets"
    archiver = f"{account}backup-archiver"
    issuer, app = _trust(stack, "app-access-role")
    assert app == {
        "StringEquals": {f"{issuer}:aud": "sts.amazonaws.com"},
        "StringLike": {f"{issuer}:sub": f"{account}*"},
        # The prefix would admit the stores', the Jobs' and the archiver's accounts too: the app
        # role must not.
        "StringNotEquals": {
            f"{issuer}:sub": [
                store,
                admin_store,
                f"{account}migrate",
                f"{account}db-bootstrap",
                archiver,
                f"{account}break-glass",
            ]
        },
    }
    issuer, store_trust = _trust(stack, "app-access-store-role")
    assert store_trust == {"StringEquals": {f"{issuer}:aud": "sts.amazonaws.com", f"{issuer}:sub": store}}
    if not is_dr_standby(stack):  # a standby's replica has no master credential: no store for one
        issuer, admin_trust = _trust(stack, "database-admin-access-role")
        assert admin_trust == {"StringEquals": {f"{issuer}:aud": "sts.amazonaws.com", f"{issuer}:sub": admin_store}}
    issuer, archiver_trust = _trust(stack, "backup-archiver-access-role")
    assert archiver_trust == {"StringEquals": {f"{issuer}:aud": "sts.amazonaws.com", f"{issuer}:sub": archiver}}


def _policy(stack: str, name: str) -> dict[str, dict]:
    policy = json.loads(rendered(stack).one("aws:iam/rolePolicy:RolePolicy", name).inputs["policy"])
    for statement in policy["Statement"]:
        resources, actions = (v if isinstance(v, list) else [v] for v in (statement["Resource"], statement["Action"]))
        assert all(r.startswith("arn:aws:") for r in resources), statement
        assert not any(a.endswith("*") for a in actions), statement
    return {s["Sid"]: s for s in policy["Statement"]}


@pytest.mark.parametrize("stack", STACKS)
def test_each_role_is_least_privilege_with_no_wildcard_resource(stack):
    """The app's pods reach the backups only, and write `daily/` only; `monthly/` is the archiver's;
    the credentials are the store's to read. (What the policies allow together with the bucket
    policy: tests/test_backup_immutability.py.)"""
    r, region = rendered(stack), stack_region(stack)
    key_arn = {
        k.name: computed_aws_outputs(k.type, k.name, k.inputs, region)["arn"] for k in r.of_type("aws:kms/key:Key")
    }
    # A DR stack's backups and role secrets are its primary's, in this region (docs/dr.md).
    source = rendered(primary_of(stack)).outputs["drSource"] if primary_of(stack) else None
    if source:
        key_arn["backups-key"] = source["backupKeyArn"]
    app = _policy(stack, "app-access-policy")
    assert set(app) == {"ListBackupPrefixes", "ReadBackups", "WriteDailyBackups", "UseBackupKey"}
    bucket = f"arn:aws:s3:::{r.outputs['backups']['bucket']}"
    assert bucket.endswith(f"plexichat-{primary_of(stack) or stack}-backups-123456789012{'-dr' if source else ''}")
    assert app["ReadBackups"]["Resource"] == [f"{bucket}/daily/*", f"{bucket}/monthly/*", f"{bucket}/logs/*"]
    assert (app["WriteDailyBackups"]["Action"], app["WriteDailyBackups"]["Resource"]) == (
        "s3:PutObject",
        [f"{bucket}/daily/*"],
    )
    assert app["ListBackupPrefixes"]["Resource"] == [bucket]
    assert app["UseBackupKey"]["Resource"] == [key_arn["backups-key"]]
    archiver = _policy(stack, "backup-archiver-access-policy")
    assert set(archiver) == {"ListDailyAndMonthly", "ReadDaily", "WriteLockedMonthlyCopies", "UseBackupKey"}
    assert archiver["ReadDaily"]["Resource"] == [f"{bucket}/daily/*"]
    assert archiver["WriteLockedMonthlyCopies"]["Resource"] == [f"{bucket}/monthly/*"]
    assert archiver["UseBackupKey"]["Resource"] == [key_arn["backups-key"]]
    for role in (app, archiver):  # nobody here deletes a backup or lifts a lock
        actions = {a for s in role.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
        assert not {a for a in actions if "Delete" in a or "Bypass" in a or "LegalHold" in a}
    store = _policy(stack, "app-access-store-policy")
    assert set(store) == {"ReadAppCredentials", "DecryptCredentials"}
    secrets = f"arn:aws:secretsmanager:{region}:123456789012:secret:"
    # The roles' secrets, never the master's (the bootstrap's store alone reads that).
    owner = primary_of(stack) or stack
    assert set(store["ReadAppCredentials"]["Resource"]) == {
        f"{secrets}plexichat-{owner}/plexichat_app-AbCdEf",
        f"{secrets}plexichat-{owner}/plexichat_migrator-AbCdEf",
        f"{secrets}plexichat/{stack}/cache-auth-token-AbCdEf",
    }
    assert store["DecryptCredentials"]["Action"] == "kms:Decrypt"
    roles_key = source["roleSecretsKeyArn"] if source else key_arn["database-key"]
    assert set(store["DecryptCredentials"]["Resource"]) == {roles_key, key_arn["cache-key"]}
    if is_dr_standby(stack):
        return
    admin = _policy(stack, "database-admin-access-policy")
    assert set(admin) == {"ReadMasterCredential", "DecryptMasterCredential"}
    assert admin["ReadMasterCredential"]["Resource"] == [f"{secrets}rds!db-plexichat-{stack}-AbCdEf"]
    assert admin["DecryptMasterCredential"]["Resource"] == [key_arn["database-key"]]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("preview", [False, True])
def test_every_service_account_carries_the_role_for_its_job(stack, preview):
    r = rendered(stack, preview)
    accounts = r.of_type("kubernetes:core/v1:ServiceAccount")
    assert len(accounts) >= 3  # every track + the External Secrets account
    for account in accounts:
        name = account.inputs["metadata"]["name"]
        if name in ("plexichat-migrate", "plexichat-db-bootstrap"):  # no AWS API (password mode): no role
            assert "annotations" not in account.inputs["metadata"]
            continue
        role = {
            "plexichat-external-secrets": "app-access-store-role",
            "plexichat-db-admin-secrets": "database-admin-access-role",
            "plexichat-backup-archiver": "backup-archiver-access-role",
            "plexichat-break-glass": "break-glass-access-role",
        }.get(name, "app-access-role")
        assert account.inputs["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] in (
            f"arn:aws:iam::123456789012:role/{role}",
            "[unknown until apply]",
        )
        assert name.startswith("plexichat-")  # admitted by its role's trust


@pytest.mark.parametrize("stack", STACKS)
def test_external_secrets_bring_credentials_into_the_cluster(stack):
    r = rendered(stack)
    stores = {s.inputs["metadata"]["name"]: s.inputs["spec"] for s in r.of_type(SECRET_STORE)}
    assert {
        name: spec["provider"]["aws"]["auth"]["jwt"]["serviceAccountRef"]["name"] for name, spec in stores.items()
    } == {
        "plexichat-aws": "plexichat-external-secrets",
        **({} if is_dr_standby(stack) else {"plexichat-aws-db-admin": "plexichat-db-admin-secrets"}),
    }
    for spec in stores.values():
        assert spec["provider"]["aws"]["service"] == "SecretsManager"
        assert spec["provider"]["aws"]["region"] == stack_region(stack)
    secrets = {e.inputs["metadata"]["name"]: e.inputs["spec"] for e in r.of_type(EXTERNAL_SECRET)}
    store_of = {
        "plexichat-db-credentials": "plexichat-aws",
        "plexichat-db-migrator-credentials": "plexichat-aws",
        "plexichat-cache-auth": "plexichat-aws",
        "plexichat-db-master-credentials": "plexichat-aws-db-admin",
    }
    if is_dr_standby(stack):  # no master credential on a replica
        del store_of["plexichat-db-master-credentials"]
    if stack != "dev":  # where alerts route: components/observability/alerting.py
        store_of["plexichat-alert-receivers"] = "plexichat-aws"
    assert set(secrets) == set(store_of)
    for name, spec in secrets.items():
        assert spec["secretStoreRef"] == {"name": store_of[name], "kind": "SecretStore"}
        assert spec["target"]["name"] == name
        assert all(d["remoteRef"]["key"].startswith("arn:aws:secretsmanager:") for d in spec["data"])
    credentials = [name for name in store_of if name.startswith("plexichat-db-")]
    for name in credentials:
        assert [d["remoteRef"]["property"] for d in secrets[name]["data"]] == ["username", "password"]
    # No secret enters a manifest: the program declares no Kubernetes Secret at all.
    assert r.of_type("kubernetes:core/v1:Secret") == []


@pytest.mark.parametrize("stack", STACKS)
def test_web_and_worker_get_endpoints_as_values_and_credentials_by_reference(stack):
    r = rendered(stack)
    outputs = r.outputs
    for deployment in r.of_type(DEPLOYMENT):
        (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["PLEXICHAT_DATABASE_HOST"]["value"] == outputs["database"]["primaryEndpoint"]
        assert env["PLEXICHAT_DATABASE_READER_HOSTS"]["value"] == ",".join(outputs["database"]["readerEndpoints"])
        assert env["PLEXICHAT_REDIS_HOST"]["value"] == outputs["cache"]["primaryEndpoint"]
        assert env["PLEXICHAT_REDIS_TLS"]["value"] == "true"
        for name, secret, key in (
            ("PLEXICHAT_DATABASE_USER", "plexichat-db-credentials", "username"),
            ("PLEXICHAT_DATABASE_PASSWORD", "plexichat-db-credentials", "password"),
            ("PLEXICHAT_REDIS_AUTH_TOKEN", "plexichat-cache-auth", "token"),
        ):
            assert "value" not in env[name]
            assert env[name]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": key}


@pytest.mark.parametrize("stack", STACKS)
def test_a_changed_credential_rolls_every_deployment_that_reads_it(stack):
    """The reloader watches exactly the Secrets a Deployment's environment reads, and External
    Secrets re-reads them every 5 minutes: a rotated password reaches the pods within minutes."""
    r = rendered(stack)
    for deployment in r.of_type(DEPLOYMENT):
        template = deployment.inputs["spec"]["template"]
        read = {
            e["valueFrom"]["secretKeyRef"]["name"]
            for container in template["spec"]["containers"]
            for e in container.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        watched = deployment.inputs["metadata"]["annotations"]["secret.reloader.stakater.com/reload"]
        assert set(watched.split(",")) == read == {"plexichat-db-credentials", "plexichat-cache-auth"}
        # On the Deployment, not the pod template: adding it restarted no pod.
        assert not any(k.startswith("secret.reloader") for k in template["metadata"].get("annotations", {}))
    for external_secret in r.of_type("kubernetes:external-secrets.io/v1:ExternalSecret"):
        assert external_secret.inputs["spec"]["refreshInterval"] == "5m"


@pytest.mark.parametrize("stack", STACKS)
def test_data_ports_are_open_only_to_the_cluster_never_to_the_internet(stack):
    r = rendered(stack)
    rules = r.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert sorted(rule.inputs["fromPort"] for rule in rules) == [5432, 6379]
    for rule in rules:
        inputs = rule.inputs
        assert inputs["fromPort"] == inputs["toPort"] and inputs["ipProtocol"] == "tcp"
        assert inputs["referencedSecurityGroupId"].startswith("sg-")
        assert "cidrIpv4" not in inputs and "cidrIpv6" not in inputs
    for group in r.of_type("aws:ec2/securityGroup:SecurityGroup"):
        assert "ingress" not in group.inputs and "egress" not in group.inputs
    for resource in r.resources:
        if resource.type.startswith("aws:"):
            assert not any(s in ("0.0.0.0/0", "::/0") for s in _walk_strings(resource.inputs)), resource.name
