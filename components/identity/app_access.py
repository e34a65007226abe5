"""What the app may reach, and how its credentials get into the cluster without a manifest ever
holding a secret.

- IAM roles through IRSA, each with only what its pods do. The app's role: read the backup
  bucket's prefixes but write `daily/` only (never delete; `monthly/` copies are the backup
  archiver's, components/identity/backup_archiver_access.py), use the backup key, and with
  `database.appAuth: iam` connect as `plexichat_app` to the primary and the replicas, and with
  `cache.appAuth: iam` connect to the cache as its app user. The migration's role (iam mode
  only): connect as `plexichat_migrator` to the primary. The External Secrets store's role: read the role and
  cache credential secrets and decrypt them. The app's pods get their credentials from the
  environment, so they cannot read a secret from AWS themselves. Every statement names its
  resources; nothing is granted on `*`. The RDS master credential is not here at all: only the
  database bootstrap reads it (components/identity/database_admin_access.py).
- External Secrets Operator: a `SecretStore` (AWS Secrets Manager, through its own
  ServiceAccount and role) and `ExternalSecret`s that materialise the cache AUTH token (token
  mode) and, in password mode, each database role's credentials as Kubernetes Secrets. Other
  components deliver their secrets through the same store (`store_access`; the Alertmanager
  receivers, components/observability/alerting.py), granting its role each read themselves.
- The environment the web and worker containers (and, with its own role, the migration) get:
  endpoints as plain values, credentials through `secretKeyRef` to those Secrets, and the
  annotation that makes a Secret reloader (Stakater Reloader) roll the Deployments when one of
  those Secrets changes: a rotated password stops working after the rotation's next turn, and a
  container reads its environment only at start.

The app role's trust policy admits every ServiceAccount named `plexichat-*` in the app
namespace (StringLike) except the stores', the Jobs' and the backup archiver's, rather than an
exact list: the track ServiceAccounts come and go with releases (`plexichat-web-canary`,
`plexichat-worker-green`), and an exact list would turn a canary start or a blue-green flip into
an IAM change. The namespace holds only this
program's ServiceAccounts (restricted Pod Security, no other writers), so the wildcard admits
nothing else. The store's role trusts exactly its one ServiceAccount.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import naming
from components.cluster.jobs import env_from_secret
from components.config.data import IrsaSettings
from components.data.backup_bucket import DAILY_PREFIX, PREFIXES
from components.data.backups import BackupStore
from components.data.cache import PORT as CACHE_PORT
from components.data.cache import Cache
from components.data.database import DB_NAME, Database
from components.data.database import PORT as DB_PORT
from components.data.database_role_secrets import RoleCredentials
from components.data.database_roles import APP_ROLE, MIGRATOR_ROLE
from components.identity.external_secrets import ROLE_ARN_ANNOTATION, StoreAccess, external_secret, secret_store

RELOAD_ANNOTATION = "secret.reloader.stakater.com/reload"
SECRET_STORE = "plexichat-aws"
STORE_SERVICE_ACCOUNT = f"{naming.APP}-external-secrets"  # excluded from the app role's trust
ADMIN_STORE_SERVICE_ACCOUNT = f"{naming.APP}-db-admin-secrets"  # the master credential's store
MIGRATOR_SERVICE_ACCOUNT = naming.object_name("migrate")  # components/cluster/migration_job.py
BOOTSTRAP_SERVICE_ACCOUNT = naming.object_name("db-bootstrap")  # .../database_bootstrap_job.py
ARCHIVER_SERVICE_ACCOUNT = naming.object_name("backup-archiver")  # .../backup_archiver_access.py
BREAK_GLASS_SERVICE_ACCOUNT = naming.object_name("break-glass")  # .../break_glass_access.py
NOT_APP_SERVICE_ACCOUNTS = (
    STORE_SERVICE_ACCOUNT,
    ADMIN_STORE_SERVICE_ACCOUNT,
    MIGRATOR_SERVICE_ACCOUNT,
    BOOTSTRAP_SERVICE_ACCOUNT,
    ARCHIVER_SERVICE_ACCOUNT,
    BREAK_GLASS_SERVICE_ACCOUNT,
)
DB_CREDENTIALS_SECRET = "plexichat-db-credentials"
"""plexichat_app's credentials (password mode), read by the web and worker pods."""
MIGRATOR_CREDENTIALS_SECRET = "plexichat-db-migrator-credentials"
"""plexichat_migrator's credentials (password mode), read by the migration Job only."""
ROLE_CREDENTIALS_SECRETS = {APP_ROLE: DB_CREDENTIALS_SECRET, MIGRATOR_ROLE: MIGRATOR_CREDENTIALS_SECRET}
CACHE_AUTH_SECRET = "plexichat-cache-auth"


@dataclass(frozen=True)
class AppAccessArgs:
    stack: str
    region: str
    namespace: pulumi.Input[str]
    namespace_name: str
    """The namespace's name as configured (for the trust policy's subject, known up front)."""
    irsa: IrsaSettings
    database: Database
    cache: Cache
    backups: BackupStore
    """The backup bucket the app reads and writes `daily/` into (a DR stack's: the primary's copy)."""
    role_secrets: RoleCredentials | None = None
    """The database roles' secrets: password mode (`database.appAuth: password`); none in iam mode,
    where the roles log in with IAM tokens."""


class AppAccess(pulumi.ComponentResource):
    role: aws.iam.Role
    store_role: aws.iam.Role
    env: list[k8s.core.v1.EnvVarArgs]
    """The web and worker containers' environment: plexichat_app's credentials."""
    migrator_env: list[k8s.core.v1.EnvVarArgs]
    """The migration's environment: the same, with plexichat_migrator's credentials."""
    service_account_annotations: dict[str, pulumi.Output[str]]
    migrator_service_account_annotations: dict[str, pulumi.Output[str]]
    """The migration's IRSA role (iam mode); empty in password mode (it calls no AWS API)."""

    def __init__(self, name: str, args: AppAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:data:AppAccess", name, None, opts)
        # Children inherit the AWS and Kubernetes providers given to this component.
        child = pulumi.ResourceOptions(parent=self)

        self.role = _app_role(name, args, child)
        self.store_role = _store_role(name, args, child)
        self.service_account_annotations = {ROLE_ARN_ANNOTATION: self.role.arn}
        self.migrator_service_account_annotations = {}
        if args.role_secrets is None:
            migrator_role = _migrator_role(name, args, child)
            self.migrator_service_account_annotations = {ROLE_ARN_ANNOTATION: migrator_role.arn}
        store = secret_store(name, "", SECRET_STORE, STORE_SERVICE_ACCOUNT, args, self.store_role, child)
        self.store_access = StoreAccess(SECRET_STORE, store, self.store_role)
        self.credential_secrets = [
            external_secret(
                name,
                # `db-credentials`: the name the app's (then the master's) ExternalSecret had.
                "db-credentials" if role == APP_ROLE else "db-migrator-credentials",
                target,
                [
                    {"secretKey": key, "remoteRef": {"key": args.role_secrets.secret_arns[role], "property": key}}
                    for key in ("username", "password")
                ],
                SECRET_STORE,
                args,
                store,
                child,
            )
            for role, target in ROLE_CREDENTIALS_SECRETS.items()
            if args.role_secrets is not None
        ]
        if args.cache.auth_secret is not None:  # cache.appAuth token
            external_secret(
                name,
                "cache-auth",
                CACHE_AUTH_SECRET,
                [{"secretKey": "token", "remoteRef": {"key": args.cache.auth_secret.arn}}],
                SECRET_STORE,
                args,
                store,
                child,
            )

        self.env = _environment(args, APP_ROLE)
        self.migrator_env = _environment(args, MIGRATOR_ROLE)
        # On the Deployments (not their pod templates, so adding it restarts nothing): the
        # Secrets the environment reads, whose change must roll the pods.
        read = [DB_CREDENTIALS_SECRET] if args.role_secrets is not None else []
        read += [CACHE_AUTH_SECRET] if args.cache.auth_secret is not None else []
        self.deployment_annotations = {RELOAD_ANNOTATION: ",".join(read)} if read else {}
        self.register_outputs({"role_arn": self.role.arn})


def service_account_subject(args: AppAccessArgs, service_account: str) -> str:
    """The `sub` claim of a ServiceAccount token in the app namespace (a pattern may end in `*`)."""
    return f"system:serviceaccount:{args.namespace_name}:{service_account}"


def db_user_arn(instance: aws.rds.Instance, region: str, role: str) -> pulumi.Output[str]:
    """What `rds-db:connect` names: one database user of one instance (by its resource id)."""
    return pulumi.Output.all(instance.arn, instance.resource_id).apply(
        lambda a: f"arn:aws:rds-db:{region}:{a[0].split(':')[4]}:dbuser:{a[1]}/{role}"
    )


def _connect_statement(sid: str, instances: list[aws.rds.Instance], args: AppAccessArgs, role: str) -> dict:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": "rds-db:connect",
        "Resource": [db_user_arn(instance, args.region, role) for instance in instances],
    }


def _app_role(name: str, args: AppAccessArgs, opts: pulumi.ResourceOptions) -> aws.iam.Role:
    """The app pods' role: list and read the backup prefixes, write `daily/` (no delete, no
    `monthly/`: a compromised pod cannot erase or replace the archive), use the backup key, and
    (iam mode) connect as plexichat_app to the primary and the replicas."""
    backups, db = args.backups, args.database
    objects = [pulumi.Output.concat(backups.bucket_arn, "/", p, "*") for p in PREFIXES]
    connect = (
        [_connect_statement("ConnectAsApp", [db.primary, *db.replicas], args, APP_ROLE)]
        if args.role_secrets is None
        else []
    )
    return irsa_role(
        name,
        "",
        f"PlexiChat app pods ({args.stack}), via IRSA",
        args,
        # See the module docstring for why a prefix and not an exact list.
        {
            "StringLike": service_account_subject(args, f"{naming.APP}-*"),
            "StringNotEquals": [service_account_subject(args, account) for account in NOT_APP_SERVICE_ACCOUNTS],
        },
        [
            {
                "Sid": "ListBackupPrefixes",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": [backups.bucket_arn],
                "Condition": {"StringLike": {"s3:prefix": [f"{p}*" for p in PREFIXES]}},
            },
            {"Sid": "ReadBackups", "Effect": "Allow", "Action": "s3:GetObject", "Resource": objects},
            {
                "Sid": "WriteDailyBackups",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": [pulumi.Output.concat(backups.bucket_arn, "/", DAILY_PREFIX, "*")],
            },
            {
                "Sid": "UseBackupKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": [backups.key_arn],
            },
            *connect,
            *_cache_connect_statement(args.cache),
        ],
        opts,
    )


def _cache_connect_statement(cache: Cache) -> list[dict]:
    """cache.appAuth iam: log in to the replication group as the app's cache user (an IAM token
    names both); nothing in token mode."""
    if cache.app_user is None:
        return []
    return [
        {
            "Sid": "ConnectToCache",
            "Effect": "Allow",
            "Action": "elasticache:Connect",
            "Resource": [cache.group.arn, cache.app_user.arn],
        }
    ]


def _migrator_role(name: str, args: AppAccessArgs, opts: pulumi.ResourceOptions) -> aws.iam.Role:
    """The migration's role (iam mode): connect as plexichat_migrator to the primary, nothing
    else; trusted by exactly the migration's ServiceAccount."""
    return irsa_role(
        name,
        "migrator-",
        f"PlexiChat schema migrations ({args.stack}), via IRSA",
        args,
        {"StringEquals": service_account_subject(args, MIGRATOR_SERVICE_ACCOUNT)},
        [_connect_statement("ConnectAsMigrator", [args.database.primary], args, MIGRATOR_ROLE)],
        opts,
    )


def _store_role(name: str, args: AppAccessArgs, opts: pulumi.ResourceOptions) -> aws.iam.Role:
    """The External Secrets store's role: read and decrypt the role and cache credential secrets,
    nothing else; trusted by exactly the store's ServiceAccount."""
    cache = args.cache
    secrets: list[pulumi.Input[str]] = []
    keys: list[pulumi.Input[str]] = []
    if args.role_secrets is not None:  # database.appAuth password
        secrets += list(args.role_secrets.secret_arns.values())
        keys.append(args.role_secrets.key_arn)
    if cache.auth_secret is not None:  # cache.appAuth token
        secrets.append(cache.auth_secret.arn)
        keys.append(cache.key.arn)
    return irsa_role(
        name,
        "store-",
        f"PlexiChat External Secrets store ({args.stack}), via IRSA",
        args,
        {"StringEquals": service_account_subject(args, STORE_SERVICE_ACCOUNT)},
        [
            {
                "Sid": "ReadAppCredentials",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": secrets,
            },
            {"Sid": "DecryptCredentials", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": keys},
        ]
        if secrets
        else [],  # iam for both: nothing to read here (others may grant it more: StoreAccess)
        opts,
    )


def irsa_role(
    name: str,
    prefix: str,
    description: str,
    args: AppAccessArgs,
    subjects: dict,
    statements: list[dict],
    opts: pulumi.ResourceOptions,
) -> aws.iam.Role:
    """A role (`<name>-<prefix>role`) that pods assume through the cluster's OIDC provider, with
    an inline policy of `statements`. `subjects`: condition operator -> the ServiceAccount
    subject it tests."""
    provider_arn = args.irsa.oidc_provider_arn
    issuer = provider_arn.split(":oidc-provider/", 1)[1]
    condition: dict[str, dict[str, str]] = {"StringEquals": {f"{issuer}:aud": "sts.amazonaws.com"}}
    for operator, value in subjects.items():
        condition.setdefault(operator, {})[f"{issuer}:sub"] = value
    role = aws.iam.Role(
        f"{name}-{prefix}role",
        description=description,
        assume_role_policy=pulumi.Output.json_dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": provider_arn},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": condition,
                    }
                ],
            }
        ),
        opts=opts,
    )
    if statements:  # IAM refuses a policy without one
        aws.iam.RolePolicy(
            f"{name}-{prefix}policy",
            role=role.id,
            policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements}),
            opts=opts,
        )
    return role


def _environment(args: AppAccessArgs, role: str) -> list[k8s.core.v1.EnvVarArgs]:
    """What the containers of `role` read: endpoints as values, credentials by reference to the
    Secrets External Secrets keeps (password mode) or the role's name and the IAM flag (iam mode:
    the app signs a token with its IRSA role)."""
    db, cache = args.database, args.cache
    if args.role_secrets is not None:
        credentials = [
            env_from_secret("PLEXICHAT_DATABASE_USER", ROLE_CREDENTIALS_SECRETS[role], "username"),
            env_from_secret("PLEXICHAT_DATABASE_PASSWORD", ROLE_CREDENTIALS_SECRETS[role], "password"),
        ]
    else:
        credentials = [_value("PLEXICHAT_DATABASE_USER", role), _value("PLEXICHAT_DATABASE_IAM_AUTH", "true")]
    if cache.app_user is None:
        cache_credentials = [env_from_secret("PLEXICHAT_REDIS_AUTH_TOKEN", CACHE_AUTH_SECRET, "token")]
    else:  # the app signs an IAM token for this user and replication group with its IRSA role
        cache_credentials = [
            _value("PLEXICHAT_REDIS_USER", cache.app_user.user_name),
            _value("PLEXICHAT_REDIS_CACHE_NAME", cache.group.replication_group_id),
            _value("PLEXICHAT_REDIS_IAM_AUTH", "true"),
        ]
    return [
        _value("PLEXICHAT_DATABASE_HOST", db.address),
        _value("PLEXICHAT_DATABASE_READER_HOSTS", db.reader_addresses.apply(",".join)),
        _value("PLEXICHAT_DATABASE_PORT", str(DB_PORT)),
        _value("PLEXICHAT_DATABASE_NAME", DB_NAME),
        _value("PLEXICHAT_DATABASE_SSLMODE", "verify-full"),
        *credentials,
        _value("PLEXICHAT_REDIS_HOST", cache.primary_address),
        _value("PLEXICHAT_REDIS_READER_HOST", cache.reader_address),
        _value("PLEXICHAT_REDIS_PORT", str(CACHE_PORT)),
        _value("PLEXICHAT_REDIS_TLS", "true"),
        *cache_credentials,
        _value("PLEXICHAT_BACKUP_BUCKET", args.backups.bucket_name),
        _value("AWS_REGION", args.region),
    ]


def _value(env_name: str, v: pulumi.Input[str]) -> k8s.core.v1.EnvVarArgs:
    return k8s.core.v1.EnvVarArgs(name=env_name, value=v)
