"""The rotation of a cache's AUTH token (`cache.appAuth: token`): every ROTATION_DAYS, without a
refused client, by the function in components/data/lambdas/cache_auth_rotation.py.

- Secrets Manager calls the function for each rotation step: it adds the new token next to the
  old one on the replication group (ROTATE), checks that the group accepts it, and makes it the
  secret's current value. External Secrets brings it into the cluster within
  `irsa.secretRefreshInterval` and the reloader rolls the pods.
- An hourly EventBridge rule calls it to retire the previous token (SET) once the current one is
  RETIRE_AFTER old: every pod has rolled to the new one long before.
- The function's role may read and write this secret and its staging labels, describe and modify
  this replication group, and use the cache's key; nothing else (plus the network interfaces a
  function in a VPC needs, AWS's managed policy for that). Its logs go to a log group encrypted
  with the cache's key, with the slow log's retention.
- Placement, as for the database roles' rotation function (components/data/database_role_secrets.py):
  the private subnets, with the cluster's node security group, the one source the cache admits,
  so testSecret can log in with the new token. The function calls the Secrets Manager and
  ElastiCache APIs from there, like the nodes do: through a NAT gateway or interface endpoints.
"""

from __future__ import annotations

import datetime
import pathlib
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config.cluster import NetworkSettings
from components.data.lambdas import cache_auth_rotation as function_code
from components.data.vpc_function import VpcFunction, invoked_by_rule, vpc_function
from components.data.vpc_function import log_group_name as vpc_function_log_group

ROTATION_DAYS = 30
"""The runbook's rotation period for every credential."""
RETIRE_AFTER = datetime.timedelta(hours=24)
"""How long both tokens work after a rotation. The app needs the refresh interval (minutes) and a
rolling restart; a day leaves room for a stuck rollout to be noticed and fixed."""
RETIRE_SCHEDULE = "rate(1 hour)"
SOURCE = pathlib.Path(function_code.__file__)


def function_name(group_id: str) -> str:
    """The rotation function of replication group `group_id` (at most 40 + 14 of Lambda's 64)."""
    return f"{group_id}-auth-rotation"


def log_group_name(group_id: str) -> str:
    """The function's log group, which the cache key's policy must admit for CloudWatch Logs."""
    return vpc_function_log_group(function_name(group_id))


@dataclass(frozen=True)
class CacheAuthRotationArgs:
    group_id: str
    group: aws.elasticache.ReplicationGroup
    secret: aws.secretsmanager.Secret
    """The secret that holds the group's AUTH token (its value is the token)."""
    key: aws.kms.Key
    """The cache's key: it encrypts the secret and the function's logs."""
    network: NetworkSettings
    log_retention_days: int


class CacheAuthRotation(pulumi.ComponentResource):
    function: aws.lambda_.Function
    rotation: aws.secretsmanager.SecretRotation

    def __init__(self, name: str, args: CacheAuthRotationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:data:CacheAuthRotation", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.function = vpc_function(
            VpcFunction(
                resource_name=f"{name}-function",
                prefix=name,
                function_name=function_name(args.group_id),
                description="Rotates the cache's AUTH token: ROTATE, test, make current; SET after a day",
                source=SOURCE,
                policy=_policy(args),
                environment={
                    "REPLICATION_GROUP_ID": args.group.replication_group_id,
                    "RETIRE_AFTER_SECONDS": str(int(RETIRE_AFTER.total_seconds())),
                },
                network=args.network,
                log_retention_days=args.log_retention_days,
                key=args.key,
            ),
            child,
        )

        by_secrets_manager = aws.lambda_.Permission(
            f"{name}-invoke-by-secretsmanager",
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="secretsmanager.amazonaws.com",
            source_arn=args.secret.arn,
            opts=child,
        )
        self.rotation = aws.secretsmanager.SecretRotation(
            f"{name}-schedule",
            secret_id=args.secret.id,
            rotation_lambda_arn=self.function.arn,
            rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(automatically_after_days=ROTATION_DAYS),
            # Rotate once when rotation is turned on: a token from before (a stack file's
            # `redisAuthToken`, whose ciphertext is in git) is replaced at the first deploy.
            rotate_immediately=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[by_secrets_manager]),
        )
        _retire_schedule(name, args, self.function, child)
        self.register_outputs({"function_arn": self.function.arn})


def _policy(args: CacheAuthRotationArgs) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "RotateTheTokenSecret",
                    "Effect": "Allow",
                    "Action": [
                        "secretsmanager:DescribeSecret",
                        "secretsmanager:GetSecretValue",
                        "secretsmanager:ListSecretVersionIds",
                        "secretsmanager:PutSecretValue",
                        "secretsmanager:UpdateSecretVersionStage",
                    ],
                    "Resource": [args.secret.arn],
                },
                {
                    "Sid": "UseTheCacheKey",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": [args.key.arn],
                },
                {
                    "Sid": "SetTheGroupsToken",
                    "Effect": "Allow",
                    "Action": ["elasticache:DescribeReplicationGroups", "elasticache:ModifyReplicationGroup"],
                    "Resource": [args.group.arn],
                },
            ],
        }
    )


def _retire_schedule(
    name: str, args: CacheAuthRotationArgs, function: aws.lambda_.Function, opts: pulumi.ResourceOptions
) -> None:
    """Every hour: retire the previous token if the current one is RETIRE_AFTER old."""
    rule = aws.cloudwatch.EventRule(
        f"{name}-retire",
        name=f"{function_name(args.group_id)}-retire",
        description="Retires the cache's previous AUTH token a day after a rotation",
        schedule_expression=RETIRE_SCHEDULE,
        state="ENABLED",
        opts=opts,
    )
    invoked_by_rule(
        function,
        rule,
        permission_name=f"{name}-invoke-by-schedule",
        target_name=f"{name}-retire-target",
        payload=pulumi.Output.json_dumps({"Step": function_code.RETIRE_STEP, "SecretId": args.secret.arn}),
        opts=opts,
    )
