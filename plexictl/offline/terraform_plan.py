"""A stack's AWS resources as a Terraform plan (the JSON of `terraform show -json`), for the tools
that read Terraform: CI runs checkov's `terraform_plan` framework on it (tests/test_static_scan.py),
and `plexictl render` writes it next to `cloud.yaml` as `terraform-plan.json`.

Pulumi AWS is bridged from the Terraform AWS provider, so a resource's inputs are its Terraform
arguments under Pulumi's names. The conversion undoes the renaming, mechanically:

- types: `aws:<module>/<resourceName>:<Resource>` is `aws_<module>_<resource_name>`, except the
  irregular names in `_IRREGULAR_TYPES` (from pulumi-aws's bridge metadata). A module outside
  `_MECHANICAL_MODULES` whose type the table lacks is an error: no resource is ever left out;
- arguments: the SDK's own tables (`pulumi._types`, the ones it serializes inputs with) give each
  camelCase input its snake_case name and its type. A nested object is a Terraform block: a list of
  one (Pulumi flattens blocks of at most one item); a list of objects is a repeated block, which
  Pulumi names in the plural (`rules`) and Terraform in the singular (`rule`), except the few that
  Terraform names in the plural itself (`_PLURAL_BLOCKS`); a map (`tags`) keeps its keys;
- references: an input whose value came from another resource's output (the SDK's per-input
  dependencies, `Resource.property_dependencies`: the `Output` lineage, not string matching)
  references that resource in `configuration`, as Terraform writes `bucket = aws_s3_bucket.b.id`:
  `["aws_s3_bucket.b.id", "aws_s3_bucket.b"]`. This is what checkov's graph checks (CKV2_AWS_*)
  follow. The attribute (`.id`) is the one of the mock's outputs that the value holds;
- secrets are masked (`[secret]`; a block that holds one, secret as a whole, is left out), and
  values a preview does not know are left out of `values`
  and listed in `after_unknown`, as Terraform does. Assets and archives (a Lambda's code) are left
  out: Terraform takes a file name there, which Pulumi does not have.

The plan has no prior state: every resource is a `create`, as `terraform plan` shows a new
environment. `configuration` holds only the references; the values are in `planned_values`.
"""

from __future__ import annotations

import functools
import importlib
import json
import keyword
import re
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from plexictl.offline.rendering import UNKNOWN, Rendering, Resource, mask_secrets

FORMAT_VERSION = "1.2"
TERRAFORM_VERSION = "1.9.0"  # required: without it checkov reads no resource at all
PROVIDER = "registry.terraform.io/hashicorp/aws"
AWS_PROVIDER_TYPE = "pulumi:providers:aws"
SECRET_MASK = "[secret]"  # what `mask_secrets` puts in a secret's place
MOCK_REGION = "us-east-1"  # plexictl.offline.mocks.MOCK_REGION, not imported: that module imports pulumi

_MECHANICAL_MODULES = frozenset(
    {
        "acm",
        "backup",
        "cloudfront",
        "cloudwatch",
        "elasticache",
        "iam",
        "kms",
        "lambda",
        "s3",
        "secretsmanager",
        "sns",
        "vpc",
        "wafv2",
    }
)
"""Modules whose Terraform names are `aws_<module>_<resource>`, apart from `_IRREGULAR_TYPES`."""

_IRREGULAR_TYPES = {
    "aws:ec2/securityGroup:SecurityGroup": "aws_security_group",
    "aws:rds/instance:Instance": "aws_db_instance",
    "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication": (
        "aws_db_instance_automated_backups_replication"
    ),
    "aws:rds/parameterGroup:ParameterGroup": "aws_db_parameter_group",
    "aws:rds/snapshot:Snapshot": "aws_db_snapshot",
    "aws:rds/subnetGroup:SubnetGroup": "aws_db_subnet_group",
    # route53 is not mechanical as a module (aws_route53_hosted_zone_dnssec, ...); these two are.
    "aws:route53/healthCheck:HealthCheck": "aws_route53_health_check",
    "aws:route53/record:Record": "aws_route53_record",
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": "aws_s3_bucket_replication_configuration",
    "aws:serverlessrepository/cloudFormationStack:CloudFormationStack": (
        "aws_serverlessapplicationrepository_cloudformation_stack"
    ),
}

_PLURAL_BLOCKS = frozenset({"redacted_fields"})
"""Repeated blocks that Terraform itself names in the plural (aws_wafv2_web_acl_logging_configuration)."""


class UnmappedType(Exception):
    """A Pulumi AWS type or input the conversion cannot name in Terraform's terms."""


def terraform_type(pulumi_type: str) -> str:
    """`aws:rds/instance:Instance` → `aws_db_instance`; an error for a type it cannot name."""
    if pulumi_type in _IRREGULAR_TYPES:
        return _IRREGULAR_TYPES[pulumi_type]
    module, resource = pulumi_type.split(":")[1].split("/")
    if module not in _MECHANICAL_MODULES:
        raise UnmappedType(
            f"no Terraform type for {pulumi_type}: add it to _IRREGULAR_TYPES in {__name__}, or its "
            f"module to _MECHANICAL_MODULES if all its names are aws_<module>_<resource> (pulumi-aws's "
            f"bridge-metadata.json has them, under `renames.resources`)"
        )
    return f"aws_{module}_{_snake(resource)}"


def plan(rendering: Rendering) -> dict[str, Any]:
    """The rendering's AWS resources as `terraform show -json` prints a plan."""
    resources = [r for r in rendering.resources if r.custom and r.type.startswith("aws:")]
    addresses = _addresses(resources)
    providers = {r.urn: r for r in rendering.resources if r.type == AWS_PROVIDER_TYPE}
    by_urn = rendering.by_urn()
    planned, changes, configured = [], [], []
    for r in resources:
        tf_type, name = addresses[r.urn].split(".", 1)
        values, unknown = _values(r)
        head = {"address": addresses[r.urn], "mode": "managed", "type": tf_type, "name": name}
        planned.append({**head, "provider_name": PROVIDER, "schema_version": 0, "values": values})
        change = {"actions": ["create"], "before": None, "after": values, "after_unknown": unknown}
        changes.append({**head, "provider_name": PROVIDER, "change": change})
        expressions = _references(r, addresses, by_urn, providers)
        configured.append({**head, "provider_config_key": _provider_key(r, providers), "expressions": expressions})
    return {
        "format_version": FORMAT_VERSION,
        "terraform_version": TERRAFORM_VERSION,
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": changes,
        "configuration": {
            "provider_config": {_provider_key(p): _provider_config(p) for p in providers.values()},
            "root_module": {"resources": configured},
        },
    }


def dumps(rendering: Rendering) -> str:
    """The plan as the file `plexictl render` writes: stable, so two renders diff clean."""
    return json.dumps(plan(rendering), indent=1, sort_keys=True) + "\n"


# --- names ------------------------------------------------------------------------------------


def _snake(camel: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", camel).lower()


def _singular(plural: str) -> str:
    if plural in _PLURAL_BLOCKS or not plural.endswith("s"):
        return plural
    return plural[:-3] + "y" if plural.endswith("ies") else plural[:-1]


def _addresses(resources: list[Resource]) -> dict[str, str]:
    """URN → `<terraform type>.<name>`; the name is the Pulumi name (Terraform allows `-`)."""
    addresses: dict[str, str] = {}
    for r in resources:
        address = f"{terraform_type(r.type)}.{_identifier(r.name)}"
        if address in addresses.values():
            raise UnmappedType(f"two resources would both be {address} in the Terraform plan (second: {r.urn})")
        addresses[r.urn] = address
    return addresses


def _identifier(name: str) -> str:
    """A Pulumi name as a Terraform name: letters, digits, `_` and `-`."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


# --- values -----------------------------------------------------------------------------------


def _values(r: Resource) -> tuple[dict[str, Any], dict[str, bool]]:
    """The inputs under Terraform's names and shapes, secrets masked; and what is unknown."""
    inputs = mask_secrets(r.inputs)
    unknown = {_tf_key(r.type, key): True for key, value in inputs.items() if value == UNKNOWN}
    return _block(_args_class(r.type), inputs, r.type), unknown


def _block(args_class: type, inputs: Mapping[str, Any], where: str) -> dict[str, Any]:
    names, types = _schema(args_class)
    block: dict[str, Any] = {}
    for key, value in inputs.items():
        if key not in names:
            raise UnmappedType(f"{where}: {key!r} is not an input of {args_class.__name__}")
        if value == UNKNOWN:
            continue
        kind, nested = _kind(types[key])
        name, path = names[key], f"{where}.{key}"
        if kind == "file":
            continue  # a Lambda's `code`: Terraform has a file name there, the plan no value
        if kind in ("block", "blocks") and value == SECRET_MASK:
            continue  # a block holding a secret is secret as a whole (the SDK marks the input): no value
        if kind == "blocks":
            block[_singular(name)] = [_block(nested, _expect(dict, item, path), path) for item in value]
        elif kind == "block":
            block[name] = [_block(nested, _expect(dict, value, path), path)]
        else:
            block[name] = _plain(value)
    return block


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v != UNKNOWN}
    if isinstance(value, list):
        return [_plain(v) for v in value if v != UNKNOWN]
    return value


def _expect(kind: type, value: Any, path: str) -> Any:
    if not isinstance(value, kind):
        raise UnmappedType(f"{path}: expected a {kind.__name__} (a nested block), got {value!r}")
    return value


def _tf_key(pulumi_type: str, key: str) -> str:
    names, types = _schema(_args_class(pulumi_type))
    return _singular(names[key]) if _kind(types[key])[0] == "blocks" else names[key]


@functools.cache
def _args_class(pulumi_type: str) -> type:
    """The SDK's `<Resource>Args` class: its properties carry the wire names and types."""
    module, resource = pulumi_type.split(":")[1].split("/")[0], pulumi_type.rsplit(":", 1)[1]
    python_module = f"{module}_" if keyword.iskeyword(module) else module  # `lambda` is `lambda_`
    sdk = importlib.import_module("pulumi_aws" if module == "index" else f"pulumi_aws.{python_module}")
    # When a nested type has the name already (`s3.Bucket`'s `BucketServerSideEncryptionConfigurationArgs`),
    # the generator names the resource's `...InitArgs`: the one its own module exports.
    own = importlib.import_module(getattr(sdk, resource).__module__)
    (args_class,) = [name for name in own.__all__ if name in (f"{resource}Args", f"{resource}InitArgs")]
    return getattr(own, args_class)


@functools.cache
def _schema(args_class: type) -> tuple[dict[str, str], dict[str, Any]]:
    """(camelCase → snake_case name, camelCase → type) of an input type, from the SDK's own tables."""
    from pulumi import _types  # the tables the SDK serializes inputs with (pinned in requirements.txt)

    names = {wire: py for py, wire in _types.input_type_py_to_pulumi_names(args_class).items()}
    return names, _types.input_type_types(args_class)


def _kind(annotation: Any) -> tuple[str, Any]:
    """`blocks` (a list of input types), `block` (one input type), `file` (an asset or archive) or
    `value` (maps included)."""
    from pulumi import Archive, Asset, _types

    if isinstance(annotation, type) and issubclass(annotation, (Archive, Asset)):
        return "file", None
    origin = typing.get_origin(annotation)
    if origin is Sequence:
        element = _types.unwrap_type(typing.get_args(annotation)[0])
        if _types.is_input_type(element):
            return "blocks", element
    if isinstance(annotation, type) and _types.is_input_type(annotation):
        return "block", annotation
    return "value", None


# --- references and providers -----------------------------------------------------------------


def _references(
    r: Resource, addresses: dict[str, str], by_urn: dict[str, Resource], providers: dict[str, Resource]
) -> dict[str, Any]:
    """Per input that took another AWS resource's output: Terraform's `references` to it."""
    expressions = {}
    for key, urns in r.property_dependencies.items():
        value = json.dumps(mask_secrets(r.inputs.get(key)))
        references = []
        for urn in urns:
            if urn not in addresses:
                continue  # a component, a provider or a Kubernetes object: not in this plan
            attribute = _attribute_in(value, by_urn[urn], providers)
            references += [f"{addresses[urn]}.{attribute}", addresses[urn]] if attribute else [addresses[urn]]
        if references:
            expressions[_tf_key(r.type, key)] = {"references": references}
    return expressions


def _attribute_in(value: str, source: Resource, providers: dict[str, Resource]) -> str | None:
    """Which attribute of `source` the value holds (`arn`, `id`, ...), as the mock computed it."""
    from plexictl.offline.mocks import computed_aws_outputs, resource_id  # imports pulumi: only when used

    outputs = computed_aws_outputs(source.type, source.name, source.inputs, _provider_region(source, providers))
    outputs["id"] = resource_id(source.name)  # a resource's `id` is the one the mock returns beside its state
    for attribute in ("arn", "id", *sorted(set(outputs) - {"arn", "id"})):
        held = outputs[attribute]
        if isinstance(held, str) and held and _holds_word(value, held):
            return _snake(attribute)
    return None


def _holds_word(text: str, word: str) -> bool:
    """`word` in `text`, whole: `backups-bucket` is not in `backups-bucket-id`, an ARN is in `<arn>/*`."""
    start = text.find(word)
    while start != -1:
        end = start + len(word)
        if not _in_word(text[start - 1 : start]) and not _in_word(text[end : end + 1]):
            return True
        start = text.find(word, start + 1)
    return False


def _in_word(char: str) -> bool:
    return bool(char) and (char.isalnum() or char in "_-")


def _provider_region(r: Resource, providers: dict[str, Resource]) -> str:
    provider = providers.get(r.provider.rsplit("::", 1)[0])
    return _region(provider) if provider else MOCK_REGION


def _region(provider: Resource) -> str:
    """The provider's region, or the one the mock engine assumes when it names none."""
    return provider.inputs.get("region", MOCK_REGION)


def _provider_key(r: Resource, providers: dict[str, Resource] | None = None) -> str:
    """`aws.<alias>`: every Pulumi AWS provider is an aliased Terraform provider of its name."""
    provider = r if r.type == AWS_PROVIDER_TYPE else (providers or {}).get(r.provider.rsplit("::", 1)[0])
    return f"aws.{_identifier(provider.name)}" if provider else "aws"


def _provider_config(provider: Resource) -> dict[str, Any]:
    alias = _provider_key(provider).split(".", 1)[1]
    region = {"constant_value": _region(provider)}
    return {"name": "aws", "full_name": PROVIDER, "alias": alias, "expressions": {"region": region}}
