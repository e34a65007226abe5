"""The database break-glass path (docs/admin-access.md): per stack, off unless enabled; what the
session may be (admission policy, evaluated with a CEL interpreter), reach (NetworkPolicies,
evaluated) and do (IAM, and the database role on a real PostgreSQL)."""

from __future__ import annotations

import datetime
import json

import celpy
import kubernetes_validate
import psycopg
import pytest

from components.config.parse import parse_stack_config
from components.data.database import DB_NAME
from components.data.database_roles import BREAK_GLASS_ROLE, IAM_ROLE, SCHEMA, bootstrap_sql
from plexictl import offline
from plexictl.break_glass import BreakGlassError, kubectl_commands, session_pod
from plexictl.offline import Rendering
from tests.conftest import render_edited
from tests.postgres_server import PostgresServer, postgres_fixture  # noqa: F401  (the `postgres` fixture)
from tests.test_database_roles import VARIABLES, bootstrap_and_migrate
from tests.test_east_west import (
    APP_NAMESPACE,
    DATA_SUBNETS,
    EAST_WEST,
    ENDPOINT_SUBNETS,
    INTERNET,
    OUTSIDE_DATA_IN_VPC,
    S3_RANGES,
    Pod,
    _addresses_in,
    _network_policies,
    can_reach,
)
from tests.test_stacks import KUBERNETES_VERSION

ROLE = "aws:iam/role:Role"
GROUP = "plexichat-break-glass"
NOW = datetime.datetime(2026, 11, 29, 3, 14, tzinfo=datetime.UTC)


def _break_glass(**keys):
    """An edit that opens the path (with `keys`) on top of the east-west network settings."""

    def edit(config):
        EAST_WEST(config)
        config["plexichat:adminAccess"] = {"breakGlass": {"enabled": True, **keys}}

    return edit


def _closed(config):
    EAST_WEST(config)
    config.pop("plexichat:adminAccess", None)


@pytest.fixture(scope="module")
def opened() -> Rendering:
    return render_edited("prod", _break_glass())


def _settings(edit):
    """The prod settings after `edit`, parsed as the program parses them."""
    from tests.conftest import stack_file

    data = stack_file("prod")
    edit(data["config"])
    config, secret_keys = offline.stack_config("prod", offline.ROOT, stack_file=data)
    return parse_stack_config(config, "prod", secret_keys)


def _pod(edit=None, reason="INC-4711: messages stuck in the outbox") -> dict:
    """The session pod plexictl writes for prod after `edit` (default: the path opened)."""
    return session_pod("prod", _settings(edit or _break_glass()), reason=reason, requested_by="Jane Doe", now=NOW)


def test_the_path_is_closed_unless_a_stack_opens_it():
    closed = render_edited("prod", _closed)
    names = {r.inputs["metadata"]["name"] for r in closed.kubernetes_objects() if "metadata" in r.inputs}
    assert not any("break-glass" in name for name in names)
    assert not any(r.name.startswith("break-glass-access") for r in closed.resources)
    with pytest.raises(BreakGlassError, match=r"plexichat:adminAccess\.breakGlass\.enabled is false"):
        _pod(_closed)


def test_its_role_is_trusted_by_its_service_account_alone_and_may_only_connect_as_break_glass(opened):
    role = opened.one(ROLE, "break-glass-access-role").inputs
    (trust,) = json.loads(role["assumeRolePolicy"])["Statement"]
    issuer = trust["Principal"]["Federated"].split(":oidc-provider/")[1]
    assert trust["Condition"] == {
        "StringEquals": {
            f"{issuer}:aud": "sts.amazonaws.com",
            f"{issuer}:sub": "system:serviceaccount:plexichat:plexichat-break-glass",
        }
    }
    (policy,) = [p for p in opened.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == "break-glass-access-policy"]
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    assert statement["Action"] == "rds-db:connect"
    # The primary and each replica, as the break-glass database user and no other.
    replicas = len(opened.of_type("aws:rds/instance:Instance")) - 1
    assert len(statement["Resource"]) == 1 + replicas
    assert all(arn.endswith(f"/{BREAK_GLASS_ROLE}") for arn in statement["Resource"])
    # ... and the app role, whose trust is a prefix, does not admit the break-glass account.
    (app,) = json.loads(opened.one(ROLE, "app-access-role").inputs["assumeRolePolicy"])["Statement"]
    assert (
        "system:serviceaccount:plexichat:plexichat-break-glass" in app["Condition"]["StringNotEquals"][f"{issuer}:sub"]
    )


def test_the_session_pod_is_a_valid_restricted_pod_that_reaches_the_database_and_nothing_else(opened):
    pod = _pod()
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
    for container in pod["spec"]["containers"] + pod["spec"]["initContainers"]:
        context = container["securityContext"]
        assert context["runAsNonRoot"] and context["readOnlyRootFilesystem"]
        assert not context["allowPrivilegeEscalation"] and context["capabilities"] == {"drop": ["ALL"]}
    session = Pod(APP_NAMESPACE, pod["metadata"]["labels"])
    policies = _network_policies(opened)
    for address in _addresses_in(DATA_SUBNETS):
        assert can_reach(policies, session, address, 5432), address
        assert not can_reach(policies, session, address, 6379), address  # not the cache
    for address in _addresses_in(ENDPOINT_SUBNETS):
        assert can_reach(policies, session, address, 443), address  # STS, for the IAM token
    for address in OUTSIDE_DATA_IN_VPC + INTERNET + _addresses_in(S3_RANGES):
        assert not any(can_reach(policies, session, address, port) for port in (443, 5432)), address
    web = Pod(APP_NAMESPACE, {"app.kubernetes.io/name": "web"})
    assert not can_reach(policies, session, web, 8080)
    # Where it connects comes from the stack's ConfigMap, which names the break-glass user.
    config_map = next(
        r
        for r in opened.kubernetes_objects()
        if r.type.endswith(":ConfigMap") and r.name == "break-glass-access-connection"
    )
    assert config_map.inputs["data"]["PGUSER"] == BREAK_GLASS_ROLE
    assert {"configMapRef": {"name": config_map.inputs["metadata"]["name"]}} in pod["spec"]["containers"][0]["envFrom"]
    assert pod["spec"]["activeDeadlineSeconds"] == 3600


def _admission(rendering: Rendering):
    (policy,) = rendering.of_type("kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy")
    (binding,) = rendering.of_type("kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding")
    assert binding.inputs["spec"]["policyName"] == policy.inputs["metadata"]["name"]
    assert binding.inputs["spec"]["validationActions"] == ["Deny"]
    selector = binding.inputs["spec"]["matchResources"]["namespaceSelector"]["matchLabels"]
    assert selector == {"kubernetes.io/metadata.name": APP_NAMESPACE}
    kubernetes_validate.validate(policy.manifest(), KUBERNETES_VERSION, strict=True)
    kubernetes_validate.validate(binding.manifest(), KUBERNETES_VERSION, strict=True)
    return policy.inputs["spec"]


def admitted(spec: dict, pod: dict, groups: list[str]) -> list[str]:
    """The messages of the validations that deny `pod`, created by a user in `groups` (empty:
    admitted), evaluated as the API server evaluates the policy's CEL."""
    env = celpy.Environment()
    activation = {
        "object": celpy.json_to_cel(pod),
        "request": celpy.json_to_cel({"userInfo": {"username": "jane", "groups": groups}}),
    }

    def holds(expression: str) -> bool:
        return bool(env.program(env.compile(expression)).evaluate(activation))

    if not all(holds(c["expression"]) for c in spec["matchConditions"]):
        return []
    return [v["message"] for v in spec["validations"] if not holds(v["expression"])]


def test_the_admission_policy_admits_a_session_and_nothing_else_from_the_group(opened):
    spec = _admission(opened)
    session = _pod()
    assert admitted(spec, session, [GROUP, "system:authenticated"]) == []

    as_the_app = json.loads(json.dumps(session))
    as_the_app["spec"]["serviceAccountName"] = "plexichat-web-stable"
    assert admitted(spec, as_the_app, [GROUP]) == ["a break-glass session runs as plexichat-break-glass"]
    unlabelled = json.loads(json.dumps(session))
    del unlabelled["metadata"]["labels"]["plexichat.com/job"]
    assert admitted(spec, unlabelled, [GROUP]) == [
        "a break-glass session carries the label plexichat.com/job=break-glass"
    ]
    for reason in (None, "", "   "):
        unexplained = json.loads(json.dumps(session))
        if reason is None:
            del unexplained["metadata"]["annotations"]["plexichat.com/break-glass-reason"]
        else:
            unexplained["metadata"]["annotations"]["plexichat.com/break-glass-reason"] = reason
        assert admitted(spec, unexplained, [GROUP]) == [
            "a break-glass session states its reason (plexichat.com/break-glass-reason)"
        ]
    # Anyone else's pods are not this policy's business (RBAC and Pod Security decide).
    assert admitted(spec, as_the_app, ["system:serviceaccounts"]) == []


def test_the_group_may_start_attach_to_and_end_pods_and_read_its_config_map_only(opened):
    (role,) = [
        r for r in opened.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role") if r.name.startswith("break-glass")
    ]
    (binding,) = opened.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
    assert binding.inputs["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": GROUP}]
    grants = {
        (resource, verb) for rule in role.inputs["rules"] for resource in rule["resources"] for verb in rule["verbs"]
    }
    assert {r for r, _ in grants} == {"pods", "pods/attach", "pods/log", "configmaps"}
    assert ("pods/exec", "create") not in grants and ("secrets", "get") not in grants
    assert ("pods", "update") not in grants and ("pods", "patch") not in grants


def test_the_group_and_the_session_length_follow_the_settings():
    rendering = render_edited("prod", _break_glass(kubernetesGroup="oncall-db", sessionMinutes=15))
    (binding,) = rendering.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
    assert binding.inputs["subjects"][0]["name"] == "oncall-db"
    assert "'oncall-db' in request.userInfo.groups" in _admission(rendering)["matchConditions"][0]["expression"]
    assert _pod(_break_glass(sessionMinutes=15))["spec"]["activeDeadlineSeconds"] == 900


def test_a_session_needs_a_reason_and_records_it_and_who_asked():
    for reason in ("", "  \n"):
        with pytest.raises(BreakGlassError, match="--reason is required"):
            _pod(reason=reason)
    pod = _pod()
    assert (
        pod["metadata"]["annotations"]["plexichat.com/break-glass-reason"] == "INC-4711: messages stuck in the outbox"
    )
    assert pod["metadata"]["annotations"]["plexichat.com/break-glass-requested-by"] == "Jane Doe"
    assert pod["metadata"]["name"] == "plexichat-break-glass-jane-doe-20261129031400"
    start, _wait, attach, end = kubectl_commands("plexichat-prod", "session.yaml", pod)
    assert start[:3] == ["kubectl", "--context", "plexichat-prod"] and "create" in start
    assert attach[-2:] == ["--container", "psql"] and end[-2] == f"pod/{pod['metadata']['name']}"


def test_the_cli_writes_the_session_and_refuses_a_closed_stack(tmp_path):
    from plexictl.__main__ import main

    out = tmp_path / "session.yaml"
    args = ["break-glass", "--stack", "dev", "--reason", "INC-1", "--out", str(out)]
    assert main(args) == 1 and not out.exists()  # dev has no break-glass path (the default)


@pytest.mark.parametrize(
    ("keys", "path", "hint"),
    [
        ({"access": "admin"}, "plexichat:adminAccess.breakGlass.access", "must be read or readWrite (got 'admin')"),
        ({"sessionMinutes": 600}, "plexichat:adminAccess.breakGlass.sessionMinutes", "from 5 to 240 (got 600)"),
        ({"kubernetesGroup": "On Call"}, "plexichat:adminAccess.breakGlass.kubernetesGroup", "DNS label"),
        ({"enable": True}, "plexichat:adminAccess.breakGlass.enable", "enabled"),
    ],
)
def test_bad_break_glass_settings_are_refused_naming_the_key(keys, path, hint):
    from components.config.parse import ConfigError

    with pytest.raises(ConfigError) as error:
        _settings(_break_glass(**keys))
    assert path in str(error.value) and hint in str(error.value)


# --- the database role, on a real PostgreSQL ---------------------------------------------------


@pytest.fixture(scope="module")
def migrated(postgres: PostgresServer) -> PostgresServer:
    return bootstrap_and_migrate(postgres)


def _as_break_glass(postgres: PostgresServer) -> psycopg.Connection:
    """A login as the break-glass role. RDS would take an IAM token; the test gives the role a
    password for the length of the test, as the superuser."""
    postgres.psql(f"ALTER ROLE {BREAK_GLASS_ROLE} PASSWORD 'test only'", postgres.superuser)
    return postgres.connect(BREAK_GLASS_ROLE, "test only")


def _bootstrap(postgres: PostgresServer, access) -> None:
    sql = bootstrap_sql(DB_NAME, break_glass=access)
    postgres.psql(sql, postgres.master, postgres.master_password, variables=VARIABLES)


@pytest.mark.external
def test_the_break_glass_role_reads_writes_only_when_allowed_and_closes(migrated):
    postgres = migrated
    postgres.psql(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{IAM_ROLE}') THEN "
        f"CREATE ROLE {IAM_ROLE}; END IF; END $$; GRANT {IAM_ROLE} TO {postgres.master} WITH ADMIN OPTION;",
        postgres.superuser,
    )
    _bootstrap(postgres, "read")
    with _as_break_glass(postgres) as connection:
        tables = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", [SCHEMA]
        ).fetchone()
        assert tables and tables[0] > 0
        (table,) = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s LIMIT 1", [SCHEMA]
        ).fetchone()
        connection.execute(f"SELECT * FROM {SCHEMA}.{table}")  # reads
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            connection.execute(f"DELETE FROM {SCHEMA}.{table}")
        connection.rollback()
        connection.execute("SET default_transaction_read_only = off")  # even then, no grant to write
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute(f"DELETE FROM {SCHEMA}.{table}")
        connection.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute(f"CREATE TABLE {SCHEMA}.mine (id int)")
    with postgres.connect(postgres.superuser) as connection:
        members = {
            r
            for (r,) in connection.execute(
                "SELECT roleid::regrole::text FROM pg_auth_members WHERE member = %s::regrole", [BREAK_GLASS_ROLE]
            )
        }
    assert IAM_ROLE in members  # on RDS: an IAM token is its only way in

    _bootstrap(postgres, "readWrite")
    with _as_break_glass(postgres) as connection:
        connection.execute(f"DELETE FROM {SCHEMA}.{table} WHERE false")  # row changes allowed
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute(f"CREATE TABLE {SCHEMA}.mine (id int)")  # never the schema

    _bootstrap(postgres, None)  # closed: the role stays, and cannot log in
    with postgres.connect(postgres.superuser) as connection:
        (can_login,) = connection.execute(
            "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", [BREAK_GLASS_ROLE]
        ).fetchone()
    assert can_login is False
