"""Secrets into the cluster (IRSA + External Secrets), the workloads' data-tier environment, and
network access to the data ports."""

from __future__ import annotations

import json

import pytest

from tests.conftest import STACKS, rendered

DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def _walk_strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk_strings(v)
    elif isinstance(value, str):
        yield value


@pytest.mark.parametrize("stack", STACKS)
def test_role_trusts_only_the_apps_service_accounts_through_the_clusters_oidc_provider(stack):
    role = rendered(stack).one("aws:iam/role:Role", "app-access-role").inputs
    (statement,) = json.loads(role["assumeRolePolicy"])["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].startswith("arn:aws:iam::123456789012:oidc-provider/oidc.eks.")
    issuer = statement["Principal"]["Federated"].split(":oidc-provider/")[1]
    assert statement["Condition"]["StringEquals"] == {f"{issuer}:aud": "sts.amazonaws.com"}
    assert statement["Condition"]["StringLike"] == {
        f"{issuer}:sub": "system:serviceaccount:plexichat:plexichat-*"
    }


@pytest.mark.parametrize("stack", STACKS)
def test_app_policy_is_least_privilege_with_no_wildcard_resource(stack):
    policy = json.loads(rendered(stack).one("aws:iam/rolePolicy:RolePolicy", "app-access-policy").inputs["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    for statement in policy["Statement"]:
        resources, actions = (
            v if isinstance(v, list) else [v] for v in (statement["Resource"], statement["Action"])
        )
        assert all(r.startswith("arn:aws:") for r in resources), statement
        assert not any(a.endswith("*") for a in actions), statement
    assert set(by_sid["ReadOwnSecrets"]["Resource"]) == {
        f"arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-plexichat-{stack}-AbCdEf",
        f"arn:aws:secretsmanager:us-east-1:123456789012:secret:plexichat/{stack}/cache-auth-token-AbCdEf",
    }
    bucket = f"arn:aws:s3:::plexichat-{stack}-backups-123456789012"
    assert by_sid["ReadWriteBackups"]["Resource"] == [f"{bucket}/daily/*", f"{bucket}/monthly/*", f"{bucket}/logs/*"]
    assert by_sid["ListBackupPrefixes"]["Resource"] == [bucket]
    assert len(by_sid["UseOwnKeys"]["Resource"]) == 3


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("preview", [False, True])
def test_every_app_service_account_carries_the_role(stack, preview):
    r = rendered(stack, preview)
    accounts = r.of_type("kubernetes:core/v1:ServiceAccount")
    assert len(accounts) >= 3  # every track + the External Secrets account
    for account in accounts:
        annotations = account.inputs["metadata"]["annotations"]
        assert annotations["eks.amazonaws.com/role-arn"] in (
            "arn:aws:iam::123456789012:role/app-access-role", "[unknown until apply]"
        )
        assert account.inputs["metadata"]["name"].startswith("plexichat-")  # admitted by the trust


@pytest.mark.parametrize("stack", STACKS)
def test_external_secrets_bring_credentials_into_the_cluster(stack):
    r = rendered(stack)
    (store,) = r.of_type("kubernetes:external-secrets.io/v1:SecretStore")
    aws = store.inputs["spec"]["provider"]["aws"]
    assert aws["service"] == "SecretsManager" and aws["region"] == "us-east-1"
    assert aws["auth"]["jwt"]["serviceAccountRef"]["name"] == "plexichat-external-secrets"
    secrets = {e.inputs["metadata"]["name"]: e.inputs["spec"] for e in
               r.of_type("kubernetes:external-secrets.io/v1:ExternalSecret")}
    assert set(secrets) == {"plexichat-db-credentials", "plexichat-cache-auth"}
    for name, spec in secrets.items():
        assert spec["secretStoreRef"] == {"name": "plexichat-aws", "kind": "SecretStore"}
        assert spec["target"]["name"] == name
        assert all(d["remoteRef"]["key"].startswith("arn:aws:secretsmanager:") for d in spec["data"])
    assert [d["remoteRef"]["property"] for d in secrets["plexichat-db-credentials"]["data"]] == ["username", "password"]
    # The app's credentials never enter a manifest: no Kubernetes Secret but the Alertmanager
    # receivers' (built from Pulumi secrets; see components/alerting.py) is declared.
    assert [s.inputs["metadata"]["name"] for s in r.of_type("kubernetes:core/v1:Secret")] in (
        [], ["plexichat-alert-receivers"],
    )


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
            for container in template["spec"]["containers"] for e in container.get("env", [])
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
