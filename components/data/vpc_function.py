"""A Lambda function of ours (`components/data/lambdas/`) inside the VPC's private subnets.

It sits in the cluster nodes' security group, the one source the data stores admit; its role
may make the function's network interfaces and do what `policy` says; it logs JSON into a log
group of its own, created first with a retention and encrypted with `key`. The cache token's
rotation and the restore tests' validator are such functions.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config.cluster import NetworkSettings
from components.data.shared import log_group, service_role

RUNTIME = "python3.13"
TIMEOUT_SECONDS = 900  # the most Lambda allows: both functions may wait minutes on an AWS change
VPC_ACCESS_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"


def log_group_name(function_name: str) -> str:
    """Where Lambda writes a function's logs (a key's policy must admit this group)."""
    return f"/aws/lambda/{function_name}"


@dataclass(frozen=True)
class VpcFunction:
    resource_name: str
    """The function's Pulumi name; its role, policy and log group are named `<prefix>-role` etc."""
    prefix: str
    function_name: str
    description: str
    source: pathlib.Path
    """The module with `handler`, shipped as its text (a change of it shows in the rendering)."""
    policy: pulumi.Input[str]
    environment: dict[str, pulumi.Input[str]]
    network: NetworkSettings
    log_retention_days: int
    key: aws.kms.Key


def vpc_function(spec: VpcFunction, opts: pulumi.ResourceOptions) -> aws.lambda_.Function:
    role = service_role(f"{spec.prefix}-role", "lambda.amazonaws.com", [], opts)
    vpc_access = aws.iam.RolePolicyAttachment(
        f"{spec.prefix}-vpc-access", role=role.name, policy_arn=VPC_ACCESS_POLICY, opts=opts
    )
    policy = aws.iam.RolePolicy(f"{spec.prefix}-policy", role=role.id, policy=spec.policy, opts=opts)
    logs = log_group(f"{spec.prefix}-log", log_group_name(spec.function_name), spec.log_retention_days, spec.key, opts)
    return aws.lambda_.Function(
        spec.resource_name,
        name=spec.function_name,
        description=spec.description,
        runtime=RUNTIME,
        architectures=["arm64"],
        handler=f"{spec.source.stem}.handler",
        code=pulumi.AssetArchive({spec.source.name: pulumi.StringAsset(spec.source.read_text())}),
        role=role.arn,
        timeout=TIMEOUT_SECONDS,
        environment=aws.lambda_.FunctionEnvironmentArgs(variables=spec.environment),
        vpc_config=aws.lambda_.FunctionVpcConfigArgs(
            subnet_ids=spec.network.private_subnet_ids,
            security_group_ids=[spec.network.cluster_security_group_id],
        ),
        logging_config=aws.lambda_.FunctionLoggingConfigArgs(
            log_format="JSON", log_group=logs.name, application_log_level="INFO", system_log_level="WARN"
        ),
        # After its permissions: Lambda checks at create that the role may make the network
        # interfaces of a function in a VPC.
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[vpc_access, policy])),
    )


def invoked_by_rule(
    function: aws.lambda_.Function,
    rule: aws.cloudwatch.EventRule,
    *,
    permission_name: str,
    target_name: str,
    opts: pulumi.ResourceOptions,
    payload: pulumi.Input[str] | None = None,
) -> aws.cloudwatch.EventTarget:
    """`rule` invokes `function` (with `payload` as its event, or the matched event): the
    permission for that one rule, then the target, which waits for it (a target created first
    would fail its first invocations)."""
    permission = aws.lambda_.Permission(
        permission_name,
        action="lambda:InvokeFunction",
        function=function.name,
        principal="events.amazonaws.com",
        source_arn=rule.arn,
        opts=opts,
    )
    return aws.cloudwatch.EventTarget(
        target_name,
        rule=rule.name,
        arn=function.arn,
        input=payload,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[permission])),
    )
