"""The database bootstrap: a Kubernetes Job that creates and converges the app's two roles
(plexichat_migrator, plexichat_app) with `psql -v ON_ERROR_STOP=1` and the SQL of
components/data/database_roles.py, as the RDS master user. The migration Job waits for it.

- The SQL comes from a ConfigMap, rendered at deploy time for `database.appAuth`. It is
  idempotent, so re-running it changes nothing; the pod template carries its digest, so a changed
  SQL (an appAuth switch) replaces the Job and runs again, and an unchanged one leaves it alone.
- The master credential comes from the Secret only this Job references
  (components/identity/database_admin_access.py); in password mode the roles' passwords come from
  their own Secrets (the same ones the app and the migration read), so the database and Secrets
  Manager agree.
- Like the migration Job (and for the same reasons, see migration_job.py): no Istio sidecar, its
  own ServiceAccount without a token, Pod Security `restricted`, a bounded retry count, and its
  own NetworkPolicy: DNS and the database port in the data subnets, nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import naming
from components.cluster.jobs import JOB_ANNOTATIONS, POD_ANNOTATIONS, awaited, env_from_secret, job_network_policy
from components.cluster.network_policies import POSTGRES_PORT, egress_to_cidrs, egress_to_cluster_dns
from components.cluster.pod_security import TMP_MOUNT, TMP_VOLUME, container_security_context, pod_security_context
from components.config.versions import pull_policy
from components.data.database_roles import PASSWORD_VARIABLES

BOOTSTRAP = "db-bootstrap"
PSQL_IMAGE = "public.ecr.aws/docker/library/postgres:17.6-alpine"
"""psql 17: speaks to PostgreSQL 14 and newer (the engine versions DatabaseSettings allows)."""
DEADLINE_SECONDS = 300
SQL_MOUNT = "/bootstrap"
SQL_FILE = "bootstrap.sql"


@dataclass(frozen=True)
class DatabaseBootstrapJobArgs:
    stack: str
    namespace: pulumi.Input[str]
    data_cidrs: Sequence[str]
    """The data subnets: PostgreSQL only there (network.dataSubnetCidrs)."""
    sql: str
    """The rendered bootstrap SQL (components/data/database_roles.py bootstrap_sql)."""
    host: pulumi.Input[str]
    port: int
    database: str
    master_credentials_secret: str
    """The Secret (keys `username`, `password`) holding the RDS master credential."""
    role_credentials_secrets: dict[str, str]
    """Password mode: role -> the Secret holding its password (key `password`); empty in iam mode."""
    after: Sequence[pulumi.Resource] = ()
    """The ExternalSecrets that materialise those Secrets."""


class DatabaseBootstrapJob(pulumi.ComponentResource):
    job: k8s.batch.v1.Job

    def __init__(self, name: str, args: DatabaseBootstrapJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:cluster:DatabaseBootstrapJob", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {**naming.common_labels(args.stack), **naming.selector_labels(BOOTSTRAP)}
        k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=_account(), namespace=args.namespace, labels=labels),
            automount_service_account_token=False,  # it calls no Kubernetes or AWS API
            opts=child,
        )
        sql = k8s.core.v1.ConfigMap(
            f"{name}-sql",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=_account(), namespace=args.namespace, labels=labels),
            data={SQL_FILE: args.sql},
            opts=child,
        )
        _network_policy(name, args, labels, child)
        self.job = _job(name, args, labels, [sql, *args.after], child)
        self.register_outputs({"job_name": self.job.metadata.name})


def _account() -> str:
    return naming.object_name(BOOTSTRAP)


def _job(
    name: str,
    args: DatabaseBootstrapJobArgs,
    labels: dict[str, str],
    after: Sequence[pulumi.Resource],
    opts: pulumi.ResourceOptions,
) -> k8s.batch.v1.Job:
    digest = hashlib.sha256(args.sql.encode()).hexdigest()
    return k8s.batch.v1.Job(
        f"{name}-job",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=_account(),
            namespace=args.namespace,
            labels=labels,
            annotations=JOB_ANNOTATIONS,
        ),
        spec=k8s.batch.v1.JobSpecArgs(
            backoff_limit=3,
            active_deadline_seconds=DEADLINE_SECONDS,
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    labels={**labels, naming.JOB_LABEL: BOOTSTRAP},
                    annotations={
                        **POD_ANNOTATIONS,
                        # A changed SQL changes the (immutable) template: the Job is replaced and runs.
                        "plexichat.com/bootstrap-sql-sha256": digest,
                    },
                ),
                spec=_pod_spec(args),
            ),
        ),
        opts=awaited(opts, DEADLINE_SECONDS, after),
    )


def _pod_spec(args: DatabaseBootstrapJobArgs) -> k8s.core.v1.PodSpecArgs:
    master = args.master_credentials_secret
    passwords = [
        env_from_secret(_password_env(variable), args.role_credentials_secrets[role], "password")
        for role, variable in PASSWORD_VARIABLES.items()
        if role in args.role_credentials_secrets
    ]
    # psql takes variables on its command line only; the shell expands them from the environment.
    variables = [
        f'-v {variable}="${_password_env(variable)}"'
        for role, variable in PASSWORD_VARIABLES.items()
        if role in args.role_credentials_secrets
    ]
    script = " ".join(["exec psql -v ON_ERROR_STOP=1", *variables, f"-f {SQL_MOUNT}/{SQL_FILE}"])
    return k8s.core.v1.PodSpecArgs(
        service_account_name=_account(),
        automount_service_account_token=False,
        restart_policy="Never",
        security_context=pod_security_context(),
        containers=[
            k8s.core.v1.ContainerArgs(
                name=BOOTSTRAP,
                image=PSQL_IMAGE,
                image_pull_policy=pull_policy(PSQL_IMAGE),
                command=["sh", "-c", script],
                env=[
                    k8s.core.v1.EnvVarArgs(name="PGHOST", value=args.host),
                    k8s.core.v1.EnvVarArgs(name="PGPORT", value=str(args.port)),
                    k8s.core.v1.EnvVarArgs(name="PGDATABASE", value=args.database),
                    # Encrypted; the image has no RDS CA bundle to verify the server against.
                    k8s.core.v1.EnvVarArgs(name="PGSSLMODE", value="require"),
                    k8s.core.v1.EnvVarArgs(name="PGAPPNAME", value=_account()),
                    env_from_secret("PGUSER", master, "username"),
                    env_from_secret("PGPASSWORD", master, "password"),
                    *passwords,
                ],
                resources=k8s.core.v1.ResourceRequirementsArgs(
                    requests={"cpu": "50m", "memory": "64Mi"}, limits={"cpu": "500m", "memory": "64Mi"}
                ),
                security_context=container_security_context(),
                volume_mounts=[
                    TMP_MOUNT,
                    k8s.core.v1.VolumeMountArgs(name="sql", mount_path=SQL_MOUNT, read_only=True),
                ],
            )
        ],
        volumes=[
            TMP_VOLUME,
            k8s.core.v1.VolumeArgs(name="sql", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=_account())),
        ],
    )


def _password_env(variable: str) -> str:
    return f"PLEXICHAT_{variable.upper()}"


def _network_policy(
    name: str, args: DatabaseBootstrapJobArgs, labels: dict[str, str], opts: pulumi.ResourceOptions
) -> k8s.networking.v1.NetworkPolicy:
    egress = [egress_to_cluster_dns(), *egress_to_cidrs(args.data_cidrs, POSTGRES_PORT)]
    return job_network_policy(name, BOOTSTRAP, args.namespace, labels, egress, opts)
