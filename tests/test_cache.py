"""The ElastiCache replication group per stack; how the app logs in (`cache.appAuth`): a token
that Secrets Manager owns and rotates, or IAM with the `default` user off; and the token's path as
a secret."""

from __future__ import annotations

import hashlib
import json

import pytest

from components.data.cache_auth_rotation import SOURCE
from components.data.lambdas.cache_auth_rotation import RETIRE_STEP
from plexictl import render
from plexictl.offline import is_secret
from plexictl.offline.mocks import computed_aws_outputs, computed_invoke_result
from plexictl.offline.stack_files import FAKE_SECRET
from tests.conftest import STACKS, render_edited, rendered, stack_region

GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
USER = "aws:elasticache/user:User"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
FUNCTION = "aws:lambda/function:Function"
PERMISSION = "aws:lambda/permission:Permission"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
# nodes, failover + multi-AZ; prod-dr: a cache of its own, prod's size (docs/dr.md)
EXPECTED = {"dev": (1, False), "staging": (2, True), "prod": (3, True), "prod-dr": (3, True)}
GENERATED = computed_invoke_result("aws:secretsmanager/getRandomPassword:getRandomPassword", {})["randomPassword"]
"""What the offline engine's Secrets Manager generator answers."""


def iam(config):
    config["plexichat:cache"]["appAuth"] = "iam"


def arn(resource) -> str:
    region = stack_region(resource.urn.split("::")[0].removeprefix("urn:pulumi:"))
    return computed_aws_outputs(resource.type, resource.name, resource.inputs, region)["arn"]


def _env(deployment) -> dict[str, dict]:
    (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


@pytest.mark.parametrize("stack", STACKS)
def test_group_is_encrypted_authenticated_and_fails_over_where_it_can(stack):
    group = rendered(stack).one(GROUP, "cache-group").inputs
    nodes, failover = EXPECTED[stack]
    assert group["engine"] == "valkey" and float(group["engineVersion"]) >= 7
    assert group["description"] and "replicationGroupDescription" not in group
    assert group["atRestEncryptionEnabled"] is True
    assert ":key/" in group["kmsKeyId"]
    assert group["transitEncryptionEnabled"] is True and group["transitEncryptionMode"] == "required"
    assert is_secret(group["authToken"])
    assert group["numCacheClusters"] == nodes
    assert group["automaticFailoverEnabled"] is failover
    assert group["multiAzEnabled"] is failover
    assert group["snapshotRetentionLimit"] >= 1 and group["snapshotWindow"]
    assert group["autoMinorVersionUpgrade"] is True
    assert group["port"] == 6379
    (log,) = group["logDeliveryConfigurations"]
    assert log["logType"] == "slow-log" and log["destinationType"] == "cloudwatch-logs"


@pytest.mark.parametrize("stack", STACKS)
def test_parameter_group_evicts_only_keys_with_a_ttl(stack):
    r = rendered(stack)
    params = r.one("aws:elasticache/parameterGroup:ParameterGroup", "cache-params").inputs
    assert params["family"] == "valkey8"
    assert {p["name"]: p["value"] for p in params["parameters"]}["maxmemory-policy"] == "volatile-lru"
    assert r.one(GROUP, "cache-group").inputs["parameterGroupName"] == params["name"]


# --- appAuth token (the default): Secrets Manager owns the token --------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_the_first_token_is_generated_and_then_belongs_to_the_rotation(stack):
    """No stack file holds the token: the group and the secret get one generated value, and the
    program never sets it again (else every `pulumi up` would undo the last rotation)."""
    r = rendered(stack)
    group = r.one(GROUP, "cache-group")
    value = r.one(SECRET_VERSION, "cache-auth-secret-value")
    assert is_secret(group.inputs["authToken"]) and is_secret(value.inputs["secretString"])
    assert group.inputs["authToken"]["value"] == value.inputs["secretString"]["value"] == GENERATED
    assert group.ignore_changes == ["authToken"] and value.ignore_changes == ["secretString"]
    assert group.inputs["authTokenUpdateStrategy"] == "ROTATE"
    assert "userGroupIds" not in group.inputs and not r.of_type(USER)


@pytest.mark.parametrize("stack", STACKS)
def test_the_token_rotates_every_30_days_by_the_function_in_this_repository(stack):
    r = rendered(stack)
    secret_arn = arn(r.one(SECRET, "cache-auth-secret"))
    function = r.one(FUNCTION, "cache-auth-rotation-function")
    function_arn = arn(function)
    (rotation,) = [x for x in r.of_type(ROTATION) if x.name.startswith("cache-")]
    assert rotation.inputs["rotationRules"] == {"automaticallyAfterDays": 30}
    assert rotation.inputs["rotationLambdaArn"] == function_arn
    assert rotation.inputs["rotateImmediately"] is True  # a token from before is replaced at once
    assert r.one(SECRET, "cache-auth-secret").urn in rotation.dependencies
    invoke = r.one(PERMISSION, "cache-auth-rotation-invoke-by-secretsmanager")
    assert invoke.urn in rotation.dependencies  # Secrets Manager may call it before it tries
    assert invoke.inputs["principal"] == "secretsmanager.amazonaws.com"
    assert invoke.inputs["sourceArn"] == secret_arn

    code = function.inputs
    assert code["runtime"] == "python3.13" and code["handler"] == "cache_auth_rotation.handler"
    assert code["code"] == {
        "assets": {"cache_auth_rotation.py": {"textSha256": hashlib.sha256(SOURCE.read_bytes()).hexdigest()}}
    }
    assert code["timeout"] == 900
    assert code["environment"]["variables"] == {
        "REPLICATION_GROUP_ID": f"plexichat-{stack}",
        "RETIRE_AFTER_SECONDS": "86400",
    }
    # Where the cache admits it: the private subnets, with the cluster's node security group.
    assert (
        code["vpcConfig"]["subnetIds"]
        == r.one("aws:elasticache/subnetGroup:SubnetGroup", "cache-subnets").inputs["subnetIds"]
    )
    admitted = r.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "cache-from-cluster")
    assert code["vpcConfig"]["securityGroupIds"] == [admitted.inputs["referencedSecurityGroupId"]]
    logs = r.one("aws:cloudwatch/logGroup:LogGroup", "cache-auth-rotation-log").inputs
    assert code["loggingConfig"]["logGroup"] == logs["name"] == f"/aws/lambda/plexichat-{stack}-auth-rotation"
    assert logs["kmsKeyId"] == arn(r.one("aws:kms/key:Key", "cache-key"))


@pytest.mark.parametrize("stack", STACKS)
def test_the_function_may_touch_this_secret_group_and_key_only(stack):
    r = rendered(stack)
    policy = json.loads(r.one(ROLE_POLICY, "cache-auth-rotation-policy").inputs["policy"])
    granted = {s["Sid"]: s["Resource"] for s in policy["Statement"]}
    assert granted == {
        "RotateTheTokenSecret": [arn(r.one(SECRET, "cache-auth-secret"))],
        "UseTheCacheKey": [arn(r.one("aws:kms/key:Key", "cache-key"))],
        "SetTheGroupsToken": [
            f"arn:aws:elasticache:{stack_region(stack)}:123456789012:replicationgroup:plexichat-{stack}"
        ],
    }
    assert not any("*" in action for s in policy["Statement"] for action in s["Action"])
    role = r.one("aws:iam/role:Role", "cache-auth-rotation-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}]
    # A function in a VPC needs its network interfaces, and Lambda checks that at create.
    vpc_access = r.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "cache-auth-rotation-vpc-access")
    assert vpc_access.inputs["policyArn"] == "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
    function = r.one(FUNCTION, "cache-auth-rotation-function")
    assert {vpc_access.urn, r.one(ROLE_POLICY, "cache-auth-rotation-policy").urn} <= set(function.dependencies)


@pytest.mark.parametrize("stack", STACKS)
def test_an_hourly_schedule_retires_the_previous_token(stack):
    r = rendered(stack)
    rule = r.one("aws:cloudwatch/eventRule:EventRule", "cache-auth-rotation-retire")
    assert rule.inputs["scheduleExpression"] == "rate(1 hour)" and rule.inputs["state"] == "ENABLED"
    retire = r.one("aws:cloudwatch/eventTarget:EventTarget", "cache-auth-rotation-retire-target")
    target = retire.inputs
    assert target["arn"] == arn(r.one(FUNCTION, "cache-auth-rotation-function"))
    assert json.loads(target["input"]) == {"Step": RETIRE_STEP, "SecretId": arn(r.one(SECRET, "cache-auth-secret"))}
    permission = r.one(PERMISSION, "cache-auth-rotation-invoke-by-schedule")
    invoke = permission.inputs
    assert invoke["principal"] == "events.amazonaws.com" and invoke["sourceArn"] == arn(rule)
    assert permission.urn in retire.dependencies  # no invocation before EventBridge may make it


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("preview", [False, True])
def test_the_token_reaches_aws_only_as_a_secret_and_no_manifest_holds_it(stack, preview, tmp_path):
    r = rendered(stack, preview)
    value = r.one(SECRET_VERSION, "cache-auth-secret-value")
    assert is_secret(value.inputs["secretString"])
    manifests = str([k.manifest() for k in r.kubernetes_objects()])
    assert FAKE_SECRET not in manifests and GENERATED not in manifests
    render.write(r, tmp_path)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert GENERATED not in path.read_text() and FAKE_SECRET not in path.read_text(), path


# --- appAuth iam: RBAC, no token at all ----------------------------------------------------------


def test_iam_mode_has_no_token_and_lets_only_the_apps_iam_user_in():
    r = render_edited("prod", iam)
    group = r.one(GROUP, "cache-group")
    assert "authToken" not in group.inputs
    # DELETE: a group that had a token in token mode drops it as it moves to the user group.
    assert group.inputs["authTokenUpdateStrategy"] == "DELETE" and group.ignore_changes == []
    assert group.inputs["userGroupIds"] == ["plexichat-prod-users"]
    users = {u.name: u for u in r.of_type(USER)}
    app, default = users["cache-app-user"], users["cache-default-user"]
    assert app.inputs["userId"] == app.inputs["userName"] == "plexichat-prod-app"  # IAM: the name is the id
    assert app.inputs["authenticationMode"] == {"type": "iam"} and app.inputs["accessString"].startswith("on ")
    assert default.inputs["userName"] == "default" and default.inputs["accessString"].split()[0] == "off"
    assert is_secret(default.inputs["authenticationMode"]) and default.ignore_changes == ["authenticationMode"]
    members = r.one("aws:elasticache/userGroup:UserGroup", "cache-users").inputs
    assert members["userGroupId"] == "plexichat-prod-users" and members["engine"] == app.inputs["engine"] == "valkey"
    assert members["userIds"] == [default.inputs["userId"], app.inputs["userId"]]
    # Nothing of token mode is left: no secret, no rotation, no ExternalSecret.
    assert not [s for s in r.of_type(SECRET) if s.name.startswith("cache-")]
    assert not [f for f in r.of_type(FUNCTION) if f.name.startswith("cache-")] and not [
        x for x in r.of_type(ROTATION) if x.name.startswith("cache-")
    ]
    assert "plexichat-cache-auth" not in [e.inputs["metadata"]["name"] for e in r.of_type(EXTERNAL_SECRET)]


def test_iam_mode_lets_the_app_role_connect_as_its_user_and_tells_the_app_how():
    r = render_edited("prod", iam)
    policy = json.loads(r.one(ROLE_POLICY, "app-access-policy").inputs["policy"])
    (connect,) = [s for s in policy["Statement"] if s["Sid"] == "ConnectToCache"]
    assert connect["Action"] == "elasticache:Connect"
    assert connect["Resource"] == [
        "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:plexichat-prod",
        "arn:aws:elasticache:us-east-1:123456789012:user:plexichat-prod-app",
    ]
    store = json.dumps(json.loads(r.one(ROLE_POLICY, "app-access-store-policy").inputs["policy"]))
    assert "cache-auth-token" not in store and arn(r.one("aws:kms/key:Key", "cache-key")) not in store
    for deployment in r.of_type(DEPLOYMENT):
        env = _env(deployment)
        assert "PLEXICHAT_REDIS_AUTH_TOKEN" not in env
        assert env["PLEXICHAT_REDIS_USER"]["value"] == "plexichat-prod-app"
        assert env["PLEXICHAT_REDIS_CACHE_NAME"]["value"] == "plexichat-prod"
        assert env["PLEXICHAT_REDIS_IAM_AUTH"]["value"] == "true"
        reloaded = deployment.inputs["metadata"]["annotations"]["secret.reloader.stakater.com/reload"]
        assert "plexichat-cache-auth" not in reloaded.split(",")


def test_the_token_mode_grants_no_cache_connect():
    policy = json.loads(rendered("prod").one(ROLE_POLICY, "app-access-policy").inputs["policy"])
    assert "ConnectToCache" not in {s["Sid"] for s in policy["Statement"]}
