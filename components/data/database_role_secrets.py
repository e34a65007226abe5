"""Password mode (`database.appAuth: password`): one Secrets Manager secret per database role,
rotated by AWS's multi-user PostgreSQL rotation function.

- `<identifier>/plexichat_app` and `<identifier>/plexichat_migrator`, encrypted with the
  database's key. Each holds what the multi-user rotation function needs (engine, host, port,
  dbname, username, password) plus `masterarn`, the RDS-managed master secret it rotates with.
- The first password comes from Secrets Manager's own generator (`GetRandomPassword`), as a
  Pulumi secret: it is never in a stack file and only encrypted in the state. After the first
  rotation the secret's value is the rotation function's, so the program ignores later changes
  to it (and the generator answers differently on every run).
- Rotation every `passwordRotationDays` by `SecretsManagerRDSPostgreSQLRotationMultiUser` from the
  Serverless Application Repository, one function for both secrets. Multi-user: the function
  alternates between the role and `<role>_clone` (made a member of the role, so it holds the same
  grants), so a pod with the previous credentials keeps working while the reloader rolls it.
- The function runs in the private subnets with the cluster's node security group: the one source
  the database admits (components/data/shared.py), and the nodes reach the Secrets Manager API.
The bootstrap Job (components/cluster/database_bootstrap_job.py) sets the roles' passwords from
these secrets. A DR primary has Secrets Manager keep a copy of each in its standby's region
(`replicas`), which the standby's pods read: the roles and their passwords reach its database
with the data, so one rotation here serves both (docs/dr.md "The standby stack").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config.cluster import NetworkSettings
from components.config.data import DatabaseSettings
from components.data.database import DB_NAME, PORT, Database
from components.data.database_roles import ROLES
from components.data.shared import generated_secret

ROTATION_APPLICATION = (
    "arn:aws:serverlessrepo:us-east-1:297356227824:applications/SecretsManagerRDSPostgreSQLRotationMultiUser"
)
ROTATION_APPLICATION_VERSION = "1.1.671"  # pinned: a new version is a reviewed change
# Characters the rotation function never puts in a password either: they break connection URLs.
EXCLUDED_CHARACTERS = " %+~`#$&*()|[]{}:;<>?!'/@\"\\"


@dataclass(frozen=True)
class RoleCredentials:
    """Where the database roles' secrets are, for the External Secrets store: the stack's own,
    or in a DR stack the primary's, replicated into this region (docs/dr.md)."""

    secret_arns: Mapping[str, pulumi.Input[str]]
    """Role name -> the ARN of its secret in this region."""
    key_arn: pulumi.Input[str]
    """The key that encrypts them there."""


@dataclass(frozen=True)
class SecretReplica:
    """A copy of every role secret in a second region (a DR primary's, for its standby)."""

    region: str
    key_arn: pulumi.Input[str]
    """The key that encrypts the copies there (the DR backups key, in that region)."""


@dataclass(frozen=True)
class DatabaseRoleSecretsArgs:
    settings: DatabaseSettings
    network: NetworkSettings
    database: Database
    region: str
    replica: SecretReplica | None = None
    """Where Secrets Manager keeps a copy of every role secret, in step with each rotation: the
    DR standby's pods log in with it (the roles and their passwords replicate with the data)."""


class DatabaseRoleSecrets(pulumi.ComponentResource):
    secrets: dict[str, aws.secretsmanager.Secret]
    """Role name -> its secret."""
    credentials: RoleCredentials

    def __init__(self, name: str, args: DatabaseRoleSecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:data:DatabaseRoleSecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.secrets = {role: _role_secret(name, role, args, child) for role in ROLES}
        self.credentials = RoleCredentials({role: s.arn for role, s in self.secrets.items()}, args.database.key.arn)
        function_arn = _rotation_function(name, args, child)
        for role, secret in self.secrets.items():
            aws.secretsmanager.SecretRotation(
                f"{name}-{role}-rotation",
                secret_id=secret.id,
                rotation_lambda_arn=function_arn,
                rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(
                    automatically_after_days=args.settings.password_rotation_days
                ),
                opts=child,
            )
        self.register_outputs({role: secret.arn for role, secret in self.secrets.items()})


def _role_secret(
    name: str, role: str, args: DatabaseRoleSecretsArgs, opts: pulumi.ResourceOptions
) -> aws.secretsmanager.Secret:
    db = args.database
    secret = aws.secretsmanager.Secret(
        f"{name}-{role}",
        name=f"{args.settings.identifier}/{role}",
        description=f"PostgreSQL role {role} of {args.settings.identifier} (multi-user rotation)",
        kms_key_id=db.key.arn,
        recovery_window_in_days=30,  # a deleted secret can be restored for 30 days
        replicas=[aws.secretsmanager.SecretReplicaArgs(region=args.replica.region, kms_key_id=args.replica.key_arn)]
        if args.replica
        else None,
        opts=opts,
    )
    # Secret from the start: the JSON that holds it is secret too.
    password = generated_secret(opts.parent, 32, letters_and_digits=False, exclude_characters=EXCLUDED_CHARACTERS)
    value = pulumi.Output.json_dumps(
        {
            "engine": "postgres",
            "host": db.address,
            "port": PORT,
            "dbname": DB_NAME,
            "username": role,
            "password": password,
            "masterarn": db.master_secret_arn,
        }
    )
    aws.secretsmanager.SecretVersion(
        f"{name}-{role}-initial",
        secret_id=secret.id,
        secret_string=value,
        # The initial value only: rotation owns the password from then on, and the generator
        # answers differently on every run.
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(ignore_changes=["secretString"])),
    )
    return secret


def _rotation_function(name: str, args: DatabaseRoleSecretsArgs, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    """AWS's multi-user PostgreSQL rotation function, deployed from the Serverless Application
    Repository into the VPC (see the module docstring for its network)."""
    db = args.database
    function_name = f"{args.settings.identifier[:50]}-role-rotation"  # Lambda allows 64 characters
    stack = aws.serverlessrepository.CloudFormationStack(
        f"{name}-rotation-function",
        name=function_name,
        application_id=ROTATION_APPLICATION,
        semantic_version=ROTATION_APPLICATION_VERSION,
        # The application creates the function's role and the permission Secrets Manager uses.
        capabilities=["CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"],
        parameters={
            "endpoint": f"https://secretsmanager.{args.region}.amazonaws.com",
            "functionName": function_name,
            "vpcSubnetIds": ",".join(args.network.private_subnet_ids),
            "vpcSecurityGroupIds": args.network.cluster_security_group_id,
            "excludeCharacters": EXCLUDED_CHARACTERS,
            "kmsKeyArn": db.key.arn,
            "masterSecretArn": db.master_secret_arn,
            "masterSecretKmsKeyArn": db.key.arn,
        },
        opts=opts,
    )
    return stack.outputs.apply(lambda outputs: outputs["RotationLambdaARN"])
