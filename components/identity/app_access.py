"""What the app may reach, and how its credentials get into the cluster without a manifest ever
holding a secret.

- Two IAM roles through IRSA, each with only what its pods do. The app's role: read and write
  the backup bucket's prefixes, use the backup key. The External Secrets store's role: read the
  two credential secrets and decrypt them. The app's pods get their credentials from the
  environment, so they cannot read a secret from AWS themselves. Every statement names its
  resources; nothing is granted on `*`.
- External Secrets Operator: a `SecretStore` (AWS Secrets Manager, through its own
  ServiceAccount and role) and two `ExternalSecret`s that materialise the database credentials
  (the RDS-managed master secret) and the cache AUTH token as Kubernetes Secrets.
- The environment the web and worker containers get: endpoints as plain values, credentials
  through `secretKeyRef` to those Secrets, and the annotation that makes a Secret reloader
  (Stakater Reloader) roll the Deployments when one of those Secrets changes: a rotated RDS
  password stops working at once, and a container reads its environment only at start.

The app role's trust policy admits every ServiceAccount named `plexichat-*` in the app
namespace (StringLike) except the store's, rather than an exact list: the track ServiceAccounts
come and go with releases (`plexichat-web-canary`, `plexichat-worker-green`), and an exact list
would turn a canary start or a blue-green flip into an IAM change. The namespace holds only this
program's ServiceAccounts (restricted Pod Security, no other writers), so the wildcard admits
nothing else. The store's role trusts exactly its one ServiceAccount.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import naming
from components.config.data import IrsaSettings
from components.data.backups import Backups
from components.data.cache import PORT as CACHE_PORT
from components.data.cache import Cache
from components.data.database import DB_NAME, Database
from components.data.database import PORT as DB_PORT

ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
RELOAD_ANNOTATION = "secret.reloader.stakater.com/reload"
SECRET_STORE = "plexichat-aws"
STORE_SERVICE_ACCOUNT = f"{naming.APP}-external-secrets"  # excluded from the app role's trust
DB_CREDENTIALS_SECRET = "plexichat-db-credentials"
CACHE_AUTH_SECRET = "plexichat-cache-auth"
BACKUP_PREFIXES = ("daily/", "monthly/", "logs/")
EXTERNAL_SECRETS_API = "external-secrets.io/v1"


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
    backups: Backups


class AppAccess(pulumi.ComponentResource):
    role: aws.iam.Role
    store_role: aws.iam.Role
    env: list[k8s.core.v1.EnvVarArgs]
    service_account_annotations: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: AppAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:data:AppAccess", name, None, opts)
        # Children inherit the AWS and Kubernetes providers given to this component.
        child = pulumi.ResourceOptions(parent=self)

        self.role = _app_role(name, args, child)
        self.store_role = _store_role(name, args, child)
        self.service_account_annotations = {ROLE_ARN_ANNOTATION: self.role.arn}
        store = _secret_store(name, args, self.store_role, child)
        db, cache = args.database, args.cache
        _external_secret(
            name,
            "db-credentials",
            DB_CREDENTIALS_SECRET,
            [
                {"secretKey": key, "remoteRef": {"key": db.master_secret_arn, "property": key}}
                for key in ("username", "password")
            ],
            args,
            store,
            child,
        )
        _external_secret(
            name,
            "cache-auth",
            CACHE_AUTH_SECRET,
            [{"secretKey": "token", "remoteRef": {"key": cache.auth_secret.arn}}],
            args,
            store,
            child,
        )

        self.env = _environment(args)
        # On the Deployments (not their pod templates, so adding it restarts nothing): the
        # Secrets the environment reads, whose change must roll the pods.
        self.deployment_annotations = {RELOAD_ANNOTATION: f"{DB_CREDENTIALS_SECRET},{CACHE_AUTH_SECRET}"}
        self.register_outputs({"role_arn": self.role.arn})


def _subject(args: AppAccessArgs, service_account: str) -> str:
    """The `sub` claim of a ServiceAccount token in the app namespace (a pattern may end in `*`)."""
    return f"system:serviceaccount:{args.namespace_name}:{service_account}"


def _app_role(name: str, args: AppAccessArgs, opts: pulumi.ResourceOptions) -> aws.iam.Role:
    """The app pods' role: list, read and write the backup prefixes, and use the backup key."""
    backups = args.backups
    objects = [pulumi.Output.concat(backups.bucket.arn, "/", p, "*") for p in BACKUP_PREFIXES]
    return _irsa_role(
        name,
        "",
        f"PlexiChat app pods ({args.stack}), via IRSA",
        args,
        # See the module docstring for why a prefix and not an exact list.
        {"StringLike": _subject(args, f"{naming.APP}-*"), "StringNotEquals": _subject(args, STORE_SERVICE_ACCOUNT)},
        [
            {
                "Sid": "ListBackupPrefixes",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": [backups.bucket.arn],
                "Condition": {"StringLike": {"s3:prefix": [f"{p}*" for p in BACKUP_PREFIXES]}},
            },
            {
                "Sid": "ReadWriteBackups",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": objects,
            },
            {
                "Sid": "UseBackupKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": [backups.key.arn],
            },
        ],
        opts,
    )


def _store_role(name: str, args: AppAccessArgs, opts: pulumi.ResourceOptions) -> aws.iam.Role:
    """The External Secrets store's role: read and decrypt the two credential secrets, nothing
    else; trusted by exactly the store's ServiceAccount."""
    db, cache = args.database, args.cache
    return _irsa_role(
        name,
        "store-",
        f"PlexiChat External Secrets store ({args.stack}), via IRSA",
        args,
        {"StringEquals": _subject(args, STORE_SERVICE_ACCOUNT)},
        [
            {
                "Sid": "ReadAppCredentials",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": [db.master_secret_arn, cache.auth_secret.arn],
            },
            {
                "Sid": "DecryptCredentials",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": [db.key.arn, cache.key.arn],
            },
        ],
        opts,
    )


def _irsa_role(
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
    aws.iam.RolePolicy(
        f"{name}-{prefix}policy",
        role=role.id,
        policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements}),
        opts=opts,
    )
    return role


def _secret_store(
    name: str, args: AppAccessArgs, store_role: aws.iam.Role, opts: pulumi.ResourceOptions
) -> k8s.apiextensions.CustomResource:
    """The SecretStore for AWS Secrets Manager and the ServiceAccount (with the store's role)
    it authenticates as."""
    labels = naming.common_labels(args.stack)
    store_account = k8s.core.v1.ServiceAccount(
        f"{name}-external-secrets-sa",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=STORE_SERVICE_ACCOUNT,
            namespace=args.namespace,
            labels=labels,
            annotations={ROLE_ARN_ANNOTATION: store_role.arn},
        ),
        # External Secrets requests its own short-lived token for this account.
        automount_service_account_token=False,
        opts=opts,
    )
    return k8s.apiextensions.CustomResource(
        f"{name}-secret-store",
        api_version=EXTERNAL_SECRETS_API,
        kind="SecretStore",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=SECRET_STORE, namespace=args.namespace, labels=labels),
        spec={
            "provider": {
                "aws": {
                    "service": "SecretsManager",
                    "region": args.region,
                    "auth": {"jwt": {"serviceAccountRef": {"name": STORE_SERVICE_ACCOUNT}}},
                }
            },
        },
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[store_account])),
    )


def _external_secret(
    name: str,
    role: str,
    target: str,
    data: list[dict],
    args: AppAccessArgs,
    store: k8s.apiextensions.CustomResource,
    opts: pulumi.ResourceOptions,
) -> None:
    """An ExternalSecret that materialises `data` from the store as the Secret `target`."""
    k8s.apiextensions.CustomResource(
        f"{name}-{role}",
        api_version=EXTERNAL_SECRETS_API,
        kind="ExternalSecret",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=target, namespace=args.namespace, labels=naming.common_labels(args.stack)
        ),
        spec={
            "refreshInterval": args.irsa.secret_refresh_interval,
            "secretStoreRef": {"name": SECRET_STORE, "kind": "SecretStore"},
            # The Kubernetes Secret belongs to the ExternalSecret: never in a manifest.
            "target": {"name": target, "creationPolicy": "Owner", "deletionPolicy": "Retain"},
            "data": data,
        },
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[store])),
    )


def _environment(args: AppAccessArgs) -> list[k8s.core.v1.EnvVarArgs]:
    """What the web and worker containers read: endpoints as values, credentials by reference
    to the Secrets External Secrets keeps."""
    db, cache = args.database, args.cache
    return [
        _value("PLEXICHAT_DATABASE_HOST", db.address),
        _value("PLEXICHAT_DATABASE_READER_HOSTS", db.reader_addresses.apply(",".join)),
        _value("PLEXICHAT_DATABASE_PORT", str(DB_PORT)),
        _value("PLEXICHAT_DATABASE_NAME", DB_NAME),
        _value("PLEXICHAT_DATABASE_SSLMODE", "verify-full"),
        _from_secret("PLEXICHAT_DATABASE_USER", DB_CREDENTIALS_SECRET, "username"),
        _from_secret("PLEXICHAT_DATABASE_PASSWORD", DB_CREDENTIALS_SECRET, "password"),
        _value("PLEXICHAT_REDIS_HOST", cache.primary_address),
        _value("PLEXICHAT_REDIS_READER_HOST", cache.reader_address),
        _value("PLEXICHAT_REDIS_PORT", str(CACHE_PORT)),
        _value("PLEXICHAT_REDIS_TLS", "true"),
        _from_secret("PLEXICHAT_REDIS_AUTH_TOKEN", CACHE_AUTH_SECRET, "token"),
        _value("PLEXICHAT_BACKUP_BUCKET", args.backups.bucket.bucket),
        _value("AWS_REGION", args.region),
    ]


def _value(env_name: str, v: pulumi.Input[str]) -> k8s.core.v1.EnvVarArgs:
    return k8s.core.v1.EnvVarArgs(name=env_name, value=v)


def _from_secret(env_name: str, secret: str, key: str) -> k8s.core.v1.EnvVarArgs:
    return k8s.core.v1.EnvVarArgs(
        name=env_name,
        value_from=k8s.core.v1.EnvVarSourceArgs(secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=secret, key=key)),
    )
