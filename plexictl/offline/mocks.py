"""What the providers would answer: the mock side of Pulumi's mock runtime.

A registration gets its inputs back as outputs, plus what the provider computes on create: ids,
ARNs, endpoints, generated names. Whatever the mock leaves out is `None` when the program reads it
(an f-string then silently says "None"), so the table covers every attribute the program reads.
In preview mode nothing is computed: those values stay unknown, as in a real `pulumi preview`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import pulumi

MOCK_ACCOUNT = "123456789012"
MOCK_REGION = "us-east-1"
SECRET_KEY = "4dabf18193072939515e22adb298388d"
"""How the wire format marks a secret value (plexictl.offline.rendering.SECRET_SIG_KEY)."""


class Mocks(pulumi.runtime.Mocks):
    """Echo inputs back as outputs, plus what the provider would compute."""

    def __init__(self, stack_outputs: Callable[[str], dict[str, Any]] | None = None) -> None:
        self._regions: dict[str, str] = {}  # AWS provider id -> its region
        self._secret_values: dict[str, Any] = {}  # secret ARN -> the value its latest version stored
        self._stack_outputs = stack_outputs
        """A `pulumi.StackReference`'s name -> that stack's outputs (plexictl.offline.stack_references)."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        state = dict(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            if self._stack_outputs is None:
                raise ValueError("this run cannot read other stacks (no stack references given)")
            name = str(state.get("name") or args.resource_id or args.name)
            return name, {"name": name, "outputs": self._stack_outputs(name), "secretOutputNames": []}
        if pulumi.runtime.is_dry_run() and args.typ.startswith(("aws:", "kubernetes:")):
            # A preview knows only what the program set: whatever the provider computes (ARNs,
            # endpoints, generated names) stays unknown until `up`, as in a real preview.
            return "", state
        if args.typ == "pulumi:providers:aws":
            self._regions[f"{args.name}-id"] = state.get("region", MOCK_REGION)
        if args.typ.startswith("kubernetes:") and isinstance(state.get("metadata"), dict):
            metadata = dict(state["metadata"])
            metadata.setdefault("name", f"{args.name}-mock")  # auto-named objects get a suffix
            state["metadata"] = metadata
        if args.typ.startswith("aws:"):
            region = self._regions.get((args.provider or "").rsplit("::", 1)[-1], MOCK_REGION)
            state.update(computed_aws_outputs(args.typ, args.name, state, region))
        if args.typ == "aws:secretsmanager/secretVersion:SecretVersion":
            # What `get_secret_version` reads back: the value the program stored.
            self._secret_values[str(state.get("secretId"))] = _revealed(state.get("secretString"))
        return resource_id(args.name), state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:secretsmanager/getSecretVersion:getSecretVersion":
            secret_id = str(args.args.get("secretId"))
            if secret_id not in self._secret_values:
                raise ValueError(f"no version of secret {secret_id} was stored before it was read")
            return {"secretString": self._secret_values[secret_id], "arn": secret_id, "id": secret_id}, []
        return computed_invoke_result(args.token, args.args), []  # no check failures


def _revealed(value: Any) -> Any:
    """A value as stored, without the wire format's secret wrapping."""
    return value.get("value") if isinstance(value, dict) and SECRET_KEY in value else value


def resource_id(name: str) -> str:
    """The id a resource gets (`resource.id`), also where its outputs hold one of their own."""
    return f"{name}-id"


def _rds_instance(name: str, inputs: dict[str, Any], prefix: str, region: str) -> dict[str, Any]:
    ident = inputs.get("identifier") or name
    address = f"{ident}.c0ffee123456.{region}.rds.amazonaws.com"
    outputs = {
        "arn": f"{prefix}:db:{ident}",
        "identifier": ident,
        "address": address,
        "endpoint": f"{address}:5432",
        "port": 5432,
        # RDS's DbiResourceId (what `rds-db:connect` names), deterministic and shaped like one.
        "resourceId": f"db-{zlib.crc32(ident.encode()):08X}{zlib.crc32(b'rid:' + ident.encode()):08X}",
    }
    if inputs.get("manageMasterUserPassword"):
        outputs["masterUserSecrets"] = [
            {
                "secretArn": f"arn:aws:secretsmanager:{region}:{MOCK_ACCOUNT}:secret:rds!db-{ident}-AbCdEf",
                "kmsKeyId": inputs.get("masterUserSecretKmsKeyId"),
                "secretStatus": "active",
            }
        ]
    return outputs


def _cache_group(name: str, inputs: dict[str, Any], prefix: str, region: str) -> dict[str, Any]:
    group = inputs.get("replicationGroupId") or name
    return {
        "arn": f"{prefix}:replicationgroup:{group}",
        "primaryEndpointAddress": f"master.{group}.c0ffee.use1.cache.amazonaws.com",
        "readerEndpointAddress": f"replica.{group}.c0ffee.use1.cache.amazonaws.com",
    }


def _bucket(name: str, inputs: dict[str, Any], prefix: str, region: str) -> dict[str, Any]:
    bucket = inputs.get("bucket") or f"{name}-c0ffee"
    return {"arn": f"arn:aws:s3:::{bucket}", "bucket": bucket, "id": bucket}


def _kms_key(name: str, inputs: dict[str, Any], prefix: str, region: str) -> dict[str, Any]:
    # Deterministic across runs (Python's hash() is not), shaped like a real key id.
    key_id = f"{zlib.crc32(name.encode()):08x}-0000-4000-8000-{zlib.crc32(b'key:' + name.encode()):012x}"
    return {"arn": f"{prefix}:key/{key_id}", "keyId": key_id, "id": key_id}


_COMPUTED_BY_TYPE: dict[str, Callable[[str, dict[str, Any], str, str], dict[str, Any]]] = {
    "aws:rds/instance:Instance": _rds_instance,
    "aws:elasticache/replicationGroup:ReplicationGroup": _cache_group,
    "aws:s3/bucket:Bucket": _bucket,
    "aws:kms/key:Key": _kms_key,
    "aws:iam/role:Role": lambda name, inputs, prefix, region: {
        "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:role/{inputs.get('name') or name}"
    },
    "aws:backup/vault:Vault": lambda name, inputs, prefix, region: {
        "arn": f"{prefix}:backup-vault:{inputs.get('name') or name}"
    },
    "aws:serverlessrepository/cloudFormationStack:CloudFormationStack": lambda name, inputs, prefix, region: {
        "outputs": {
            "RotationLambdaARN": f"arn:aws:lambda:{region}:{MOCK_ACCOUNT}:function:"
            f"{(inputs.get('parameters') or {}).get('functionName', name)}"
        }
    },
    "aws:secretsmanager/secret:Secret": lambda name, inputs, prefix, region: {
        "arn": f"{prefix}:secret:{inputs.get('name') or name}-AbCdEf"
    },
    "aws:elasticache/user:User": lambda name, inputs, prefix, region: {"arn": f"{prefix}:user:{inputs.get('userId')}"},
    "aws:lambda/function:Function": lambda name, inputs, prefix, region: {
        "arn": f"{prefix}:function:{inputs.get('name') or name}"
    },
}


def _certificate(name: str, inputs: dict[str, Any], prefix: str, region: str) -> dict[str, Any]:
    domain = str(inputs.get("domainName") or name)
    token = f"{zlib.crc32(domain.encode()):08x}"
    return {
        "arn": f"{prefix}:certificate/{token}-0000-4000-8000-000000000000",
        "domainValidationOptions": [
            {
                "domainName": domain,
                "resourceRecordName": f"_{token}.{domain}.",
                "resourceRecordType": "CNAME",
                "resourceRecordValue": f"_{token}.acm-validations.aws.",
            }
        ],
    }


def _distribution(name: str, inputs: dict[str, Any], prefix: str, region: str) -> dict[str, Any]:
    distribution_id = f"E{zlib.crc32(name.encode()):012X}"[:14]
    return {
        "arn": f"arn:aws:cloudfront::{MOCK_ACCOUNT}:distribution/{distribution_id}",
        "domainName": f"d{zlib.crc32(b'cf:' + name.encode()):010x}.cloudfront.net",
        "hostedZoneId": CLOUDFRONT_HOSTED_ZONE,
    }


CLOUDFRONT_HOSTED_ZONE = "Z2FDTNDATAQYW2"
"""The hosted zone of every CloudFront distribution's domain name (Route 53 alias targets)."""

_COMPUTED_BY_TYPE.update(
    {
        "aws:acm/certificate:Certificate": _certificate,
        "aws:cloudfront/distribution:Distribution": _distribution,
        "aws:cloudfront/function:Function": lambda name, inputs, prefix, region: {
            "arn": f"arn:aws:cloudfront::{MOCK_ACCOUNT}:function/{inputs.get('name') or name}"
        },
        "aws:route53/record:Record": lambda name, inputs, prefix, region: {
            "fqdn": str(inputs.get("name") or name).rstrip(".")
        },
        "aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination": lambda name, inputs, prefix, region: {
            "arn": f"arn:aws:logs:{region}:{MOCK_ACCOUNT}:delivery-destination:{inputs.get('name') or name}"
        },
    }
)


def computed_aws_outputs(type_: str, name: str, inputs: dict[str, Any], region: str = MOCK_REGION) -> dict[str, Any]:
    """What AWS reports after create, for the attributes the program reads: `arn`, `id` and
    `name` for everything, plus the per-type names and endpoints of the table above."""
    service = type_.split(":")[1].split("/")[0]
    prefix = f"arn:aws:{service}:{region}:{MOCK_ACCOUNT}"
    outputs: dict[str, Any] = {"arn": f"{prefix}:{name}", "id": resource_id(name), "name": inputs.get("name") or name}
    compute = _COMPUTED_BY_TYPE.get(type_)
    if compute:
        outputs.update(compute(name, inputs, prefix, region))
    return outputs


def computed_invoke_result(token: str, args: dict[str, Any]) -> dict[str, Any]:
    """What the AWS data sources the program reads would answer."""
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {
            "accountId": MOCK_ACCOUNT,
            "id": MOCK_ACCOUNT,
            "userId": "AIDAOFFLINE",
            "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:user/offline",
        }
    if token == "aws:index/getPartition:getPartition":
        return {"partition": "aws", "id": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws"}
    if token == "aws:secretsmanager/getRandomPassword:getRandomPassword":
        return {"randomPassword": "offline-generated-password", "id": "offline"}
    if token == "aws:elb/getServiceAccount:getServiceAccount":
        region = str(args.get("region") or MOCK_REGION)
        account = ELB_ACCOUNTS.get(region, "000000000000")
        return {"arn": f"arn:aws:iam::{account}:root", "id": account, "region": region}
    if token == "aws:lb/getLoadBalancer:getLoadBalancer":
        return _load_balancer(str(args.get("arn") or args.get("name") or "offline"))
    return {}


ELB_ACCOUNTS = {"us-east-1": "127311923021", "us-west-2": "797873946194"}
"""The ELB account that writes a region's load balancer access logs (regions opened before August
2022; AWS's Elastic Load Balancing guide, "Enable access logs")."""
ELB_HOSTED_ZONES = {"us-east-1": "Z35SXDOTRQ7X7K", "us-west-2": "Z1H1FL5HABSF5"}
"""The canonical hosted zone of Application Load Balancers per region (AWS General Reference)."""


def _load_balancer(arn: str) -> dict[str, Any]:
    """An ALB as `aws.lb.get_load_balancer` describes it: its DNS name and canonical zone, by
    the region and name in its ARN (`...:<region>:<account>:loadbalancer/app/<name>/<id>`)."""
    parts = arn.split(":")
    region = parts[3] if len(parts) > 5 else MOCK_REGION
    name = arn.rsplit("/", 2)[-2] if arn.count("/") >= 2 else arn
    return {
        "arn": arn,
        "name": name,
        "dnsName": f"{name}-{zlib.crc32(arn.encode()):010d}.{region}.elb.amazonaws.com",
        "zoneId": ELB_HOSTED_ZONES.get(region, f"ZOFFLINE{region.upper().replace('-', '')}"),
        "loadBalancerType": "application",
    }
