"""The database break-glass path (docs/admin-access.md): what an on-call's session pod may be and
reach, declared per stack and absent unless `adminAccess.breakGlass.enabled`.

The session itself is not declared here: `plexictl break-glass` starts it, with the reason, when
it is needed, and it ends itself. What is declared is everything that makes such a pod safe:

- its ServiceAccount, and an IRSA role trusted by exactly that ServiceAccount that may
  `rds-db:connect` as `plexichat_break_glass` (primary and replicas) and do nothing else: no
  password exists to leak, and the database role's grants (components/data/database_roles.py)
  bound what a session can do;
- a ConfigMap with where to connect, so the session needs nothing from the operator's machine;
- its NetworkPolicy: nothing in, DNS, PostgreSQL in the data subnets and the AWS interface
  endpoints (STS) out: a session cannot reach the app, the cache or the internet;
- RBAC: the configured Kubernetes group may create, watch, attach to and delete pods in the app
  namespace and nothing else; the cluster's EKS access entry maps the on-call's SSO role to that
  group. Every step is in the EKS audit log and the session's login in the database log.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import naming
from components.cluster.jobs import job_network_policy
from components.cluster.network_policies import HTTPS_PORT, POSTGRES_PORT, egress_to_cidrs, egress_to_cluster_dns
from components.config.admin_access import BreakGlassSettings
from components.config.cluster import NetworkSettings
from components.data.database import DB_NAME
from components.data.database_roles import BREAK_GLASS_ROLE
from components.identity.app_access import (
    BREAK_GLASS_SERVICE_ACCOUNT,
    AppAccessArgs,
    db_user_arn,
    irsa_role,
    service_account_subject,
)
from components.identity.external_secrets import ROLE_ARN_ANNOTATION

SESSION = "break-glass"
"""The session pods' job label (naming.JOB_LABEL), which their NetworkPolicy selects."""
SESSION_CONFIG_MAP = naming.object_name(SESSION)
REASON_ANNOTATION = "plexichat.com/break-glass-reason"
"""Why the session was started (required on every session pod): the audit log's answer."""


@dataclass(frozen=True)
class BreakGlassAccessArgs:
    access: AppAccessArgs
    """The stack's identity inputs: the database, the OIDC provider, the namespace."""
    settings: BreakGlassSettings
    network: NetworkSettings


class BreakGlassAccess(pulumi.ComponentResource):
    role: aws.iam.Role

    def __init__(self, name: str, args: BreakGlassAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:identity:BreakGlassAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        access, db = args.access, args.access.database
        labels = {**naming.common_labels(access.stack), **naming.selector_labels(SESSION)}

        def metadata(name: str, **extra) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=name, namespace=access.namespace, labels=labels, **extra)

        self.role = irsa_role(
            name,
            "",
            f"PlexiChat database break-glass sessions ({access.stack}), via IRSA",
            access,
            {"StringEquals": service_account_subject(access, BREAK_GLASS_SERVICE_ACCOUNT)},
            [
                {
                    "Sid": "ConnectAsBreakGlass",
                    "Effect": "Allow",
                    "Action": "rds-db:connect",
                    "Resource": [
                        db_user_arn(instance, access.region, BREAK_GLASS_ROLE)
                        for instance in [db.primary, *db.replicas]
                    ],
                }
            ],
            child,
        )
        k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=metadata(BREAK_GLASS_SERVICE_ACCOUNT, annotations={ROLE_ARN_ANNOTATION: self.role.arn}),
            # It calls no Kubernetes API; EKS projects the IRSA token regardless.
            automount_service_account_token=False,
            opts=child,
        )
        k8s.core.v1.ConfigMap(
            f"{name}-connection",
            metadata=metadata(SESSION_CONFIG_MAP),
            data={
                "PGHOST": db.address,
                "PGPORT": str(POSTGRES_PORT),
                "PGDATABASE": DB_NAME,
                "PGUSER": BREAK_GLASS_ROLE,
                "PGSSLMODE": "require",
                "AWS_REGION": access.region,
            },
            opts=child,
        )
        egress = [
            egress_to_cluster_dns(),
            *egress_to_cidrs(args.network.data_cidrs, POSTGRES_PORT),
            *egress_to_cidrs(args.network.endpoint_cidrs, HTTPS_PORT),
        ]
        job_network_policy(name, SESSION, access.namespace, labels, egress, child)
        self._rbac(name, args.settings.kubernetes_group, metadata(naming.object_name(SESSION)), child)
        self._admission(name, access, args.settings.kubernetes_group, labels, child)
        self.register_outputs({"role_arn": self.role.arn, "kubernetes_group": args.settings.kubernetes_group})

    @staticmethod
    def _rbac(name: str, group: str, metadata: k8s.meta.v1.ObjectMetaArgs, opts: pulumi.ResourceOptions) -> None:
        """Start, watch, attach to and end session pods; read the connection ConfigMap (the Role
        and its binding are both named as `metadata` says)."""
        role_name = naming.object_name(SESSION)
        k8s.rbac.v1.Role(
            f"{name}-rbac-role",
            metadata=metadata,
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=[""], resources=["pods"], verbs=["create", "get", "list", "watch", "delete"]
                ),
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=[""], resources=["pods/attach", "pods/log"], verbs=["get", "create"]
                ),
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=[""], resources=["configmaps"], resource_names=[SESSION_CONFIG_MAP], verbs=["get"]
                ),
            ],
            opts=opts,
        )
        k8s.rbac.v1.RoleBinding(
            f"{name}-rbac-binding",
            metadata=metadata,
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=role_name),
            subjects=[k8s.rbac.v1.SubjectArgs(api_group="rbac.authorization.k8s.io", kind="Group", name=group)],
            opts=opts,
        )

    @staticmethod
    def _admission(
        name: str, access: AppAccessArgs, group: str, labels: dict[str, str], opts: pulumi.ResourceOptions
    ) -> None:
        """RBAC cannot say which pods a group may create; this says it: a pod the break-glass
        group creates in the app namespace runs as the break-glass ServiceAccount, carries the
        session label (so its NetworkPolicy applies) and states a reason. Without it the group
        could start a pod as the app's ServiceAccount and borrow the app's role."""
        policy_name = f"{naming.object_name(SESSION)}-{access.namespace_name}"
        reason = f"'{REASON_ANNOTATION}'"
        policy = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
            f"{name}-admission-policy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=policy_name, labels=labels),
            spec=k8s.admissionregistration.v1.ValidatingAdmissionPolicySpecArgs(
                failure_policy="Fail",
                match_constraints=k8s.admissionregistration.v1.MatchResourcesArgs(
                    resource_rules=[
                        k8s.admissionregistration.v1.NamedRuleWithOperationsArgs(
                            api_groups=[""], api_versions=["v1"], operations=["CREATE"], resources=["pods"]
                        )
                    ]
                ),
                match_conditions=[
                    k8s.admissionregistration.v1.MatchConditionArgs(
                        name="by-break-glass-group", expression=f"'{group}' in request.userInfo.groups"
                    )
                ],
                validations=[
                    k8s.admissionregistration.v1.ValidationArgs(
                        expression=f"object.spec.serviceAccountName == '{BREAK_GLASS_SERVICE_ACCOUNT}'",
                        message=f"a break-glass session runs as {BREAK_GLASS_SERVICE_ACCOUNT}",
                    ),
                    k8s.admissionregistration.v1.ValidationArgs(
                        expression=(
                            f"has(object.metadata.labels) && '{naming.JOB_LABEL}' in object.metadata.labels"
                            f" && object.metadata.labels['{naming.JOB_LABEL}'] == '{SESSION}'"
                        ),
                        message=f"a break-glass session carries the label {naming.JOB_LABEL}={SESSION}",
                    ),
                    k8s.admissionregistration.v1.ValidationArgs(
                        expression=(
                            f"has(object.metadata.annotations) && {reason} in object.metadata.annotations"
                            # Not blank: some character that is not white space (RE2, as CEL's matches).
                            f" && object.metadata.annotations[{reason}].matches('\\\\S')"
                        ),
                        message=f"a break-glass session states its reason ({REASON_ANNOTATION})",
                    ),
                ],
            ),
            opts=opts,
        )
        k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
            f"{name}-admission-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=policy_name, labels=labels),
            spec=k8s.admissionregistration.v1.ValidatingAdmissionPolicyBindingSpecArgs(
                policy_name=policy_name,
                validation_actions=["Deny"],
                match_resources=k8s.admissionregistration.v1.MatchResourcesArgs(
                    namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                        match_labels={"kubernetes.io/metadata.name": access.namespace_name}
                    )
                ),
            ),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[policy])),
        )
