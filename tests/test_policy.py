"""The policy pack's rules: each one bites on a bad resource and passes a good one, every stack's
desired state passes all of them, and the CrossGuard adapter hands them the same data."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import runpy
import subprocess
import sys
import warnings

import pytest

from components.config import floors
from plexictl.offline import ROOT, is_secret, run, stack_config
from plexictl.offline.rendering import SECRET_SIG_KEY, SECRET_SIG_VALUE
from policy import rules
from policy.rules import Stack, Subject
from policy.rules.workloads import pod_spec
from tests.conftest import current_config, render_edited, rendered, stack_file
from tests.release_state import pin_versions


def secret(value):
    return {SECRET_SIG_KEY: SECRET_SIG_VALUE, "value": value}


HARDENED_CONTAINER = {
    "name": "web",
    "image": "ghcr.io/plexichat/plexichat:v1.2.3",
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
    "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
    "livenessProbe": {"httpGet": {"path": "/livez", "port": "http"}},
    "env": [{"name": "DATABASE_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}],
}


def deployment(**container_changes) -> Subject:
    container = copy.deepcopy(HARDENED_CONTAINER)
    for path, value in container_changes.items():
        *parents, leaf = path.split("__")
        target = container
        for key in parents:
            target = target.setdefault(key, {})
        if value is None:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    pod = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
    }
    return Subject("kubernetes:apps/v1:Deployment", {"spec": {"template": {"spec": pod}}})


def with_pod(**pod_fields) -> Subject:
    s = deployment()
    s.inputs["spec"]["template"]["spec"].update(pod_fields)
    return s


RDS = "aws:rds/instance:Instance"
CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
SG = "aws:ec2/securityGroup:SecurityGroup"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
GOOD_RDS = {
    "storageEncrypted": True,
    "kmsKeyId": "arn:aws:kms:us-east-1:1:key/k",
    "deletionProtection": True,
    "multiAz": True,
    "backupRetentionPeriod": 14,
    "manageMasterUserPassword": True,
}
ALL_FLOORS = floors.FLOORS_BY_ROLE["active"]
"""What a production stack without overrides must meet."""
GOOD_CACHE = {"numCacheClusters": 2, "multiAzEnabled": True}
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"


def prod(type_: str, inputs: dict, protect: bool = True, **changes) -> Subject:
    """A resource of a production stack held to every floor."""
    return Subject(type_, {**inputs, **changes}, protect=protect, production=True, floors=ALL_FLOORS)


def hpa(component: str, min_replicas: int | None) -> dict:
    spec = {} if min_replicas is None else {"minReplicas": min_replicas}
    return {"metadata": {"labels": {"app.kubernetes.io/component": component}}, "spec": spec}


def waf_rule(name: str, **action) -> dict:
    return {"name": name, **action}


TLS_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}
SSE_KMS = {
    "rules": [
        {
            "applyServerSideEncryptionByDefault": {
                "sseAlgorithm": "aws:kms",
                "kmsMasterKeyId": "arn:aws:kms:us-east-1:1:key/k",
            }
        }
    ]
}


def sg_ingress(port: int, cidr: str) -> dict:
    return {"ingress": [{"protocol": "tcp", "fromPort": port, "toPort": port, "cidrBlocks": [cidr]}]}


def netpol_ingress(*rules_) -> dict:
    return {"spec": {"podSelector": {}, "ingress": list(rules_)}}


# (rule, a compliant resource, a violating one, a phrase the violation must contain)
CASES = [
    (rules.container_hardening, deployment(), deployment(securityContext__runAsNonRoot=False), "runAsNonRoot"),
    (rules.container_hardening, deployment(), deployment(securityContext__runAsUser=0), "root"),
    (
        rules.container_hardening,
        deployment(),
        deployment(securityContext__allowPrivilegeEscalation=None),
        "allowPrivilegeEscalation",
    ),
    (
        rules.container_hardening,
        deployment(),
        deployment(securityContext__readOnlyRootFilesystem=False),
        "readOnlyRootFilesystem",
    ),
    (
        rules.container_hardening,
        deployment(),
        deployment(securityContext__capabilities={"drop": ["NET_RAW"]}),
        "drop must include ALL",
    ),
    (
        rules.container_hardening,
        deployment(),
        deployment(securityContext__capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
        "SYS_ADMIN",
    ),
    (
        rules.container_hardening,
        deployment(),
        deployment(securityContext__seccompProfile={"type": "Unconfined"}),
        "RuntimeDefault",
    ),
    (rules.container_hardening, deployment(), deployment(securityContext__privileged=True), "privileged"),
    (rules.container_hardening, deployment(), with_pod(hostNetwork=True), "hostNetwork"),
    (rules.container_hardening, deployment(), with_pod(hostPID=True), "hostPID"),
    (
        rules.container_hardening,
        deployment(),
        with_pod(volumes=[{"name": "docker", "hostPath": {"path": "/var/run"}}]),
        "hostPath",
    ),
    (
        rules.container_hardening,
        deployment(),
        deployment(ports=[{"containerPort": 8080, "hostPort": 8080}]),
        "hostPort",
    ),
    (rules.container_resources, deployment(), deployment(resources__limits={"cpu": "1"}), "resources.limits.memory"),
    (rules.container_resources, deployment(), deployment(resources=None), "resources.requests.cpu"),
    (rules.image_pinned, deployment(), deployment(image="ghcr.io/plexichat/plexichat:latest"), "not latest"),
    (
        rules.image_pinned,
        deployment(image="localhost:5000/app@sha256:" + "a" * 64),
        deployment(image="localhost:5000/app"),
        "untagged",
    ),
    (
        rules.prod_images_by_digest,
        dataclasses.replace(deployment(image="ghcr.io/plexichat/plexichat:v1.4.2@sha256:" + "a" * 64), production=True),
        dataclasses.replace(deployment(image="ghcr.io/plexichat/plexichat:v1.4.2"), production=True),
        "must be pinned by digest in production",
    ),
    (rules.container_probes, deployment(), deployment(readinessProbe=None), "readinessProbe"),
    (rules.container_probes, deployment(), deployment(livenessProbe=None), "livenessProbe"),
    (
        rules.rds_encrypted,
        Subject(RDS, GOOD_RDS),
        Subject(RDS, {**GOOD_RDS, "storageEncrypted": False}),
        "storageEncrypted",
    ),
    (rules.rds_encrypted, Subject(RDS, GOOD_RDS), Subject(RDS, {**GOOD_RDS, "kmsKeyId": None}), "customer-managed"),
    (  # a cross-region replica (a DR standby's: its source named by ARN) needs a key of its region
        rules.rds_encrypted,
        Subject(RDS, {**GOOD_RDS, "replicateSourceDb": "arn:aws:rds:us-east-1:123456789012:db:plexichat-prod"}),
        Subject(RDS, {"replicateSourceDb": "arn:aws:rds:us-east-1:123456789012:db:plexichat-prod"}),
        "customer-managed",
    ),
    (
        rules.elasticache_encrypted,
        Subject(CACHE, {"atRestEncryptionEnabled": True, "transitEncryptionEnabled": True}),
        Subject(CACHE, {"atRestEncryptionEnabled": True}),
        "transitEncryptionEnabled",
    ),
    (
        rules.elasticache_encrypted,
        Subject(CACHE, {"atRestEncryptionEnabled": True, "transitEncryptionEnabled": True}),
        Subject(CACHE, {"transitEncryptionEnabled": True}),
        "atRestEncryptionEnabled",
    ),
    (
        rules.s3_sse_kms,
        Subject(SSE, SSE_KMS),
        Subject(SSE, {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}),
        "aws:kms",
    ),
    (
        rules.s3_sse_kms,
        # SSE-S3 is what S3 log delivery writes, so only a `<bucket>-access-logs` bucket may have it.
        Subject(
            SSE,
            {"bucket": "b-access-logs", "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]},
        ),
        Subject(
            SSE, {"bucket": "b-backups", "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}
        ),
        "aws:kms",
    ),
    (
        rules.sns_encrypted,
        Subject("aws:sns/topic:Topic", {"kmsMasterKeyId": "alias/plexichat"}),
        Subject("aws:sns/topic:Topic", {"name": "alerts"}),
        "kmsMasterKeyId",
    ),
    (
        rules.log_group_encrypted,
        Subject("aws:cloudwatch/logGroup:LogGroup", {"kmsKeyId": "arn:aws:kms:us-east-1:1:key/k"}),
        Subject("aws:cloudwatch/logGroup:LogGroup", {"retentionInDays": 90}),
        "kmsKeyId",
    ),
    (
        rules.kms_rotation,
        Subject("aws:kms/key:Key", {"enableKeyRotation": True}),
        Subject("aws:kms/key:Key", {"description": "k"}),
        "enableKeyRotation",
    ),
    (
        rules.s3_public_access_blocked,
        Subject(
            PAB,
            dict.fromkeys(["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"], True),
        ),
        Subject(PAB, dict.fromkeys(["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls"], True)),
        "restrictPublicBuckets",
    ),
    (
        rules.s3_tls_only,
        Subject("aws:s3/bucketPolicy:BucketPolicy", {"policy": json.dumps(TLS_ONLY)}),
        Subject("aws:s3/bucketPolicy:BucketPolicy", {"policy": json.dumps({"Statement": []})}),
        "TLS only",
    ),
    (
        rules.prod_rds_protected,
        prod(RDS, GOOD_RDS),
        prod(RDS, GOOD_RDS, deletionProtection=False),
        "deletionProtection",
    ),
    (rules.prod_rds_protected, prod(RDS, GOOD_RDS), prod(RDS, GOOD_RDS, multiAz=False), "multiAz"),
    # A same-region read replica inherits its source's encryption (AWS refuses a key on it) and
    # is no Multi-AZ instance (the other replicas are its redundancy); deletion protection and
    # `protect` still apply to it in production.
    (
        rules.rds_encrypted,
        Subject(RDS, {"replicateSourceDb": "plexichat-prod"}),
        Subject(RDS, {"storageEncrypted": False}),
        "storageEncrypted",
    ),
    (
        rules.prod_rds_protected,
        prod(RDS, {"replicateSourceDb": "plexichat-prod", "deletionProtection": True, "multiAz": False}),
        prod(RDS, {"replicateSourceDb": "plexichat-prod", "deletionProtection": False}),
        "deletionProtection",
    ),
    (
        rules.prod_rds_protected,
        Subject(RDS, {**GOOD_RDS, "backupRetentionPeriod": 0}, production=False),
        prod(RDS, GOOD_RDS, backupRetentionPeriod=1),
        "backupRetentionPeriod",
    ),
    # An override lifts exactly its floor.
    (
        rules.prod_rds_protected,
        Subject(
            RDS,
            {**GOOD_RDS, "deletionProtection": False},
            production=True,
            floors=ALL_FLOORS - {"database.deletionProtection"},
        ),
        Subject(RDS, {**GOOD_RDS, "deletionProtection": False, "multiAz": False}, production=True, floors=ALL_FLOORS),
        "multiAz",
    ),
    (rules.prod_data_protected, prod(RDS, GOOD_RDS), prod(RDS, GOOD_RDS, protect=False), "RDS instance"),
    (
        rules.prod_data_protected,
        prod(RDS, {"replicateSourceDb": "plexichat-prod"}),
        prod(RDS, {"replicateSourceDb": "plexichat-prod"}, protect=False),
        "`protect`",
    ),
    (rules.prod_data_protected, prod(CACHE, GOOD_CACHE), prod(CACHE, GOOD_CACHE, protect=False), "ElastiCache"),
    (
        rules.prod_data_protected,
        prod("aws:cloudwatch/logGroup:LogGroup", {"name": "/aws/waf/x"}, protect=False),
        prod("aws:cloudwatch/logGroup:LogGroup", {"name": "/aws/rds/instance/plexichat-prod/postgresql"}, False),
        "log group /aws/rds/instance/plexichat-prod/postgresql",
    ),
    (
        rules.prod_data_protected,
        Subject(RDS, GOOD_RDS, production=True, floors=ALL_FLOORS - {"dataProtection.protect"}),
        prod("aws:backup/vault:Vault", {}, protect=False),
        "backup vault",
    ),
    (rules.prod_cache_resilient, prod(CACHE, GOOD_CACHE), prod(CACHE, GOOD_CACHE, numCacheClusters=1), "at least 2"),
    (rules.prod_cache_resilient, prod(CACHE, GOOD_CACHE), prod(CACHE, GOOD_CACHE, multiAzEnabled=False), "multiAz"),
    (rules.prod_web_redundant, prod(HPA, hpa("worker", 1)), prod(HPA, hpa("web", 1)), "minReplicas must be at least 2"),
    (rules.prod_web_redundant, prod(HPA, hpa("web", 2)), prod(HPA, hpa("web", None)), "(is 1)"),
    (
        rules.prod_waf_blocks,
        prod(
            WEB_ACL,
            {"rules": [waf_rule("rate", action={"block": {}}), waf_rule("common", overrideAction={"none": {}})]},
        ),
        prod(
            WEB_ACL,
            {"rules": [waf_rule("rate", action={"block": {}}), waf_rule("common", overrideAction={"count": {}})]},
        ),
        "block, not count: common",
    ),
    (
        rules.prod_waf_blocks,
        Subject(WEB_ACL, {"rules": [waf_rule("rate", action={"count": {}})]}, production=False),
        prod(WEB_ACL, {"rules": [waf_rule("rate", action={"count": {}})]}),
        "rate",
    ),
    (
        rules.no_world_data_ports,
        Subject(SG, sg_ingress(5432, "10.0.0.0/16")),
        Subject(SG, sg_ingress(5432, "0.0.0.0/0")),
        "5432 (PostgreSQL) to 0.0.0.0/0",
    ),
    (
        rules.no_world_data_ports,
        Subject(SG, sg_ingress(443, "0.0.0.0/0")),
        Subject(SG, {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "ipv6CidrBlocks": ["::/0"]}]}),
        "6379 (Redis) to ::/0",
    ),
    (
        rules.no_world_data_ports,
        Subject(
            SG_INGRESS,
            {"ipProtocol": "tcp", "fromPort": 6379, "toPort": 6379, "referencedSecurityGroupId": "sg-cluster"},
        ),
        Subject(SG_INGRESS, {"ipProtocol": "tcp", "fromPort": 6000, "toPort": 7000, "cidrIpv4": "0.0.0.0/0"}),
        "6379",
    ),
    (
        rules.no_world_data_ports,
        Subject(
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            {"type": "egress", "protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["0.0.0.0/0"]},
        ),
        Subject(
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            {"type": "ingress", "protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["0.0.0.0/0"]},
        ),
        "5432",
    ),
    (
        rules.no_world_data_ports,
        Subject(
            NETPOL,
            netpol_ingress({"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]}),
        ),
        Subject(
            NETPOL,
            netpol_ingress(
                {"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 5432}]}
            ),
        ),
        "0.0.0.0/0",
    ),
    (
        rules.no_world_data_ports,
        Subject(NETPOL, netpol_ingress({"from": [{"podSelector": {}}], "ports": [{"port": 6379}]})),
        Subject(NETPOL, netpol_ingress({"ports": [{"protocol": "TCP", "port": 6379}]})),
        "any source",
    ),
    (
        rules.secrets_as_secrets,
        Subject(RDS, {"password": secret("hunter2-hunter2")}),
        Subject(RDS, {"password": "hunter2-hunter2"}),
        "password must be a Pulumi secret",
    ),
    (
        rules.secrets_as_secrets,
        Subject(CACHE, {"authToken": secret("t" * 32)}),
        Subject(CACHE, {"authToken": "t" * 32}),
        "authToken",
    ),
    (
        rules.secrets_as_secrets,
        Subject("kubernetes:core/v1:Secret", {"stringData": secret({"url": "redis://"})}),
        Subject("kubernetes:core/v1:Secret", {"stringData": {"url": "redis://"}}),
        "stringData",
    ),
    (
        rules.secrets_as_secrets,
        deployment(),
        deployment(env=[{"name": "REDIS_AUTH_TOKEN", "value": "t" * 32}]),
        "REDIS_AUTH_TOKEN",
    ),
]


@pytest.mark.parametrize(
    "rule, good, bad, phrase",
    CASES,
    ids=[f"{c[0].__name__}-{c[3].split()[0]}" for c in CASES],
)
def test_rule_passes_the_good_resource_and_names_the_bad_one(rule, good, bad, phrase):
    assert rule(good) == []
    found = rule(bad)
    assert found and any(phrase in message for message in found), found


def test_every_policy_of_the_pack_has_cases():
    assert {p.check for p in rules.POLICIES} == {c[0] for c in CASES}


def test_digests_are_required_of_production_workloads_only():
    by_tag = deployment(image="ghcr.io/plexichat/plexichat:v1.4.2")
    assert rules.prod_images_by_digest(by_tag) == []  # staging, dev: a version tag will do
    job = Subject("kubernetes:batch/v1:Job", {"spec": by_tag.inputs["spec"]}, production=True)
    assert rules.prod_images_by_digest(job) == []  # Jobs: `image-pinned` only (docstring)


def test_unknown_values_are_not_violations():
    """In a preview, a value from another resource's output is unknown; the rule waits for up."""
    unknown = rules.UNKNOWN
    assert rules.rds_encrypted(Subject(RDS, {"storageEncrypted": True, "kmsKeyId": unknown})) == []
    assert rules.s3_tls_only(Subject("aws:s3/bucketPolicy:BucketPolicy", {"policy": unknown})) == []
    assert rules.prod_rds_protected(prod(RDS, GOOD_RDS, backupRetentionPeriod=unknown, multiAz=unknown)) == []
    assert rules.prod_cache_resilient(prod(CACHE, {"numCacheClusters": unknown, "multiAzEnabled": unknown})) == []


def test_secrecy_is_only_judged_where_it_can_be_seen():
    plain_password = {"password": "hunter2-hunter2"}
    assert rules.secrets_as_secrets(Subject(RDS, plain_password, secrets_visible=False)) == []
    assert rules.secrets_as_secrets(Subject(RDS, plain_password, secrets_visible=True))


def test_production_comes_from_the_environment_setting_and_unset_counts_as_production():
    assert rules.is_production("production")
    assert not rules.is_production("staging") and not rules.is_production("development")
    assert rules.is_production(None)  # the pack did not get the config: the strictest rules hold


def test_every_floor_is_checked_on_the_resources_too():
    """One table (components/config/floors.py), two enforcers: the pack checks every floor."""
    assert set(floors.BY_NAME) == rules.CHECKED_FLOORS


def test_the_stack_floors_need_two_replicas_and_a_lock_on_every_vault():
    primary = rules.StackResource(RDS, "urn:pulumi:prod::plexichat::rds::db", {}, frozenset())
    replica = rules.StackResource(RDS, "urn:r1", {"replicateSourceDb": "plexichat-prod"}, frozenset())
    vault = rules.StackResource("aws:backup/vault:Vault", "urn:v::vault", {}, frozenset())
    lock = rules.StackResource(
        "aws:backup/vaultLockConfiguration:VaultLockConfiguration", "urn:l", {}, frozenset({vault.urn})
    )
    good = [primary, replica, dataclasses.replace(replica, urn="urn:r2"), vault, lock]
    assert rules.prod_stack_floors(Stack(good, ALL_FLOORS)) == []
    assert rules.prod_stack_floors(Stack([primary, replica, vault], ALL_FLOORS)) == [
        (primary.urn, "production database must have at least 2 read replicas (has 1)"),
        (vault.urn, "production backup vault 'vault' must have a vault lock"),
    ]
    overridden = ALL_FLOORS - {"database.readReplicas", "backups.vaultLock"}
    assert rules.prod_stack_floors(Stack([primary, vault], overridden)) == []
    assert rules.prod_stack_floors(Stack([primary, vault])) == []  # not production


BUCKET_URN = "urn:pulumi:prod::plexichat::aws:s3/bucket:Bucket::backups"


def guards_of(bucket_urn: str, *types: str) -> list[rules.StackResource]:
    return [
        rules.StackResource(t, f"urn:pulumi:prod::plexichat::{t}::g{n}", {}, frozenset({bucket_urn}))
        for n, t in enumerate(types)
    ]


def test_every_bucket_needs_its_public_access_block_encryption_policy_and_access_logging():
    bucket = rules.StackResource(rules.BUCKET, BUCKET_URN, {}, frozenset())
    assert rules.buckets_guarded(Stack([bucket, *guards_of(BUCKET_URN, *rules.BUCKET_GUARDS)])) == []
    found = rules.buckets_guarded(Stack([bucket, *guards_of(BUCKET_URN, PAB, SSE, LOGGING)]))
    assert found == [(BUCKET_URN, "S3 bucket 'backups' has no bucket policy (TLS only) taking the bucket as input")]
    found = rules.buckets_guarded(Stack([bucket, *guards_of(BUCKET_URN, PAB, SSE, POLICY)]))
    assert found == [
        (BUCKET_URN, "S3 bucket 'backups' has no server access logging (or be a log target) taking the bucket as input")
    ]
    # A guard of another bucket does not count.
    other = "urn:pulumi:prod::plexichat::aws:s3/bucket:Bucket::logs"
    assert len(rules.buckets_guarded(Stack([bucket, *guards_of(other, *rules.BUCKET_GUARDS)]))) == 4


# --- every stack, as rendered --------------------------------------------------------------


def subjects(rendering, config, pack):
    """The rendering's resources as the pack sees them, for the stack config `config` (the map
    the CLI hands the pack)."""
    production, required = pack["production_floors"](config)
    for r in rendering.resources:
        if r.custom:
            yield r, Subject(r.type, r.inputs, protect=r.protect, production=production, floors=required)


def stack_of(rendering, config, pack) -> Stack:
    _, required = pack["production_floors"](config)
    resources = [
        rules.StackResource(r.type, r.urn, r.inputs, frozenset(r.dependencies)) for r in rendering.resources if r.custom
    ]
    return Stack(resources, required)


def policy_violations(rendering, config, pack) -> dict:
    found = {f"{r.type} {r.name}": v for r, s in subjects(rendering, config, pack) if (v := rules.violations(s))}
    return {**found, **rules.stack_violations(stack_of(rendering, config, pack))}


def test_every_stack_passes_every_policy(any_stack, pack):
    """The stack files as they are, whatever release each holds today."""
    assert policy_violations(any_stack, current_config(any_stack.stack)[0], pack) == {}


def edited_config(stack: str, edit) -> dict:
    """The config map of `stack`'s pinned file after `edit`, as `render_edited` renders it."""
    data = copy.deepcopy(stack_file(stack))
    edit(data["config"])
    return stack_config(stack, stack_file=data)[0]


def test_production_is_the_environment_setting_not_the_stack_name(pack):
    """A stack named prod that says `environment: staging` is no production stack, and one named
    staging that says `environment: production` is one, held to the floors it does not override."""

    def prod_as_staging(config):
        config["plexichat:environment"] = "staging"
        config["plexichat:database"]["deletionProtection"] = False

    config = edited_config("prod", prod_as_staging)
    assert pack["production_floors"](config) == (False, frozenset())
    assert policy_violations(render_edited("prod", prod_as_staging), config, pack) == {}

    def staging_as_production(config):
        config["plexichat:environment"] = "production"
        pin_versions(config["plexichat:release"])  # production runs only images pinned by digest
        config["plexichat:productionFloorOverrides"] = {"database.readReplicas": "one replica until Q3 (cost)"}

    config = edited_config("staging", staging_as_production)
    assert pack["production_floors"](config) == (True, ALL_FLOORS - {"database.readReplicas"})
    staging = render_edited("staging", staging_as_production)
    assert policy_violations(staging, config, pack) == {}
    # Held to the floors: without its deletion protection, the staging database is refused.
    db = next(s for r, s in subjects(staging, config, pack) if r.type == RDS)
    assert rules.prod_rds_protected(dataclasses.replace(db, inputs={**db.inputs, "deletionProtection": False}))


def test_the_rules_see_the_stacks_workloads(pack):
    """Guard against a rule passing because it never matched: the workload rules read real pods."""
    config = edited_config("prod", lambda config: None)
    checked = [s for _, s in subjects(rendered("prod"), config, pack) if pod_spec(s) is not None]
    assert len(checked) >= 3
    for s in checked:
        s = Subject(s.type, copy.deepcopy(s.inputs))  # the rendering is cached: never edit it
        pod = s.inputs["spec"]["template"]["spec"]
        pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
        assert rules.container_hardening(s)


def _aws_program(**overrides):
    """The data tier's resource kinds, built with the pinned pulumi-aws SDK, compliant unless an
    override loosens them: proves the rules read the input names the SDK really sends."""

    def program():
        import pulumi_aws as aws

        def args(kind: str, **values):
            return {**values, **overrides.get(kind, {})}

        aws.kms.Key("key", **args("key", enable_key_rotation=True))
        aws.rds.Instance(
            "db",
            **args(
                "db",
                engine="postgres",
                instance_class="db.t4g.micro",
                allocated_storage=20,
                storage_encrypted=True,
                kms_key_id="arn:aws:kms:us-east-1:1:key/k",
                deletion_protection=True,
                multi_az=True,
                backup_retention_period=14,
                username="plexichat",
                manage_master_user_password=True,
            ),
        )
        aws.elasticache.ReplicationGroup(
            "cache",
            **args(
                "cache",
                description="redis",
                node_type="cache.t4g.micro",
                at_rest_encryption_enabled=True,
                transit_encryption_enabled=True,
                auth_token="t" * 32,
                num_cache_clusters=2,
                multi_az_enabled=True,
            ),
        )
        bucket = aws.s3.Bucket("backups")
        aws.s3.BucketServerSideEncryptionConfiguration(
            "sse",
            **args(
                "sse",
                bucket=bucket.id,
                rules=[
                    aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                        apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm="aws:kms", kms_master_key_id="arn:aws:kms:us-east-1:1:key/k"
                        )
                    )
                ],
            ),
        )
        aws.s3.BucketPublicAccessBlock(
            "pab",
            **args(
                "pab",
                bucket=bucket.id,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
            ),
        )
        aws.s3.BucketPolicy("policy", **args("policy", bucket=bucket.id, policy=json.dumps(TLS_ONLY)))
        aws.s3.BucketLogging("logging", bucket=bucket.id, target_bucket="backups-access-logs", target_prefix="s3/")
        if overrides.get("unguarded_bucket"):
            aws.s3.Bucket("unguarded")
        aws.sns.Topic("alerts", **args("alerts", kms_master_key_id="alias/plexichat"))
        aws.ec2.SecurityGroup(
            "db-sg",
            **args(
                "db-sg",
                vpc_id="vpc-1",
                ingress=[
                    aws.ec2.SecurityGroupIngressArgs(
                        protocol="tcp", from_port=5432, to_port=5432, cidr_blocks=["10.0.0.0/16"]
                    )
                ],
            ),
        )
        aws.vpc.SecurityGroupIngressRule(
            "redis-in",
            **args(
                "redis-in",
                security_group_id="sg-1",
                ip_protocol="tcp",
                from_port=6379,
                to_port=6379,
                referenced_security_group_id="sg-cluster",
            ),
        )

    return program


def _run_prod(program):
    with warnings.catch_warnings():
        # Some pulumi_aws submodules (s3, ec2) warn at import time about deprecated classes that
        # nothing here uses; pyproject turns pulumi_aws deprecations into errors. The SDK loads
        # submodules lazily, on first attribute access.
        warnings.simplefilter("ignore", DeprecationWarning)
        import pulumi_aws

        pulumi_aws.s3.Bucket, pulumi_aws.ec2.SecurityGroup  # noqa: B018 - loads them
    return run(program, "prod")


def _violations_of(program) -> dict[str, dict[str, list[str]]]:
    rendering = _run_prod(program)
    found = {r.name: v for r in rendering.resources if (v := rules.violations(prod(r.type, r.inputs)))}
    # The stack-wide floors (replica count, vault locks) are not about input names: left out.
    resources = [rules.StackResource(r.type, r.urn, r.inputs, frozenset(r.dependencies)) for r in rendering.resources]
    for policy, hits in rules.stack_violations(Stack(resources)).items():
        for urn, _ in hits:
            found.setdefault(urn.rsplit("::", 1)[-1], {}).setdefault(policy, []).append(urn)
    return found


def test_the_aws_rules_read_the_names_the_sdk_sends():
    assert _violations_of(_aws_program()) == {}
    loosened = _violations_of(
        _aws_program(
            key={"enable_key_rotation": False},
            db={"storage_encrypted": False, "deletion_protection": False, "backup_retention_period": 0},
            cache={"transit_encryption_enabled": False, "multi_az_enabled": False},
            sse={"rules": [{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}]},
            pab={"restrict_public_buckets": False},
            policy={"policy": json.dumps({"Statement": []})},
            alerts={"kms_master_key_id": None},
            unguarded_bucket=True,
            **{
                "db-sg": {
                    "ingress": [{"protocol": "tcp", "from_port": 5432, "to_port": 5432, "cidr_blocks": ["0.0.0.0/0"]}]
                },
                "redis-in": {"referenced_security_group_id": None, "cidr_ipv4": "0.0.0.0/0"},
            },
        )
    )
    assert set(loosened) == {"key", "db", "cache", "sse", "pab", "policy", "alerts", "db-sg", "redis-in", "unguarded"}
    assert len(loosened["unguarded"]["s3-buckets-guarded"]) == 4
    assert set(loosened["db"]) == {"rds-encrypted", "prod-rds-protected"}
    assert set(loosened["cache"]) == {"elasticache-encrypted", "prod-cache-resilient"}


def test_sdk_secret_inputs_arrive_as_secrets():
    """pulumi-aws marks password / authToken secret itself; the rule relies on seeing that."""
    rendering = _run_prod(_aws_program(db={"manage_master_user_password": None, "password": "p" * 20}))
    assert is_secret(rendering.one(RDS, "db").inputs["password"])
    assert is_secret(rendering.one(CACHE, "cache").inputs["authToken"])


# --- the CrossGuard adapter (policy/__main__.py) -------------------------------------------


@pytest.fixture(scope="module")
def pack():
    sys.path.insert(0, str(ROOT / "policy"))
    try:
        # Any run name but "__main__": the module's definitions, without starting the analyzer.
        yield runpy.run_path(str(ROOT / "policy" / "__main__.py"), run_name="policy_pack")
    finally:
        sys.path.remove(str(ROOT / "policy"))


def test_the_pack_enforces_every_rule_as_mandatory(pack):
    assert [p.name for p in pack["policies"]()] == [p.name for p in (*rules.POLICIES, *rules.STACK_POLICIES)]
    source = (ROOT / "policy" / "__main__.py").read_text()
    assert "EnforcementLevel.MANDATORY" in source


def _crossguard_args(pack, type_, props, protect=False, config=None):
    from pulumi_policy.deserialize import deserialize_properties
    from pulumi_policy.policy import (
        PolicyCustomTimeouts,
        PolicyResourceOptions,
        ResourceValidationArgs,
    )
    from pulumi_policy.proxy import unknown_checking_proxy

    opts = PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    proxied = unknown_checking_proxy(deserialize_properties(props))
    return ResourceValidationArgs(type_, proxied, "urn:pulumi:prod::plexichat::t::n", "n", opts, None, config or {})


PRODUCTION = {"plexichat:environment": "production"}


@pytest.fixture
def pack_config(monkeypatch):
    """Hand the pack a stack config the way the Pulumi CLI does: as PULUMI_CONFIG (structured
    values as JSON text), with the stack's name set to something else to show it is not read."""
    from pulumi.runtime import config as runtime_config

    token = runtime_config.CONFIG.set({})  # no config left over from a rendering in this process
    monkeypatch.setattr("pulumi.get_stack", lambda: "prod")
    monkeypatch.setenv("PULUMI_STACK", "prod")

    def give(config: dict) -> None:
        monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))

    yield give
    runtime_config.CONFIG.reset(token)


def test_the_adapter_gives_rules_plain_data_and_unknowns_as_unknown(pack):
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    props = {
        **GOOD_RDS,
        "kmsKeyId": UNKNOWN_STRING_VALUE,
        "password": {SECRET_SIG_KEY: SECRET_SIG_VALUE, "value": "p" * 20},
    }
    s = pack["subject"](_crossguard_args(pack, RDS, props, protect=True), PRODUCTION)
    assert s.inputs["kmsKeyId"] == rules.UNKNOWN
    assert s.inputs["password"] == "p" * 20  # unwrapped by the SDK: secrecy is tested offline
    assert s.production and s.protect and not s.secrets_visible and s.floors == ALL_FLOORS
    assert rules.violations(s) == {}


def test_the_adapter_reads_production_and_overrides_from_the_stack_config(pack, pack_config):
    def reported(rule, props, protect=True) -> list[str]:
        found: list[str] = []
        pack["validator"](rule)(_crossguard_args(pack, RDS, props, protect), lambda m, urn: found.append(m))
        return found

    unprotected = {**GOOD_RDS, "deletionProtection": False}
    pack_config(PRODUCTION)
    assert reported(rules.prod_rds_protected, unprotected) == ["production RDS deletionProtection must be true"]
    assert reported(rules.prod_data_protected, GOOD_RDS, protect=False)
    # The stack is named prod, but says it is staging: no production rule applies.
    pack_config({"plexichat:environment": "staging"})
    assert reported(rules.prod_rds_protected, unprotected) == []
    assert reported(rules.prod_data_protected, GOOD_RDS, protect=False) == []
    # An override, with its reason, lifts its floor and no other.
    overrides = {"database.deletionProtection": "decommissioning, ticket OPS-42"}
    pack_config({**PRODUCTION, "plexichat:productionFloorOverrides": json.dumps(overrides)})
    assert reported(rules.prod_rds_protected, unprotected) == []
    assert reported(rules.prod_rds_protected, {**unprotected, "multiAz": False}) == [
        "production RDS primary must be multiAz"
    ]
    # A pack that sees no environment at all holds the production line.
    pack_config({})
    assert reported(rules.prod_rds_protected, unprotected)


def test_the_adapter_holds_a_dr_standby_to_the_standby_floors(pack):
    """`plexichat:dr.role` selects the floor set, as StackSettings.floor_role does: a standby keeps
    the protection floors only; a promoted standby (active) and a primary meet them all."""

    def floors_of(role: str) -> frozenset[str]:
        return pack["production_floors"]({**PRODUCTION, "plexichat:dr": json.dumps({"role": role})})[1]

    assert floors_of("standby") == floors.FLOORS_BY_ROLE["standby"] != ALL_FLOORS
    assert floors_of("active") == floors_of("primary") == ALL_FLOORS
    for stack in ("prod", "prod-dr"):
        settings_role = "standby" if stack == "prod-dr" else "active"
        assert pack["production_floors"](current_config(stack)[0])[1] == floors.FLOORS_BY_ROLE[settings_role]


def test_the_stack_adapter_reads_the_floors_too(pack, pack_config):
    from pulumi_policy.policy import PolicyResource, StackValidationArgs

    args = _crossguard_args(pack, RDS, GOOD_RDS)
    primary = PolicyResource(RDS, args.props, "urn:db", "db", args.opts, None, None, [], {})
    found: list[tuple[str, str]] = []
    validate = pack["stack_validator"](rules.prod_stack_floors)
    pack_config(PRODUCTION)
    validate(StackValidationArgs([primary]), lambda m, urn: found.append((m, urn)))
    assert found == [("production database must have at least 2 read replicas (has 0)", "urn:db")]
    found.clear()
    pack_config({"plexichat:environment": "development"})
    validate(StackValidationArgs([primary]), lambda m, urn: found.append((m, urn)))
    assert found == []


def test_the_stack_adapter_links_guards_to_their_bucket_by_dependency(pack):
    from pulumi_policy.policy import PolicyResource, StackValidationArgs

    def resource(type_, name, deps=()):
        args = _crossguard_args(pack, type_, {})
        return PolicyResource(
            type_,
            args.props,
            f"urn:pulumi:prod::plexichat::{type_}::{name}",
            name,
            args.opts,
            None,
            None,
            list(deps),
            {},
        )

    bucket = resource(rules.BUCKET, "backups")
    guards = [resource(t, f"g{n}", [bucket]) for n, t in enumerate(rules.BUCKET_GUARDS)]
    reported = []
    validate = pack["stack_validator"](rules.buckets_guarded)
    validate(StackValidationArgs([bucket, *guards]), lambda m, urn: reported.append(urn))
    assert reported == []
    validate(StackValidationArgs([bucket, *guards[:3]]), lambda m, urn: reported.append(urn))
    assert reported == [bucket.urn]


@pytest.mark.external
def test_the_pack_runs_as_the_pulumi_cli_runs_it():
    """Start the pack the way `pulumi preview --policy-pack policy` does (`python -m pulumi.policy`
    on the directory) and talk to it over the analyzer gRPC protocol, as the engine would."""
    import grpc
    from google.protobuf import empty_pb2, json_format, struct_pb2
    from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

    def struct(values: dict) -> struct_pb2.Struct:
        return json_format.ParseDict(values, struct_pb2.Struct())

    env = {
        **os.environ,
        "PULUMI_PROJECT": "plexichat",
        "PULUMI_STACK": "staging",  # the name is not what makes a stack production
        "PULUMI_DRY_RUN": "true",
        "PULUMI_CONFIG": json.dumps(PRODUCTION),  # how the CLI hands the pack the stack's config
    }
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:0", str(ROOT / "policy")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        port = server.stdout.readline().strip()
        assert port.isdigit(), server.stderr.read()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            analyzer = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
            assert info.name == "plexichat"
            assert [p.name for p in info.policies] == [p.name for p in (*rules.POLICIES, *rules.STACK_POLICIES)]
            assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}

            response = analyzer.Analyze(
                analyzer_pb2.AnalyzeRequest(
                    type=RDS,
                    name="db",
                    urn="urn:pulumi:prod::plexichat::aws:rds/instance:Instance::db",
                    properties=struct(
                        {**GOOD_RDS, "storageEncrypted": False, "kmsKeyId": "04da6b54-80e4-46f7-96ec-b56ff0331ba9"}
                    ),  # unknown
                    options=analyzer_pb2.AnalyzerResourceOptions(protect=False),
                ),
                timeout=30,
            )
            # The SDK prefixes each message with its policy's description.
            found = {(d.policyName, d.message.splitlines()[-1]) for d in response.diagnostics}
            assert found == {
                ("rds-encrypted", "RDS storageEncrypted must be true"),
                ("prod-data-protected", "production RDS instance must be created with the `protect` resource option"),
            }
    finally:
        server.kill()
        server.communicate()
