"""Monthly restore tests (components/data/restore_testing.py): the plan's name, the plan and
selection every stack gets, where a restored copy lands, the validator's permissions and
trigger; then the validator itself (components/data/lambdas/restore_validator.py) against
botocore's Stubber (moto has no restore testing API: not PutRestoreValidationResult, not
DescribeRestoreJob's CreatedBy), and its check query against a real PostgreSQL."""

from __future__ import annotations

import datetime
import json

import boto3
import pulumi
import pytest
from alembic import command
from alembic.config import Config
from botocore.stub import ANY, Stubber
from hypothesis import given
from hypothesis import strategies as st

from components.config.parse import parse_stack_config
from components.data import restore_testing
from components.data.database import DB_NAME, USERNAME, Database, DatabaseArgs
from components.data.database_roles import SCHEMA
from components.data.lambdas import restore_validator as code
from components.data.lambdas.restore_validator import LoginRefused, QueryFailed, ValidationFailed, Validator
from components.data.restore_testing import RestoreTesting, RestoreTestingArgs
from components.naming import BACKUP_TESTING_NAME, RESTORE_TEST_INSTANCE_PREFIX, restore_testing_name
from plexictl.offline import run, stack_config
from plexictl.offline.mocks import computed_aws_outputs
from tests.conftest import rendered, stack_file
from tests.postgres_server import PostgresServer, postgres_fixture  # noqa: F401  (the `postgres` fixture)
from tests.test_database_roles import ALEMBIC_DIR, MIGRATOR_ROLE, PASSWORDS, bootstrap

PLAN = "aws:backup/restoreTestingPlan:RestoreTestingPlan"
SELECTION = "aws:backup/restoreTestingSelection:RestoreTestingSelection"
FUNCTION = "aws:lambda/function:Function"

# --- the plan's name --------------------------------------------------------------------------


def test_a_stack_name_becomes_a_valid_plan_name():
    assert restore_testing_name("prod", "database") == "plexichat_prod_database"
    assert restore_testing_name("prod-dr", "database") == "plexichat_prod_dr_database"
    assert restore_testing_name("eu.prod-2", "database") == "plexichat_eu_prod_2_database"
    assert BACKUP_TESTING_NAME.match(restore_testing.SELECTION_NAME)


STACK_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", min_size=1)


@given(STACK_NAMES)
def test_every_pulumi_stack_name_converts_or_is_refused_for_its_length(stack):
    try:
        name = restore_testing_name(stack, "database")
    except ValueError as error:
        assert len(f"plexichat_{stack}_database") > 50
        assert repr(stack) in str(error) and "letters, digits and underscores" in str(error)
    else:
        assert BACKUP_TESTING_NAME.match(name)


def test_a_stack_whose_name_makes_no_valid_plan_name_is_refused_as_a_config_error():
    stack = "production-eu-west-1-with-a-very-long-name"
    config, secret_keys = stack_config("prod", stack_file=stack_file("prod"))
    settings = parse_stack_config(config, "prod", secret_keys)

    def program():
        database = Database(
            "database", DatabaseArgs(settings.database, settings.network, "123456789012", "us-east-1", False)
        )
        RestoreTesting(
            "restore-tests",
            RestoreTestingArgs(
                stack=stack,
                region="us-east-1",
                account_id="123456789012",
                database=database,
                database_identifier=settings.database.identifier,
                network=settings.network,
                vault_arns=["arn:aws:backup:us-east-1:123456789012:backup-vault:v"],
                protected_resource_arns=[database.primary.arn],
                log_retention_days=90,
            ),
        )

    with pytest.raises(pulumi.RunError, match=rf"from stack '{stack}'.*at most 50 characters"):
        run(program, stack)


# --- what every stack gets --------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_plan_restores_the_newest_snapshot_of_the_stacks_vault_monthly(stack):
    r = rendered(stack)
    plan = r.one(PLAN, "restore-tests-plan").inputs
    assert plan["name"] == restore_testing_name(stack, "database")
    assert plan["scheduleExpression"] == "cron(0 8 2 * ? *)"  # monthly, the 2nd at 08:00
    assert plan["scheduleExpressionTimezone"] == "Etc/UTC"
    vault = r.one("aws:backup/vault:Vault", "backups-vault")
    selection = plan["recoveryPointSelection"]
    assert selection["includeVaults"] == [computed_aws_outputs(vault.type, vault.name, vault.inputs)["arn"]]
    assert (selection["algorithm"], selection["recoveryPointTypes"]) == ("LATEST_WITHIN_WINDOW", ["SNAPSHOT"])


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_a_restored_copy_lands_where_the_database_lives_private_and_tls_only(stack):
    r = rendered(stack)
    primary = r.one("aws:rds/instance:Instance", "database-primary").inputs
    selection = r.one(SELECTION, "restore-tests-selection").inputs
    assert selection["protectedResourceType"] == "RDS"
    assert selection["protectedResourceArns"] == [f"arn:aws:rds:us-east-1:123456789012:db:{primary['identifier']}"]
    assert selection["restoreTestingPlanName"] == restore_testing_name(stack, "database")
    assert selection["validationWindowHours"] == restore_testing.VALIDATION_WINDOW_HOURS
    assert selection["restoreMetadataOverrides"] == {
        "dbInstanceClass": primary["instanceClass"],
        "dbSubnetGroupName": primary["dbSubnetGroupName"],
        "vpcSecurityGroupIds": json.dumps(primary["vpcSecurityGroupIds"]),
        "dbParameterGroupName": primary["parameterGroupName"],
        "publiclyAccessible": "false",
        "multiAz": "false",
    }
    role = next(x for x in r.resources if x.urn == _role_urn(r, selection["iamRoleArn"]))
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "backup.amazonaws.com"
    }


def _role_urn(r, arn: str) -> str:
    return next(x.urn for x in r.of_type("aws:iam/role:Role") if arn.endswith(f"/{x.name}"))


def test_the_validator_runs_in_the_private_subnets_with_the_node_group_and_no_retry():
    r = rendered("prod")
    function = r.one(FUNCTION, "restore-tests-validator").inputs
    network = json.loads(stack_config("prod", stack_file=stack_file("prod"))[0]["plexichat:network"])
    assert function["vpcConfig"] == {
        "subnetIds": network["privateSubnetIds"],
        "securityGroupIds": [network["clusterSecurityGroupId"]],
    }
    assert function["name"] == "plexichat-prod-restore-validator"
    assert function["handler"] == "restore_validator.handler" and function["timeout"] == 900
    plan = r.one(PLAN, "restore-tests-plan")
    plan_arn = computed_aws_outputs(plan.type, plan.name, plan.inputs)["arn"]
    assert function["environment"]["variables"] == {"RESTORE_TESTING_PLAN_ARN": plan_arn, "DATABASE_NAME": DB_NAME}
    no_retry = r.one(
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", "restore-tests-validator-no-retry"
    )
    assert no_retry.inputs["maximumRetryAttempts"] == 0
    logs = r.one("aws:cloudwatch/logGroup:LogGroup", "restore-tests-validator-log").inputs
    assert logs["name"] == "/aws/lambda/plexichat-prod-restore-validator"
    key = r.one("aws:kms/key:Key", "database-key")
    assert logs["kmsKeyId"] == computed_aws_outputs(key.type, key.name, key.inputs)["arn"]  # the database's key


def test_only_a_completed_job_of_the_plan_calls_the_validator():
    r = rendered("prod")
    plan = r.one(PLAN, "restore-tests-plan")
    plan_arn = computed_aws_outputs(plan.type, plan.name, plan.inputs)["arn"]
    rule = r.one("aws:cloudwatch/eventRule:EventRule", "restore-tests-completed")
    assert json.loads(rule.inputs["eventPattern"]) == {
        "source": ["aws.backup"],
        "detail-type": ["Restore Job State Change"],
        "detail": {"status": ["COMPLETED"], "restoreTestingPlanArn": [plan_arn]},
    }
    target = r.one("aws:cloudwatch/eventTarget:EventTarget", "restore-tests-completed-target").inputs
    assert target["arn"].endswith(":function:plexichat-prod-restore-validator")
    permission = r.one("aws:lambda/permission:Permission", "restore-tests-invoke-by-rule").inputs
    assert permission["principal"] == "events.amazonaws.com" and permission["sourceArn"].endswith(
        ":restore-tests-completed"
    )


def test_the_validator_may_touch_restored_copies_only():
    policy = json.loads(
        rendered("prod").one("aws:iam/rolePolicy:RolePolicy", "restore-tests-validator-policy").inputs["policy"]
    )
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    rds = by_sid["SetThePasswordOfRestoredCopiesOnly"]
    assert rds["Resource"] == [f"arn:aws:rds:us-east-1:123456789012:db:{RESTORE_TEST_INSTANCE_PREFIX}*"]
    backup = by_sid["ReadAndReportRestoreJobs"]
    assert set(backup["Action"]) == {"backup:DescribeRestoreJob", "backup:PutRestoreValidationResult"}
    assert backup["Condition"] == {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}
    assert all("*" not in a for s in policy["Statement"] for a in s["Action"])


def test_the_lambda_checks_the_schema_the_migrations_own():
    assert code.SCHEMA == SCHEMA and f"{SCHEMA}.alembic_version" in code.CHECK_QUERY
    assert code.INSTANCE_PREFIX == RESTORE_TEST_INSTANCE_PREFIX


# --- the validator, against Stubber ---------------------------------------------------------------

PLAN_ARN = "arn:aws:backup:us-east-1:123456789012:restore-testing-plan:plexichat_prod_database-abc"
JOB = "AB123456-78C9-0123-456D-789012E34567"
RESTORED = f"{RESTORE_TEST_INSTANCE_PREFIX}1a2b3c"
CREATED_ARN = f"arn:aws:rds:us-east-1:123456789012:db:{RESTORED}"
POINT = datetime.datetime(2026, 3, 2, 5, 7, tzinfo=datetime.UTC)


def _clients():
    kwargs = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    backup, rds = boto3.client("backup", **kwargs), boto3.client("rds", **kwargs)
    return backup, Stubber(backup), rds, Stubber(rds)


def _job(**overrides):
    job = {
        "RestoreJobId": JOB,
        "Status": "COMPLETED",
        "CreatedResourceArn": CREATED_ARN,
        "CreatedBy": {"RestoreTestingPlanArn": PLAN_ARN},
        "RecoveryPointCreationDate": POINT,
    }
    return {**job, **overrides}


def _instance(port=5432, **extra):
    return {
        "DBInstances": [
            {
                "DBInstanceIdentifier": RESTORED,
                "Endpoint": {"Address": f"{RESTORED}.c0ffee.us-east-1.rds.amazonaws.com", "Port": port},
                "MasterUsername": USERNAME,
                **extra,
            }
        ]
    }


def _expect_report(stub, status, message=ANY):
    stub.add_response(
        "put_restore_validation_result",
        {},
        {"RestoreJobId": JOB, "ValidationStatus": status, "ValidationStatusMessage": message},
    )


def _expect_restore(backup_stub, rds_stub, manage=False, job=None):
    backup_stub.add_response("describe_restore_job", job or _job(), {"RestoreJobId": JOB})
    _expect_report(backup_stub, "VALIDATING")
    rds_stub.add_response(
        "describe_db_instances",
        _instance(**({"MasterUserSecret": {"SecretArn": "arn:aws:secretsmanager:x"}} if manage else {})),
        {"DBInstanceIdentifier": RESTORED},
    )
    change = {"DBInstanceIdentifier": RESTORED, "MasterUserPassword": ANY, "ApplyImmediately": True}
    rds_stub.add_response(
        "modify_db_instance", {}, {**change, **({"ManageMasterUserPassword": False} if manage else {})}
    )


class FakeCheck:
    """The query's answers in turn (an exception is raised), recording the logins."""

    def __init__(self, *answers):
        self.answers, self.logins = list(answers), []

    def __call__(self, host, port, user, password, database):
        self.logins.append((host, port, user, password, database))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _validator(backup, rds, check, clock=lambda: 0.0):
    return Validator(
        backup=backup, rds=rds, plan_arn=PLAN_ARN, database=DB_NAME, check=check, sleep=lambda s: None, clock=clock
    )


def test_a_restored_copy_at_one_revision_is_reported_successful():
    backup, backup_stub, rds, rds_stub = _clients()
    _expect_restore(backup_stub, rds_stub)
    _expect_report(
        backup_stub, "SUCCESSFUL", "schema at Alembic revision 0001abcd (recovery point of 2026-03-02T05:07:00+00:00)"
    )
    check = FakeCheck([("1", "0001abcd")])
    with backup_stub, rds_stub:
        assert _validator(backup, rds, check).validate(JOB, deadline=600) == "SUCCESSFUL"
    backup_stub.assert_no_pending_responses()
    ((host, port, user, password, database),) = check.logins
    assert host.startswith(RESTORED) and (port, user, database) == (5432, USERNAME, DB_NAME)
    assert len(password) == code.PASSWORD_LENGTH and password.isalnum()


def test_the_password_is_tried_until_the_instance_takes_it():
    backup, backup_stub, rds, rds_stub = _clients()
    _expect_restore(backup_stub, rds_stub)
    _expect_report(backup_stub, "SUCCESSFUL")
    check = FakeCheck(LoginRefused("28P01: password authentication failed"), ConnectionRefusedError(), [("1", "x")])
    with backup_stub, rds_stub:
        assert _validator(backup, rds, check).validate(JOB, deadline=600) == "SUCCESSFUL"
    assert len({login[3] for login in check.logins}) == 1  # one password, set once


def test_a_copy_without_the_schema_fails_reports_why_and_fails_the_invocation():
    backup, backup_stub, rds, rds_stub = _clients()
    _expect_restore(backup_stub, rds_stub)
    _expect_report(backup_stub, "FAILED")
    check = FakeCheck(QueryFailed('42P01: relation "plexichat.alembic_version" does not exist'))
    with backup_stub, rds_stub, pytest.raises(ValidationFailed, match="42P01"):
        _validator(backup, rds, check).validate(JOB, deadline=600)
    backup_stub.assert_no_pending_responses()


@pytest.mark.parametrize("rows", [[], [("0", None)], [("2", "b")], [("1", "")]])
def test_anything_but_exactly_one_revision_fails(rows):
    backup, backup_stub, rds, rds_stub = _clients()
    _expect_restore(backup_stub, rds_stub)
    _expect_report(backup_stub, "FAILED")
    with backup_stub, rds_stub, pytest.raises(ValidationFailed, match="expected one Alembic revision"):
        _validator(backup, rds, FakeCheck(rows)).validate(JOB, deadline=600)


def test_a_login_that_never_works_fails_at_the_deadline():
    backup, backup_stub, rds, rds_stub = _clients()
    _expect_restore(backup_stub, rds_stub)
    _expect_report(backup_stub, "FAILED")
    ticks = iter(range(0, 10_000, 10))
    check = FakeCheck(*[LoginRefused("28P01")] * 100)
    with backup_stub, rds_stub, pytest.raises(ValidationFailed, match="before the deadline"):
        _validator(backup, rds, check, clock=lambda: float(next(ticks))).validate(JOB, deadline=100)
    assert len(check.logins) < 20


def test_a_password_managed_by_rds_is_taken_back():
    backup, backup_stub, rds, rds_stub = _clients()
    _expect_restore(backup_stub, rds_stub, manage=True)
    _expect_report(backup_stub, "SUCCESSFUL")
    with backup_stub, rds_stub:
        _validator(backup, rds, FakeCheck([("1", "x")])).validate(JOB, deadline=600)
    rds_stub.assert_no_pending_responses()


def test_a_refused_modification_is_a_failed_check():
    backup, backup_stub, rds, rds_stub = _clients()
    backup_stub.add_response("describe_restore_job", _job(), {"RestoreJobId": JOB})
    _expect_report(backup_stub, "VALIDATING")
    rds_stub.add_response("describe_db_instances", _instance(), {"DBInstanceIdentifier": RESTORED})
    rds_stub.add_client_error("modify_db_instance", "AccessDenied", "not authorized to perform rds:ModifyDBInstance")
    _expect_report(backup_stub, "FAILED")
    with backup_stub, rds_stub, pytest.raises(ValidationFailed, match="AccessDenied"):
        _validator(backup, rds, FakeCheck()).validate(JOB, deadline=600)


@pytest.mark.parametrize(
    "job",
    [
        _job(CreatedBy={"RestoreTestingPlanArn": PLAN_ARN.replace("prod", "staging")}),
        _job(CreatedBy={}),  # a restore by hand
        _job(Status="FAILED"),
    ],
    ids=["another-plan", "by-hand", "not-completed"],
)
def test_a_job_that_is_not_a_completed_one_of_the_plan_is_left_alone(job):
    backup, backup_stub, rds, rds_stub = _clients()
    backup_stub.add_response("describe_restore_job", job, {"RestoreJobId": JOB})
    with backup_stub, rds_stub:
        assert _validator(backup, rds, FakeCheck()).validate(JOB, deadline=600) == ""
    backup_stub.assert_no_pending_responses()


def test_nothing_but_a_restore_test_instance_is_ever_touched():
    backup, backup_stub, rds, rds_stub = _clients()
    production = "arn:aws:rds:us-east-1:123456789012:db:plexichat-prod"
    backup_stub.add_response("describe_restore_job", _job(CreatedResourceArn=production), {"RestoreJobId": JOB})
    _expect_report(backup_stub, "VALIDATING")
    _expect_report(backup_stub, "FAILED")
    with backup_stub, rds_stub, pytest.raises(ValidationFailed, match="not touched"):
        _validator(backup, rds, FakeCheck()).validate(JOB, deadline=600)  # no RDS call stubbed: none made


def test_the_handler_reads_the_event_and_its_environment(monkeypatch):
    seen = {}

    class Recording(Validator):
        def validate(self, job_id, deadline):
            seen.update(job=job_id, plan=self.plan_arn, database=self.database, left=deadline - code.time.monotonic())
            return "SUCCESSFUL"

    monkeypatch.setattr(code, "Validator", Recording)
    monkeypatch.setenv("RESTORE_TESTING_PLAN_ARN", PLAN_ARN)
    monkeypatch.setenv("DATABASE_NAME", DB_NAME)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    class Context:
        def get_remaining_time_in_millis(self):
            return 900_000

    code.handler({"detail-type": "Restore Job State Change", "detail": {"restoreJobId": JOB}}, Context())
    assert (seen["job"], seen["plan"], seen["database"]) == (JOB, PLAN_ARN, DB_NAME)
    assert 800 < seen["left"] <= 900 - code.MARGIN_SECONDS


# --- the check query, against PostgreSQL ---------------------------------------------------------


def _check(postgres: PostgresServer, password: str) -> list:
    return code.run_check(postgres.host, postgres.port, postgres.master, password, postgres.database, tls=None)


@pytest.mark.external
def test_an_unmigrated_database_fails_the_check(postgres):
    with pytest.raises(QueryFailed, match="42P01"):  # undefined_table
        _check(postgres, postgres.master_password)


@pytest.mark.external
def test_a_wrong_password_is_a_refused_login_to_retry(postgres):
    with pytest.raises(LoginRefused, match="28P01"):
        _check(postgres, "not-the-password")


@pytest.mark.external
def test_the_master_user_reads_the_revision_of_a_migrated_database(postgres):
    bootstrap(postgres)
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    url = postgres.url(MIGRATOR_ROLE, PASSWORDS[MIGRATOR_ROLE])
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")
    with postgres.connect(postgres.superuser) as connection:
        (revision,) = connection.execute("SELECT version_num FROM plexichat.alembic_version").fetchone()
    assert _check(postgres, postgres.master_password) == [("1", revision)]  # SCRAM-SHA-256 login

    # The whole validator: RDS stubbed to point at this server, the new password applied on the
    # second login (as RDS applies it a little after ModifyDBInstance returns).
    backup, backup_stub, rds, rds_stub = _clients()
    backup_stub.add_response("describe_restore_job", _job(), {"RestoreJobId": JOB})
    _expect_report(backup_stub, "VALIDATING")
    rds_stub.add_response("describe_db_instances", _instance(port=postgres.port), {"DBInstanceIdentifier": RESTORED})
    rds_stub.add_response(
        "modify_db_instance",
        {},
        {"DBInstanceIdentifier": RESTORED, "MasterUserPassword": ANY, "ApplyImmediately": True},
    )
    _expect_report(
        backup_stub, "SUCCESSFUL", f"schema at Alembic revision {revision} (recovery point of {POINT.isoformat()})"
    )
    logins = []

    def check(host, port, user, password, database):
        logins.append(password)
        if len(logins) == 2:
            postgres.psql(
                f"ALTER ROLE {user} PASSWORD :'password'", postgres.superuser, variables={"password": password}
            )
        return code.run_check(postgres.host, port, user, password, database, tls=None)

    with backup_stub, rds_stub:
        assert _validator(backup, rds, check).validate(JOB, deadline=600) == "SUCCESSFUL"
    assert len(logins) == 2


def test_the_standby_tests_the_copies_its_primary_keeps_in_its_region():
    """prod's recovery points, copied to prod's DR vault in us-west-2, restored into prod-dr's
    network: what a failover would restore from, tested where it would be restored."""
    r = rendered("prod-dr")
    plan = r.one(PLAN, "restore-tests-plan").inputs
    assert plan["name"] == "plexichat_prod_dr_database"
    assert plan["recoveryPointSelection"]["includeVaults"] == [
        "arn:aws:backup:us-west-2:123456789012:backup-vault:plexichat-prod-dr"
    ]
    selection = r.one(SELECTION, "restore-tests-selection").inputs
    prod = rendered("prod").one("aws:rds/instance:Instance", "database-primary").inputs["identifier"]
    assert selection["protectedResourceArns"] == [f"arn:aws:rds:us-east-1:123456789012:db:{prod}"]
    assert selection["restoreMetadataOverrides"]["dbSubnetGroupName"] == "plexichat-prod-dr-private"
    function = r.one(FUNCTION, "restore-tests-validator")
    assert function.provider == r.one("aws:rds/instance:Instance", "database-primary").provider  # us-west-2
