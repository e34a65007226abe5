"""The schema migration of one version: a Kubernetes Job that runs that version's image with
`migrations.command` (alembic upgrade head) before any pod of the version starts.

- One Job per schema version (`components.release.migrations`), named after it
  (`plexichat-migrate-<version slug>`); the Deployments of that version depend on it and Pulumi
  awaits the Job's completion, so a failed or timed-out migration fails the update and no pod of
  the new version starts.
- It stays while its version is the schema's: no `ttlSecondsAfterFinished` (a vanished Job would
  show as drift every night); `pulumi.com/replaceUnready` makes the next update replace a failed
  Job instead of waiting on it; the update's timeouts cover `activeDeadlineSeconds`.
- No Istio sidecar: a Job whose sidecar keeps running never completes. The migration talks only
  to PostgreSQL and AWS APIs outside the mesh, so the pod opts out of injection, and its own
  NetworkPolicy (here) lets it reach DNS, the database in the data subnets and HTTPS at the AWS
  interface endpoints (the private part of `network.egressCidrs`), nothing else; the
  namespace-wide policies leave Job pods out.
- Pod Security `restricted`, its own ServiceAccount without a token, a bounded retry count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import naming
from components.cluster.jobs import JOB_ANNOTATIONS, POD_ANNOTATIONS, awaited, job_network_policy
from components.cluster.network_policies import HTTPS_PORT, POSTGRES_PORT, egress_to_cidrs, egress_to_cluster_dns
from components.cluster.pod_security import TMP_MOUNT, TMP_VOLUME, container_security_context, pod_security_context
from components.config.migrations import MigrationSettings
from components.config.versions import image_reference, label_value, name_slug, pull_policy

MIGRATE = "migrate"


def job_name(version: str) -> str:
    prefix = f"{naming.APP}-{MIGRATE}-"
    return prefix + name_slug(version, 63 - len(prefix))


@dataclass(frozen=True)
class MigrationJobArgs:
    stack: str
    namespace: pulumi.Input[str]
    version: str
    """The schema version: the image that runs, and the Job's name."""
    image_repository: str
    settings: MigrationSettings
    data_cidrs: Sequence[str]
    """The data subnets: PostgreSQL only there (network.dataSubnetCidrs)."""
    endpoint_cidrs: Sequence[str] = ()
    """The AWS interface endpoints (STS for IRSA): HTTPS only to them (the private entries of
    network.egressCidrs); none, no HTTPS."""
    env: Sequence[k8s.core.v1.EnvVarArgs] = ()
    """Database connection and plexichat_migrator's credentials (the app's environment otherwise)."""
    service_account_annotations: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """The IRSA role when the migrator logs in with IAM tokens (database.appAuth: iam)."""
    after: Sequence[pulumi.Resource] = ()
    """What must exist before the migration runs (the database bootstrap, the pre-migration
    snapshot)."""


class MigrationJob(pulumi.ComponentResource):
    job: k8s.batch.v1.Job

    def __init__(self, name: str, args: MigrationJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:cluster:MigrationJob", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {**naming.common_labels(args.stack), **naming.selector_labels(MIGRATE)}
        k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=_account(),
                namespace=args.namespace,
                labels=labels,
                annotations=dict(args.service_account_annotations) or None,
            ),
            # It calls no Kubernetes API; an IRSA token is projected by EKS regardless.
            automount_service_account_token=False,
            opts=child,
        )
        _network_policy(name, args, labels, child)
        self.job = _job(name, args, labels, child)
        self.register_outputs({"job_name": self.job.metadata.name, "version": args.version})


def _account() -> str:
    return naming.object_name(MIGRATE)


def _job(name: str, args: MigrationJobArgs, labels: dict[str, str], opts: pulumi.ResourceOptions) -> k8s.batch.v1.Job:
    deadline = args.settings.active_deadline_seconds
    return k8s.batch.v1.Job(
        # Named after the version: a newer schema version is a new Job next to no old one.
        f"{name}-{name_slug(args.version)}",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=job_name(args.version),
            namespace=args.namespace,
            labels=labels,
            annotations=JOB_ANNOTATIONS,
        ),
        spec=k8s.batch.v1.JobSpecArgs(
            backoff_limit=args.settings.backoff_limit,
            active_deadline_seconds=deadline,
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    labels={**labels, naming.JOB_LABEL: MIGRATE, "version": label_value(args.version)},
                    annotations=POD_ANNOTATIONS,
                ),
                spec=_pod_spec(args),
            ),
        ),
        opts=awaited(opts, deadline, args.after),
    )


def _pod_spec(args: MigrationJobArgs) -> k8s.core.v1.PodSpecArgs:
    image = image_reference(args.image_repository, args.version)
    return k8s.core.v1.PodSpecArgs(
        service_account_name=_account(),
        automount_service_account_token=False,
        restart_policy="Never",
        security_context=pod_security_context(),
        containers=[
            k8s.core.v1.ContainerArgs(
                name=MIGRATE,
                image=image,
                image_pull_policy=pull_policy(image),
                command=list(args.settings.command),
                env=[k8s.core.v1.EnvVarArgs(name="PLEXICHAT_VERSION", value=args.version), *args.env],
                resources=k8s.core.v1.ResourceRequirementsArgs(
                    requests={"cpu": "100m", "memory": "256Mi"}, limits={"cpu": "1", "memory": "256Mi"}
                ),
                security_context=container_security_context(),
                volume_mounts=[TMP_MOUNT],
            )
        ],
        volumes=[TMP_VOLUME],
    )


def _network_policy(
    name: str, args: MigrationJobArgs, labels: dict[str, str], opts: pulumi.ResourceOptions
) -> k8s.networking.v1.NetworkPolicy:
    egress = [
        egress_to_cluster_dns(),
        *egress_to_cidrs(args.data_cidrs, POSTGRES_PORT),
        *egress_to_cidrs(args.endpoint_cidrs, HTTPS_PORT),
    ]
    return job_network_policy(name, MIGRATE, args.namespace, labels, egress, opts)
