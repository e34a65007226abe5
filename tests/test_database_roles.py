"""The app database's roles (components/data/database_roles.py) on a real PostgreSQL
(tests/postgres_server.py): the bootstrap SQL runs with the package's psql as the master user and
a second run changes nothing; then the migrator migrates with Alembic, and the app reads and
writes rows but can never change the schema."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config

from components.data.database import DB_NAME
from components.data.database_roles import (
    APP_ROLE,
    IAM_ROLE,
    MIGRATOR_ROLE,
    PASSWORD_VARIABLES,
    ROLES,
    SCHEMA,
    bootstrap_sql,
)
from tests.postgres_server import PostgresServer, postgres_fixture  # noqa: F401  (the `postgres` fixture)

ALEMBIC_DIR = Path(__file__).parent / "fixtures" / "alembic"
PASSWORDS = {APP_ROLE: 'it\'s a 100% "secret"', MIGRATOR_ROLE: "migrator secret"}
"""Quotes, spaces and % on purpose: psql's :'variable' quoting and the Alembic URL must hold."""
VARIABLES = {PASSWORD_VARIABLES[role]: password for role, password in PASSWORDS.items()}

CATALOG = f"""
SELECT 'role', rolname::text, concat_ws(' ', rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,
       rolreplication, rolbypassrls, rolconnlimit, rolvaliduntil, 'password:' || (rolpassword IS NOT NULL))
  FROM pg_authid WHERE rolname IN ('{MIGRATOR_ROLE}', '{APP_ROLE}')
UNION ALL
SELECT 'member', member::regrole::text, concat_ws(' ', roleid::regrole, admin_option, grantor::regrole)
  FROM pg_auth_members
UNION ALL
SELECT 'setting', setrole::regrole::text, concat_ws(' ', setdatabase, setconfig) FROM pg_db_role_setting
UNION ALL
SELECT 'database', datname::text, datacl::text FROM pg_database
UNION ALL
SELECT 'schema', nspname::text, concat_ws(' ', nspowner::regrole, nspacl) FROM pg_namespace
UNION ALL
SELECT 'default acl', concat_ws(' ', defaclrole::regrole, defaclnamespace::regnamespace, defaclobjtype), defaclacl::text
  FROM pg_default_acl
UNION ALL
SELECT 'relation', oid::regclass::text, concat_ws(' ', relowner::regrole, relacl) FROM pg_class
 WHERE relnamespace IN ('{SCHEMA}'::regnamespace, 'public'::regnamespace)
ORDER BY 1, 2, 3
"""
"""Roles (whether each has a password, not the verifier: its salt is new on every run), memberships,
role settings, and the grants on the database, schemas, tables and sequences, default ones included."""


def bootstrap(
    postgres: PostgresServer, iam: bool = False, variables: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """The bootstrap as a deploy runs it: psql, the master user, in password mode the passwords as
    psql variables (`VARIABLES` unless given)."""
    if variables is None and not iam:
        variables = VARIABLES
    sql = bootstrap_sql(DB_NAME, iam=iam)
    return postgres.psql(sql, postgres.master, postgres.master_password, variables=variables, check=check)


def catalog(postgres: PostgresServer) -> list[tuple[str, ...]]:
    with postgres.connect(postgres.superuser) as connection:
        return connection.execute(CATALOG).fetchall()


def members_of(postgres: PostgresServer, role: str) -> set[str]:
    with postgres.connect(postgres.superuser) as connection:
        query = "SELECT member::regrole::text FROM pg_auth_members WHERE roleid = %s::regrole"
        return {member for (member,) in connection.execute(query, [role])}


def app(postgres: PostgresServer) -> psycopg.Connection:
    return postgres.connect(APP_ROLE, PASSWORDS[APP_ROLE])


@pytest.fixture(scope="module")
def migrated(postgres: PostgresServer) -> PostgresServer:
    """The roles bootstrapped, then the migrator's Alembic migrations run to head."""
    return bootstrap_and_migrate(postgres)


def bootstrap_and_migrate(postgres: PostgresServer) -> PostgresServer:
    bootstrap(postgres)
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    url = postgres.url(MIGRATOR_ROLE, PASSWORDS[MIGRATOR_ROLE])
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # the ini file's interpolation
    command.upgrade(config, "head")
    return postgres


def test_the_sql_takes_passwords_from_psql_variables_only():
    sql = bootstrap_sql(DB_NAME)
    assert "PASSWORD :'app_password'" in sql and "PASSWORD :'migrator_password'" in sql
    assert "PASSWORD '" not in sql
    iam = bootstrap_sql(DB_NAME, iam=True)
    assert ":'" not in iam and f"GRANT {IAM_ROLE} TO" in iam


@pytest.mark.parametrize("name", ["PlexiChat", "plexi-chat", "x; DROP DATABASE y", ""])
def test_names_that_are_not_plain_identifiers_are_refused(name):
    with pytest.raises(ValueError, match="not a plain PostgreSQL identifier"):
        bootstrap_sql(name)
    with pytest.raises(ValueError, match="schema name"):
        bootstrap_sql(DB_NAME, schema=name)


@pytest.mark.external
def test_a_second_run_changes_nothing(postgres):
    bootstrap(postgres)
    first = catalog(postgres)
    again = bootstrap(postgres)
    assert catalog(postgres) == first
    assert (again.stdout, again.stderr) == ("", "")  # quiet: a rerun is no news
    found = {(kind, name): detail for kind, name, detail in first}
    # The schema: the migrator's, the app may only use it (a=INSERT r=SELECT w=UPDATE d=DELETE U=USAGE).
    assert (
        found["schema", SCHEMA]
        == f"{MIGRATOR_ROLE} {{{MIGRATOR_ROLE}=UC/{MIGRATOR_ROLE},{APP_ROLE}=U/{MIGRATOR_ROLE}}}"
    )
    assert found["default acl", f"{MIGRATOR_ROLE} {SCHEMA} r"] == f"{{{APP_ROLE}=arwd/{MIGRATOR_ROLE}}}"  # tables
    assert found["default acl", f"{MIGRATOR_ROLE} {SCHEMA} S"] == f"{{{APP_ROLE}=rwU/{MIGRATOR_ROLE}}}"  # sequences


@pytest.mark.external
def test_the_migrator_owns_what_its_migrations_create_and_a_rerun_keeps_the_apps_grants(migrated):
    with migrated.connect(migrated.superuser) as connection:
        owners = dict(connection.execute(f"SELECT tablename, tableowner FROM pg_tables WHERE schemaname = '{SCHEMA}'"))
    assert owners["messages"] == owners["alembic_version"] == MIGRATOR_ROLE
    before = catalog(migrated)
    bootstrap(migrated)
    assert catalog(migrated) == before


@pytest.mark.external
def test_the_app_reads_and_writes_rows_of_tables_the_migrator_creates(migrated):
    # `drafts` appears after the last bootstrap: only the migrator's default privileges (for its
    # table and its sequence) can let the app use it.
    with migrated.connect(MIGRATOR_ROLE, PASSWORDS[MIGRATOR_ROLE]) as migrator:
        migrator.execute("CREATE TABLE drafts (id bigserial PRIMARY KEY, body text NOT NULL)")
    with app(migrated) as connection:
        for table in ("messages", "drafts"):  # the Alembic revision's, and the new one
            # Unqualified: the role's search_path is the app's schema. The id comes from the sequence.
            [(row,)] = connection.execute(f"INSERT INTO {table} (body) VALUES ('hello') RETURNING id").fetchall()
            connection.execute(f"UPDATE {table} SET body = 'hello, world' WHERE id = %s", [row])
            assert connection.execute(f"SELECT body FROM {table} WHERE id = %s", [row]).fetchall() == [
                ("hello, world",)
            ]
            connection.execute(f"DELETE FROM {table} WHERE id = %s", [row])
            assert connection.execute(f"SELECT count(*) FROM {SCHEMA}.{table} WHERE id = %s", [row]).fetchone() == (0,)


@pytest.mark.external
def test_a_run_puts_back_what_drifted(migrated):
    bootstrap(migrated)
    expected = catalog(migrated)
    default = f"ALTER DEFAULT PRIVILEGES FOR ROLE {MIGRATOR_ROLE} IN SCHEMA {SCHEMA}"
    drift = f"""
        ALTER SCHEMA {SCHEMA} OWNER TO {migrated.master};
        GRANT USAGE ON SCHEMA {SCHEMA} TO PUBLIC;
        GRANT CREATE ON SCHEMA public TO PUBLIC;
        REVOKE ALL ON ALL TABLES IN SCHEMA {SCHEMA} FROM {APP_ROLE};
        REVOKE ALL ON ALL SEQUENCES IN SCHEMA {SCHEMA} FROM {APP_ROLE};
        {default} REVOKE ALL ON TABLES FROM {APP_ROLE};
        ALTER ROLE {APP_ROLE} IN DATABASE {DB_NAME} RESET search_path;
    """
    migrated.psql(drift, migrated.superuser)
    assert catalog(migrated) != expected
    bootstrap(migrated)
    assert catalog(migrated) == expected


@pytest.mark.external
@pytest.mark.parametrize(
    "statement",
    [
        f"CREATE TABLE {SCHEMA}.notes (id int)",
        "CREATE TABLE notes (id int)",
        "CREATE TABLE public.notes (id int)",
        "ALTER TABLE messages ADD COLUMN edited boolean",
        "DROP TABLE messages",
    ],
)
def test_the_app_cannot_change_the_schema(migrated, statement):
    denied = "permission denied for schema|must be owner of table"
    with app(migrated) as connection, pytest.raises(psycopg.errors.InsufficientPrivilege, match=denied):
        connection.execute(statement)


@pytest.mark.external
def test_the_migrator_cannot_create_in_public_either(migrated):
    with (
        migrated.connect(MIGRATOR_ROLE, PASSWORDS[MIGRATOR_ROLE]) as connection,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for schema public"),
    ):
        connection.execute("CREATE TABLE public.notes (id int)")


@pytest.mark.external
def test_the_app_logs_in_with_the_password_given_as_a_psql_variable_and_no_other(postgres):
    bootstrap(postgres)
    done = postgres.psql("SELECT current_user", APP_ROLE, PASSWORDS[APP_ROLE])
    assert done.stdout.strip() == APP_ROLE
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        postgres.connect(APP_ROLE, "wrong")


@pytest.mark.external
def test_a_missing_password_variable_stops_the_run_before_any_change(postgres):
    bootstrap(postgres)
    before = catalog(postgres)
    done = bootstrap(postgres, variables={"app_password": "changed"}, check=False)
    assert done.returncode == 3, done.stderr  # psql's "stopped by ON_ERROR_STOP"
    assert "psql variable migrator_password is not set" in done.stderr
    assert catalog(postgres) == before
    app(postgres).close()  # the old password still works


@pytest.mark.external
def test_iam_mode_makes_both_roles_members_of_rds_iam_with_no_password_and_back(postgres):
    bootstrap(postgres)
    refused = bootstrap(postgres, iam=True, check=False)
    assert refused.returncode == 3 and f"role {IAM_ROLE} does not exist" in refused.stderr

    # RDS's rds_iam, as the master user sees it: a role it may grant.
    postgres.psql(
        f"CREATE ROLE {IAM_ROLE}; GRANT {IAM_ROLE} TO {postgres.master} WITH ADMIN OPTION;", postgres.superuser
    )
    bootstrap(postgres, iam=True)
    first = catalog(postgres)
    bootstrap(postgres, iam=True)
    assert catalog(postgres) == first
    assert members_of(postgres, IAM_ROLE) >= set(ROLES)
    assert {name: detail.endswith("password:false") for kind, name, detail in first if kind == "role"} == dict.fromkeys(
        ROLES, True
    )
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        app(postgres)

    bootstrap(postgres)  # back to passwords: out of rds_iam (on RDS a member cannot use one)
    assert not members_of(postgres, IAM_ROLE) & set(ROLES)
    app(postgres).close()
