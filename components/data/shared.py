"""Building blocks every data component needs, written once: customer-managed KMS keys, AWS
service roles, encrypted log groups with a retention, cluster-only security groups, protection
options.

A data key is symmetric (the only kind that rotates), rotates yearly, waits the maximum 30 days
before deletion, and has an explicit key policy that only delegates to the account's IAM
policies (no `*` principal): who may use it is decided by IAM roles that name the key's ARN.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components.config.cluster import NetworkSettings


def _load_aws_modules(*names: str) -> None:
    """Import pulumi_aws submodules now, ignoring the warnings they raise *at import* about
    deprecated resource types that this program never uses (pulumi-aws 7.51's ec2, s3 and lambda_
    modules announce EncryptionControl, the *V2 bucket resources and MicrovmsImage that way). Using a deprecated type or
    argument still warns at construction, which the tests catch."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".* has been deprecated in favor of ", category=DeprecationWarning)
        for name in names:
            # Submodules load lazily, on the first non-introspection attribute: force it here.
            getattr(importlib.import_module(f"pulumi_aws.{name}"), "_force_load", None)


_load_aws_modules("ec2", "lambda_", "s3")

KEY_DELETION_WINDOW_DAYS = 30
"""The longest window KMS allows: a deleted key (and every backup it encrypts) can be saved."""


def data_key(
    name: str,
    description: str,
    account_id: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
    extra_statements: Sequence[dict] = (),
) -> aws.kms.Key:
    """A customer-managed key for one data store (or topic). Callers pass `key.arn` (never an
    alias ARN, which makes RDS and ElastiCache see a replacement on every update).
    `extra_statements` grant AWS services use of the key next to the account's IAM."""
    return aws.kms.Key(
        name,
        description=description,
        # Symmetric, single-region: both force a replacement, so they are constants.
        key_usage="ENCRYPT_DECRYPT",
        customer_master_key_spec="SYMMETRIC_DEFAULT",
        multi_region=False,
        enable_key_rotation=True,
        is_enabled=True,
        deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
        policy=pulumi.Output.json_dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DelegateToAccountIam",
                        "Effect": "Allow",
                        "Principal": {"AWS": pulumi.Output.concat("arn:aws:iam::", account_id, ":root")},
                        "Action": "kms:*",
                        "Resource": "*",  # in a key policy, "*" means this key
                    },
                    *extra_statements,
                ],
            }
        ),
        opts=opts,
    )


def service_role(name: str, service: str, managed_policy_arns: list[str], opts: pulumi.ResourceOptions) -> aws.iam.Role:
    """An IAM role that one AWS service assumes, with AWS's managed policies for that job."""
    role = aws.iam.Role(
        name,
        assume_role_policy=pulumi.Output.json_dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": service},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
        opts=opts,
    )
    for index, policy_arn in enumerate(managed_policy_arns):
        aws.iam.RolePolicyAttachment(f"{name}-policy-{index}", role=role.name, policy_arn=policy_arn, opts=opts)
    return role


def log_group(
    name: str, log_group_name: str, retention_days: int, key: aws.kms.Key, opts: pulumi.ResourceOptions
) -> aws.cloudwatch.LogGroup:
    """A log group created before the service writes to it, so it has a retention (a group the
    service creates itself keeps logs forever), encrypted with `key`. The key's policy must carry
    `logs_may_use_key` for this group's name, or CloudWatch Logs refuses the association."""
    return aws.cloudwatch.LogGroup(
        name, name=log_group_name, retention_in_days=retention_days, kms_key_id=key.arn, opts=opts
    )


def logs_may_use_key(region: str, account_id: pulumi.Input[str], log_group_names: Sequence[str]) -> dict:
    """A key policy statement letting CloudWatch Logs in `region` use the key for this account's
    log groups named by `log_group_names` (IAM ArnLike patterns: `*` and `?`), and no others:
    CloudWatch Logs names the log group in the encryption context of every call it makes."""
    return {
        "Sid": "CloudWatchLogsForTheseLogGroups",
        "Effect": "Allow",
        "Principal": {"Service": f"logs.{region}.amazonaws.com"},
        "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        "Resource": "*",
        "Condition": {
            "ArnLike": {
                "kms:EncryptionContext:aws:logs:arn": [
                    # Any partition: the regional service principal already pins it.
                    pulumi.Output.concat("arn:*:logs:", region, ":", account_id, ":log-group:", name)
                    for name in log_group_names
                ]
            }
        },
    }


def generated_secret(
    parent: pulumi.Resource | None,
    length: int,
    *,
    letters_and_digits: bool = True,
    each_kind: bool = False,
    exclude_characters: str | None = None,
) -> pulumi.Output[str]:
    """A value from Secrets Manager's generator, secret from the start: never in a stack file,
    only encrypted in the state. The generator answers differently on every run, so a caller
    keeps the first value (`ignore_changes`) or stores it and reads it back."""
    return pulumi.Output.secret(
        aws.secretsmanager.get_random_password_output(
            password_length=length,
            exclude_punctuation=letters_and_digits or None,
            require_each_included_type=each_kind or None,
            exclude_characters=exclude_characters,
            opts=pulumi.InvokeOutputOptions(parent=parent),
        ).random_password
    )


def with_protection(opts: pulumi.ResourceOptions, protect: bool, retain: bool = False) -> pulumi.ResourceOptions:
    """`protect` (Pulumi refuses to delete or replace) and optionally `retain_on_delete` (a
    removal from the program leaves the cloud resource in place), from explicit settings."""
    return pulumi.ResourceOptions.merge(
        opts, pulumi.ResourceOptions(protect=protect, retain_on_delete=retain and protect)
    )


def cluster_only_security_group(
    name: str,
    group_name: str,
    what: str,
    port: int,
    network: NetworkSettings,
    opts: pulumi.ResourceOptions,
) -> aws.ec2.SecurityGroup:
    """A security group admitting `port` from the cluster's nodes and nothing else. No egress
    rules: a data store never opens connections."""
    group = aws.ec2.SecurityGroup(
        name,
        name=group_name,
        description=f"{what}: {port} from the cluster only",
        vpc_id=network.vpc_id,
        opts=opts,
    )
    aws.vpc.SecurityGroupIngressRule(
        f"{name.removesuffix('-sg')}-from-cluster",
        security_group_id=group.id,
        referenced_security_group_id=network.cluster_security_group_id,
        ip_protocol="tcp",
        from_port=port,
        to_port=port,
        description=f"{what} from the cluster's nodes",
        opts=opts,
    )
    return group


def close_to_public(name: str, bucket: pulumi.Input[str], opts: pulumi.ResourceOptions) -> None:
    """No public ACL or policy can open the bucket, and ACLs are off: the bucket owner owns
    every object, and only IAM decides who reads it."""
    aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access",
        bucket=bucket,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=opts,
    )
    aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=opts,
    )
