"""External Secrets building blocks: a SecretStore for AWS Secrets Manager with the ServiceAccount
it authenticates as (through its own IRSA role), and ExternalSecrets that materialise Kubernetes
Secrets from it. The app's store and the database admin's store are two of these; other
components deliver through the app's store (`StoreAccess`), granting its role each read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import naming

if TYPE_CHECKING:  # the args are the app access's; importing them at run time would be circular
    from components.config.data import IrsaSettings
    from components.identity.app_access import AppAccessArgs

ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
EXTERNAL_SECRETS_API = "external-secrets.io/v1"


class ExternalSecretScope(Protocol):
    """Where an ExternalSecret goes and how often it refreshes (AppAccessArgs is one)."""

    @property
    def stack(self) -> str: ...
    @property
    def namespace(self) -> pulumi.Input[str]: ...
    @property
    def irsa(self) -> IrsaSettings: ...


@dataclass(frozen=True)
class StoreAccess:
    """A SecretStore another component may deliver its own secrets through: the store's name,
    the store (to create an ExternalSecret after it), and the IAM role it reads Secrets Manager
    with (for that component to grant the read of its secrets and their key, and no more)."""

    name: str
    store: k8s.apiextensions.CustomResource
    role: aws.iam.Role


def secret_store(
    name: str,
    prefix: str,
    store_name: str,
    account: str,
    args: AppAccessArgs,
    store_role: aws.iam.Role,
    opts: pulumi.ResourceOptions,
) -> k8s.apiextensions.CustomResource:
    """The SecretStore `store_name` for AWS Secrets Manager and the ServiceAccount `account` (with
    the store's role) it authenticates as."""
    labels = naming.common_labels(args.stack)
    store_account = k8s.core.v1.ServiceAccount(
        f"{name}-{prefix}external-secrets-sa",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=account,
            namespace=args.namespace,
            labels=labels,
            annotations={ROLE_ARN_ANNOTATION: store_role.arn},
        ),
        # External Secrets requests its own short-lived token for this account.
        automount_service_account_token=False,
        opts=opts,
    )
    return k8s.apiextensions.CustomResource(
        f"{name}-{prefix}secret-store",
        api_version=EXTERNAL_SECRETS_API,
        kind="SecretStore",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=store_name, namespace=args.namespace, labels=labels),
        spec={
            "provider": {
                "aws": {
                    "service": "SecretsManager",
                    "region": args.region,
                    "auth": {"jwt": {"serviceAccountRef": {"name": account}}},
                }
            },
        },
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[store_account])),
    )


def external_secret(
    name: str,
    role: str,
    target: str,
    data: list[dict],
    store_name: str,
    args: ExternalSecretScope,
    store: k8s.apiextensions.CustomResource,
    opts: pulumi.ResourceOptions,
) -> k8s.apiextensions.CustomResource:
    """An ExternalSecret that materialises `data` from the store as the Secret `target`."""
    return k8s.apiextensions.CustomResource(
        f"{name}-{role}",
        api_version=EXTERNAL_SECRETS_API,
        kind="ExternalSecret",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=target, namespace=args.namespace, labels=naming.common_labels(args.stack)
        ),
        spec={
            "refreshInterval": args.irsa.secret_refresh_interval,
            "secretStoreRef": {"name": store_name, "kind": "SecretStore"},
            # The Kubernetes Secret belongs to the ExternalSecret: never in a manifest.
            "target": {"name": target, "creationPolicy": "Owner", "deletionPolicy": "Retain"},
            "data": data,
        },
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[store])),
    )
