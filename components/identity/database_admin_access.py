"""The RDS master credential, for the database bootstrap alone.

The app and the migration log in as their own roles (components/data/database_roles.py); only the
bootstrap Job (components/cluster/database_bootstrap_job.py), which creates and converges those
roles, needs the master user. So the master secret has its own path into the cluster, apart from
the app's (components/identity/app_access.py): its own IRSA role, allowed to read and decrypt the
master secret and nothing else and trusted by exactly its own ServiceAccount; its own
`SecretStore`; and one `ExternalSecret` that materialises it as the Secret only the bootstrap
Job references. The app's store cannot read the master secret at all.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.identity.app_access import (
    ADMIN_STORE_SERVICE_ACCOUNT,
    AppAccessArgs,
    irsa_role,
    service_account_subject,
)
from components.identity.external_secrets import external_secret, secret_store

ADMIN_SECRET_STORE = "plexichat-aws-db-admin"
MASTER_CREDENTIALS_SECRET = "plexichat-db-master-credentials"


class DatabaseAdminAccess(pulumi.ComponentResource):
    master_credentials: k8s.apiextensions.CustomResource
    """The ExternalSecret behind MASTER_CREDENTIALS_SECRET (keys `username`, `password`)."""

    def __init__(self, name: str, args: AppAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:identity:DatabaseAdminAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        db = args.database
        role = irsa_role(
            name,
            "",
            f"PlexiChat database bootstrap's secret store ({args.stack}), via IRSA",
            args,
            {"StringEquals": service_account_subject(args, ADMIN_STORE_SERVICE_ACCOUNT)},
            [
                {
                    "Sid": "ReadMasterCredential",
                    "Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                    "Resource": [db.master_secret_arn],
                },
                {
                    "Sid": "DecryptMasterCredential",
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": [db.key.arn],
                },
            ],
            child,
        )
        store = secret_store(name, "", ADMIN_SECRET_STORE, ADMIN_STORE_SERVICE_ACCOUNT, args, role, child)
        self.master_credentials = external_secret(
            name,
            "master-credentials",
            MASTER_CREDENTIALS_SECRET,
            [
                {"secretKey": key, "remoteRef": {"key": db.master_secret_arn, "property": key}}
                for key in ("username", "password")
            ],
            ADMIN_SECRET_STORE,
            args,
            store,
            child,
        )
        self.register_outputs({"role_arn": role.arn})
