"""Monthly restore tests of the database's recovery points (runbook: monthly restore tests), with
a check of the restored data (components/data/lambdas/restore_validator.py).

- An AWS Backup restore testing plan, `plexichat_<stack>_database` (letters, digits and `_`
  only: components/naming.py), picks the newest snapshot recovery point of the given vaults once
  a month, and its selection restores the database's recovery points (RDS) as a new instance
  `awsbackup-restore-test-...`: in the database's own subnet group, security group (PostgreSQL
  from the cluster's nodes only) and parameter group (TLS only), on its instance class, never
  public, single-AZ. So it lands in the private subnets, and the time it takes is what a real
  restore would take. AWS Backup deletes it after the validation window.
- The validator: when the restore job completes, EventBridge calls a function that sets a new
  master password on the restored instance, runs a check query as that user and reports the
  result with PutRestoreValidationResult. Placement as for the database roles' rotation function
  (components/data/database_role_secrets.py): the private subnets, with the cluster's node
  security group, the one source the database's security group admits. It calls the AWS Backup
  and RDS APIs from there, like the nodes do: through a NAT gateway or interface endpoints.
- The function may describe restore jobs and report their results (neither supports resource
  scoping: any job, in this region only), and describe and modify only `awsbackup-restore-test-*`
  instances. Its logs go to a log group encrypted with the database's key, which admits it.

A failed restore job raises the data path's restore alarm (components/observability/
data_path_alarms.py), a failed check the function's Errors alarm.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config.cluster import NetworkSettings
from components.data.database import DB_NAME, Database
from components.data.lambdas import restore_validator as function_code
from components.data.shared import service_role
from components.data.vpc_function import VpcFunction, invoked_by_rule, vpc_function
from components.naming import RESTORE_TEST_INSTANCE_PREFIX, restore_testing_name, restore_validator_name

SCHEDULE = "cron(0 8 2 * ? *)"
"""08:00 UTC on the 2nd: a day after the monthly recovery point, after that day's daily one."""
START_WINDOW_HOURS = 8
SELECTION_WINDOW_DAYS = 7
"""The newest recovery point of the last week: without one, no test runs (and the missing
recovery point alarm has long fired)."""
VALIDATION_WINDOW_HOURS = 2
"""How long the restored instance is kept for the check: the function needs minutes; the rest
leaves time to run it again by hand (docs/runbook.md)."""
SELECTION_NAME = "database"
RESTORES_POLICY = "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores"
SOURCE = pathlib.Path(function_code.__file__)


@dataclass(frozen=True)
class RestoreTestingArgs:
    stack: str
    region: str
    account_id: pulumi.Input[str]
    database: Database
    """The database whose network, groups, class and key a restored copy gets."""
    database_identifier: str
    """Its identifier (database.identifier): the validator is named after it."""
    network: NetworkSettings
    vault_arns: Sequence[pulumi.Input[str]]
    """The vaults (in this region) whose newest recovery point is restored."""
    protected_resource_arns: Sequence[pulumi.Input[str]]
    """The RDS instances whose recovery points are restored (their ARNs where they were backed up)."""
    log_retention_days: int


class RestoreTesting(pulumi.ComponentResource):
    plan: aws.backup.RestoreTestingPlan
    validator: aws.lambda_.Function

    def __init__(self, name: str, args: RestoreTestingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:data:RestoreTesting", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        try:
            plan_name = restore_testing_name(args.stack, "database")
        except ValueError as error:  # the stack's name: the operator's choice, not a program error
            raise pulumi.RunError(str(error)) from None
        self.plan = aws.backup.RestoreTestingPlan(
            f"{name}-plan",
            name=plan_name,
            schedule_expression=SCHEDULE,
            schedule_expression_timezone="Etc/UTC",
            start_window_hours=START_WINDOW_HOURS,
            recovery_point_selection=aws.backup.RestoreTestingPlanRecoveryPointSelectionArgs(
                algorithm="LATEST_WITHIN_WINDOW",
                include_vaults=list(args.vault_arns),
                recovery_point_types=["SNAPSHOT"],
                selection_window_days=SELECTION_WINDOW_DAYS,
            ),
            opts=child,
        )
        self.selection = _selection(name, args, self.plan, child)
        self.validator = _validator(name, args, self.plan, child)
        self.register_outputs({"plan": self.plan.name, "validator": self.validator.name})


def _selection(
    name: str, args: RestoreTestingArgs, plan: aws.backup.RestoreTestingPlan, opts: pulumi.ResourceOptions
) -> aws.backup.RestoreTestingSelection:
    """The database's recovery points, restored where the database lives. The override keys are
    those AWS Backup lists as overridable for Amazon RDS instances ("Restore testing inferred
    metadata"); list values are JSON arrays in a string."""
    primary = args.database.primary
    role = service_role(f"{name}-role", "backup.amazonaws.com", [RESTORES_POLICY], opts)
    return aws.backup.RestoreTestingSelection(
        f"{name}-selection",
        name=SELECTION_NAME,  # AWS Backup's rule for the plan's name holds here too
        restore_testing_plan_name=plan.name,
        protected_resource_type="RDS",
        protected_resource_arns=list(args.protected_resource_arns),
        iam_role_arn=role.arn,
        validation_window_hours=VALIDATION_WINDOW_HOURS,
        restore_metadata_overrides={
            "dbInstanceClass": primary.instance_class,
            "dbSubnetGroupName": primary.db_subnet_group_name,
            "vpcSecurityGroupIds": pulumi.Output.json_dumps([args.database.security_group.id]),
            "dbParameterGroupName": primary.parameter_group_name,
            "publiclyAccessible": "false",
            "multiAz": "false",
        },
        opts=opts,
    )


def _validator(
    name: str, args: RestoreTestingArgs, plan: aws.backup.RestoreTestingPlan, opts: pulumi.ResourceOptions
) -> aws.lambda_.Function:
    """The function that checks a restored copy, and the rule that calls it."""
    function_name = restore_validator_name(args.database_identifier)
    function = vpc_function(
        VpcFunction(
            resource_name=f"{name}-validator",
            prefix=f"{name}-validator",
            function_name=function_name,
            description="Checks the data of a restore test: Alembic revision of the restored copy",
            source=SOURCE,
            policy=_policy(args),
            environment={"RESTORE_TESTING_PLAN_ARN": plan.arn, "DATABASE_NAME": DB_NAME},
            network=args.network,
            log_retention_days=args.log_retention_days,
            key=args.database.key,
        ),
        opts,
    )
    # A retry would reset the password and report a second verdict: a failure is final.
    aws.lambda_.FunctionEventInvokeConfig(
        f"{name}-validator-no-retry", function_name=function.name, maximum_retry_attempts=0, opts=opts
    )
    _trigger(name, plan, function, opts)
    return function


def _trigger(
    name: str, plan: aws.backup.RestoreTestingPlan, function: aws.lambda_.Function, opts: pulumi.ResourceOptions
) -> None:
    """Every restore job of the plan that completes (AWS Backup sends `restoreTestingPlanArn`
    with the jobs of a restore testing plan) calls the function."""
    rule = aws.cloudwatch.EventRule(
        f"{name}-completed",
        description="A restore test of the database completed: check the restored data",
        event_pattern=pulumi.Output.json_dumps(
            {
                "source": ["aws.backup"],
                "detail-type": ["Restore Job State Change"],
                "detail": {"status": ["COMPLETED"], "restoreTestingPlanArn": [plan.arn]},
            }
        ),
        state="ENABLED",
        opts=opts,
    )
    invoked_by_rule(
        function,
        rule,
        permission_name=f"{name}-invoke-by-rule",
        target_name=f"{name}-completed-target",
        opts=opts,
    )


def _policy(args: RestoreTestingArgs) -> pulumi.Output[str]:
    restored = pulumi.Output.concat(
        "arn:aws:rds:", args.region, ":", args.account_id, ":db:", RESTORE_TEST_INSTANCE_PREFIX, "*"
    )
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    # Neither action supports resource-level permissions: any job, this region only.
                    "Sid": "ReadAndReportRestoreJobs",
                    "Effect": "Allow",
                    "Action": ["backup:DescribeRestoreJob", "backup:PutRestoreValidationResult"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:RequestedRegion": args.region}},
                },
                {
                    "Sid": "SetThePasswordOfRestoredCopiesOnly",
                    "Effect": "Allow",
                    "Action": ["rds:DescribeDBInstances", "rds:ModifyDBInstance"],
                    "Resource": [restored],
                },
            ],
        }
    )
