"""The Terraform plan of a stack's AWS resources (`plexictl.offline.terraform_plan`): the names,
shapes and references checkov's `terraform_plan` framework reads (tests/test_static_scan.py runs
checkov on it)."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from plexictl.offline import UNKNOWN, Rendering, Resource, is_secret, mocks, terraform_plan
from plexictl.offline.terraform_plan import UnmappedType, plan, terraform_type
from tests.conftest import STACKS, rendered

# Reviewed by hand against the Terraform AWS provider's resource names (pulumi-aws's bridge
# metadata, `renames.resources`). A new AWS type in a stack fails the first test until it is here.
TERRAFORM_TYPES = {
    "aws:acm/certificate:Certificate": "aws_acm_certificate",
    "aws:acm/certificateValidation:CertificateValidation": "aws_acm_certificate_validation",
    "aws:backup/plan:Plan": "aws_backup_plan",
    "aws:backup/restoreTestingPlan:RestoreTestingPlan": "aws_backup_restore_testing_plan",
    "aws:backup/restoreTestingSelection:RestoreTestingSelection": "aws_backup_restore_testing_selection",
    "aws:backup/selection:Selection": "aws_backup_selection",
    "aws:backup/vault:Vault": "aws_backup_vault",
    "aws:backup/vaultLockConfiguration:VaultLockConfiguration": "aws_backup_vault_lock_configuration",
    "aws:cloudfront/cachePolicy:CachePolicy": "aws_cloudfront_cache_policy",
    "aws:cloudfront/distribution:Distribution": "aws_cloudfront_distribution",
    "aws:cloudfront/function:Function": "aws_cloudfront_function",
    "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy": "aws_cloudfront_response_headers_policy",
    "aws:cloudwatch/eventRule:EventRule": "aws_cloudwatch_event_rule",
    "aws:cloudwatch/logDelivery:LogDelivery": "aws_cloudwatch_log_delivery",
    "aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination": "aws_cloudwatch_log_delivery_destination",
    "aws:cloudwatch/logDeliverySource:LogDeliverySource": "aws_cloudwatch_log_delivery_source",
    "aws:cloudwatch/eventTarget:EventTarget": "aws_cloudwatch_event_target",
    "aws:cloudwatch/logGroup:LogGroup": "aws_cloudwatch_log_group",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "aws_cloudwatch_metric_alarm",
    "aws:ec2/securityGroup:SecurityGroup": "aws_security_group",
    "aws:elasticache/parameterGroup:ParameterGroup": "aws_elasticache_parameter_group",
    "aws:elasticache/replicationGroup:ReplicationGroup": "aws_elasticache_replication_group",
    "aws:elasticache/subnetGroup:SubnetGroup": "aws_elasticache_subnet_group",
    "aws:iam/role:Role": "aws_iam_role",
    "aws:iam/rolePolicy:RolePolicy": "aws_iam_role_policy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "aws_iam_role_policy_attachment",
    "aws:kms/key:Key": "aws_kms_key",
    "aws:lambda/function:Function": "aws_lambda_function",
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": "aws_lambda_function_event_invoke_config",
    "aws:lambda/permission:Permission": "aws_lambda_permission",
    "aws:rds/instance:Instance": "aws_db_instance",
    "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication": (
        "aws_db_instance_automated_backups_replication"
    ),
    "aws:rds/parameterGroup:ParameterGroup": "aws_db_parameter_group",
    "aws:rds/snapshot:Snapshot": "aws_db_snapshot",
    "aws:rds/subnetGroup:SubnetGroup": "aws_db_subnet_group",
    "aws:route53/healthCheck:HealthCheck": "aws_route53_health_check",
    "aws:route53/record:Record": "aws_route53_record",
    "aws:s3/bucket:Bucket": "aws_s3_bucket",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "aws_s3_bucket_lifecycle_configuration",
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration": "aws_s3_bucket_object_lock_configuration",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "aws_s3_bucket_ownership_controls",
    "aws:s3/bucketLogging:BucketLogging": "aws_s3_bucket_logging",
    "aws:s3/bucketPolicy:BucketPolicy": "aws_s3_bucket_policy",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "aws_s3_bucket_public_access_block",
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": "aws_s3_bucket_replication_configuration",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "aws_s3_bucket_server_side_encryption_configuration"
    ),
    "aws:s3/bucketVersioning:BucketVersioning": "aws_s3_bucket_versioning",
    "aws:secretsmanager/secret:Secret": "aws_secretsmanager_secret",
    "aws:secretsmanager/secretRotation:SecretRotation": "aws_secretsmanager_secret_rotation",
    "aws:secretsmanager/secretVersion:SecretVersion": "aws_secretsmanager_secret_version",
    "aws:serverlessrepository/cloudFormationStack:CloudFormationStack": (
        "aws_serverlessapplicationrepository_cloudformation_stack"
    ),
    "aws:sns/topic:Topic": "aws_sns_topic",
    "aws:sns/topicPolicy:TopicPolicy": "aws_sns_topic_policy",
    "aws:sns/topicSubscription:TopicSubscription": "aws_sns_topic_subscription",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "aws_vpc_security_group_ingress_rule",
    "aws:wafv2/ruleGroup:RuleGroup": "aws_wafv2_rule_group",
    "aws:wafv2/webAcl:WebAcl": "aws_wafv2_web_acl",
    "aws:wafv2/webAclAssociation:WebAclAssociation": "aws_wafv2_web_acl_association",
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": "aws_wafv2_web_acl_logging_configuration",
}


def aws_resources(r: Rendering) -> list[Resource]:
    return [x for x in r.resources if x.custom and x.type.startswith("aws:")]


def planned(stack: str, preview: bool = False) -> dict[str, dict]:
    return {x["address"]: x for x in plan(rendered(stack, preview))["planned_values"]["root_module"]["resources"]}


def values(stack: str, address: str) -> dict:
    return planned(stack)[address]["values"]


def configured(stack: str, address: str) -> dict:
    (found,) = [
        x for x in plan(rendered(stack))["configuration"]["root_module"]["resources"] if x["address"] == address
    ]
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_every_aws_resource_of_every_stack_is_in_the_plan_under_its_terraform_type(stack):
    resources = aws_resources(rendered(stack))
    unreviewed = sorted({r.type for r in resources} - set(TERRAFORM_TYPES))
    assert unreviewed == [], "add each with its Terraform name to TERRAFORM_TYPES (and the code if irregular)"
    expected = sorted(f"{TERRAFORM_TYPES[r.type]}.{r.name}" for r in resources)
    assert sorted(planned(stack)) == expected
    assert all(terraform_type(t) == tf for t, tf in TERRAFORM_TYPES.items())


def test_an_aws_type_it_cannot_name_is_an_error_not_a_skipped_resource():
    assert terraform_type("aws:sns/topicPolicy:TopicPolicy") == "aws_sns_topic_policy"  # mechanical
    with pytest.raises(UnmappedType, match=r"aws:ec2/vpcEndpoint:VpcEndpoint.*_IRREGULAR_TYPES"):
        terraform_type("aws:ec2/vpcEndpoint:VpcEndpoint")  # Terraform: aws_vpc_endpoint, not aws_ec2_...
    bucket = aws_resources(rendered("dev"))[0]
    typo = dataclasses.replace(bucket, inputs={**bucket.inputs, "notAnInput": 1})
    with pytest.raises(UnmappedType, match="'notAnInput' is not an input"):
        plan(Rendering(stack="dev", preview=False, resources=[typo]))


def test_arguments_are_snake_case_and_maps_keep_their_keys():
    primary = values("prod", "aws_db_instance.database-primary")
    assert primary["storage_encrypted"] is True
    assert primary["backup_retention_period"] >= 7
    assert primary["vpc_security_group_ids"] == ["database-sg-id"]
    alarm = values("prod", "aws_cloudwatch_metric_alarm.data-db-primary-cpu")
    assert alarm["dimensions"] == {"DBInstanceIdentifier": "plexichat-prod"}  # a map: keys as AWS names them
    rotation_function = values(
        "prod", "aws_serverlessapplicationrepository_cloudformation_stack.database-roles-rotation-function"
    )
    assert "functionName" in rotation_function["parameters"]  # the application's own parameter names


MAPS = ("dimensions", "parameters", "tags", "tags_all", "variables", "restore_metadata_overrides")
"""Arguments that are maps: their keys are AWS's (or the user's), not Terraform argument names."""


@pytest.mark.parametrize("stack", STACKS)
def test_no_camel_case_key_outside_maps(stack):
    def keys(value, in_map=False):
        if isinstance(value, dict):
            for key, item in value.items():
                if not in_map:
                    yield key
                yield from keys(item, in_map=key in MAPS)
        elif isinstance(value, list):
            for item in value:
                yield from keys(item)

    found = {key for resource in planned(stack).values() for key in keys(resource["values"])}
    assert [key for key in sorted(found) if not re.fullmatch(r"[a-z0-9_]+", key)] == []


def test_nested_blocks_take_terraforms_shape():
    assert values("prod", "aws_s3_bucket_versioning.backups-bucket-versioning")["versioning_configuration"] == [
        {"status": "Enabled"}
    ]
    (rule,) = values("prod", "aws_s3_bucket_server_side_encryption_configuration.backups-bucket-encryption")["rule"]
    assert rule["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "aws:kms"
    lifecycle = values("prod", "aws_s3_bucket_lifecycle_configuration.backups-bucket-lifecycle")
    assert "rules" not in lifecycle and len(lifecycle["rule"]) > 1  # Pulumi's plural, Terraform's repeated block
    assert any(r.get("abort_incomplete_multipart_upload") == [{"days_after_initiation": 7}] for r in lifecycle["rule"])
    rotation = values("prod", "aws_secretsmanager_secret_rotation.database-password-rotation")
    assert rotation["rotation_rules"] == [{"automatically_after_days": 30}]
    logging = values("prod", "aws_wafv2_web_acl_logging_configuration.web-waf-logging")
    assert logging["redacted_fields"][0] == {"single_header": [{"name": "authorization"}]}  # plural in Terraform too
    acl = values("prod", "aws_wafv2_web_acl.web-waf")
    assert acl["default_action"] == [{"allow": [{}]}]
    known_bad = next(r for r in acl["rule"] if r["name"] == "aws-known-bad-inputs")
    assert known_bad["override_action"] == [{"none": [{}]}]
    assert (
        known_bad["statement"][0]["managed_rule_group_statement"][0]["name"] == "AWSManagedRulesKnownBadInputsRuleSet"
    )


def test_a_lambdas_code_is_left_out_terraform_names_a_file_there():
    function = dataclasses.replace(
        aws_resources(rendered("dev"))[0],
        type="aws:lambda/function:Function",
        name="rotation",
        urn="urn:pulumi:dev::plexichat::aws:lambda/function:Function::rotation",
        inputs={"code": {"assets": {"handler.py": {"textSha256": "0" * 64}}}, "runtime": "python3.13"},
        property_dependencies={},
    )
    (planned_function,) = plan(Rendering(stack="dev", preview=False, resources=[function]))["planned_values"][
        "root_module"
    ]["resources"]
    assert planned_function["values"] == {"runtime": "python3.13"}


def test_an_input_that_took_another_resources_output_references_it():
    assert configured("prod", "aws_s3_bucket_versioning.backups-bucket-versioning")["expressions"] == {
        "bucket": {"references": ["aws_s3_bucket.backups-bucket.id", "aws_s3_bucket.backups-bucket"]}
    }
    primary = configured("prod", "aws_db_instance.database-primary")["expressions"]
    assert primary["kms_key_id"] == {"references": ["aws_kms_key.database-key.arn", "aws_kms_key.database-key"]}
    assert "engine" not in primary  # a literal references nothing
    replica = configured("prod", "aws_db_instance.database-replica-1")["expressions"]
    assert replica["replicate_source_db"]["references"][-1] == "aws_db_instance.database-primary"
    policy = configured("prod", "aws_sns_topic_policy.alarms-topic-policy")["expressions"]
    assert policy["policy"] == {"references": ["aws_sns_topic.alarms-topic.arn", "aws_sns_topic.alarms-topic"]}
    lifecycle = configured("prod", "aws_s3_bucket_lifecycle_configuration.backups-bucket-lifecycle")
    assert "rule" not in lifecycle["expressions"]  # its rules are literals


def test_references_come_from_the_dependency_graph_not_from_equal_strings():
    r = rendered("prod")
    key, versioning = (
        r.one("aws:kms/key:Key", "database-key"),
        r.one("aws:s3/bucketVersioning:BucketVersioning", "backups-bucket-versioning"),
    )
    arn = mocks.computed_aws_outputs(key.type, key.name, key.inputs)["arn"]
    # The versioning's bucket is set to the key's ARN as a plain string: no dependency, no reference.
    forged = dataclasses.replace(versioning, inputs={**versioning.inputs, "bucket": arn}, property_dependencies={})
    alone = plan(Rendering(stack="prod", preview=False, resources=[key, forged]))
    assert [c["expressions"] for c in alone["configuration"]["root_module"]["resources"]] == [{}, {}]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_no_secret_value_is_in_the_plan(stack, preview):
    r = rendered(stack, preview)
    secrets = set()

    def collect(value):
        if is_secret(value):
            secrets.add(json.dumps(value["value"])[1:-1] if isinstance(value["value"], str) else str(value["value"]))
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    for resource in aws_resources(r):
        collect(resource.inputs)
    assert secrets, "the stacks hold secrets (cache AUTH token, secret versions): nothing was checked"
    text = terraform_plan.dumps(r)
    assert [s for s in secrets if s not in ("", UNKNOWN) and s in text] == []
    assert values(stack, "aws_elasticache_replication_group.cache-group")["auth_token"] == "[secret]"


def test_a_preview_leaves_unknown_values_out_and_lists_them():
    document = plan(rendered("prod", preview=True))
    assert UNKNOWN not in json.dumps(document["planned_values"])
    changes = {c["address"]: c["change"] for c in document["resource_changes"]}
    assert changes["aws_s3_bucket_versioning.backups-bucket-versioning"]["after_unknown"] == {"bucket": True}
    assert changes["aws_s3_bucket_versioning.backups-bucket-versioning"]["actions"] == ["create"]


def test_the_plan_has_the_shape_checkov_reads():
    document = plan(rendered("prod"))
    assert (document["format_version"], document["terraform_version"]) == ("1.2", "1.9.0")  # checkov needs both
    resources = document["planned_values"]["root_module"]["resources"]
    assert all(r["mode"] == "managed" and r["address"] == f"{r['type']}.{r['name']}" for r in resources)
    addresses = [r["address"] for r in resources]
    assert [c["address"] for c in document["resource_changes"]] == addresses
    assert [c["address"] for c in document["configuration"]["root_module"]["resources"]] == addresses
    dr_bucket = configured("prod", "aws_s3_bucket.backups-dr-bucket")["provider_config_key"]
    assert document["configuration"]["provider_config"][dr_bucket]["expressions"]["region"] == {
        "constant_value": "us-west-2"
    }
    assert terraform_plan.MOCK_REGION == mocks.MOCK_REGION


def test_the_plan_is_deterministic():
    r = rendered("prod")
    assert terraform_plan.dumps(r) == terraform_plan.dumps(r)
    # Across processes and hash seeds: tests/test_determinism.py compares whole renders, this file included.
