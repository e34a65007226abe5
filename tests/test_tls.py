"""TLS 1.3 wherever a service supports it: every place the desired state sets a TLS version is
found by walking every resource's inputs, and each must be known here and at its minimum.

A TLS version that appears anywhere else (a new resource, a new key) fails the inventory test
until it is classified below, so no new place can slip in at an older version unnoticed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from components.data.database_parameters import TLS13_FROM_MAJOR
from plexictl.offline import Rendering, Resource
from tests.conftest import STACKS, render_edited, rendered
from tests.test_settings import _set

VERSION_TEXT = re.compile(r"\bTLS ?v?1[._]?[0-3]\b|\bTLSV1_[0-3]\b|TLS13|\bSSLv[23]\b", re.IGNORECASE)
"""A value that names a TLS (or SSL) protocol version."""
VERSION_KEY = re.compile(r"(?i)(tls|ssl).*(version|protocol)|protocol.?version|ssl.?policy")
"""A key that sets one."""


def tls_settings(resource: Resource) -> Iterator[tuple[str, Any]]:
    """(path, value) of every input that names or sets a TLS version, JSON policies included."""

    def walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
        if isinstance(value, dict):
            for key, item in value.items():
                if VERSION_KEY.search(key) and not isinstance(item, (dict, list)):
                    yield f"{path}.{key}", item
                else:
                    yield from walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for n, item in enumerate(value):
                if isinstance(item, dict) and "name" in item and "value" in item and VERSION_KEY.search(item["name"]):
                    yield f"{path}[name={item['name']}]", item["value"]
                else:
                    yield from walk(item, f"{path}[{n}]")
        elif isinstance(value, str):
            parsed = _json(value)
            if parsed is not None:
                yield from walk(parsed, f"{path}<json>")
            elif VERSION_TEXT.search(value):
                yield path, value

    yield from walk(resource.inputs, "")


def _json(text: str) -> Any:
    if not text.lstrip().startswith(("{", "[")):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _protocol_minimum(text: str) -> float:
    """The oldest version a protocol list such as `TLSv1.2 TLSv1.3` admits."""
    versions = [float(f"1.{minor}") for minor in re.findall(r"TLSv1\.([0-3])", text)]
    if not versions or re.search(r"SSLv|TLSv1(?![.])", text):
        return 0.0
    return min(versions)


def classify(resource: Resource, path: str, value: Any) -> tuple[str, float] | None:
    """(what it is, the oldest TLS version it admits) for a known place; None for an unknown one."""
    if resource.type == "kubernetes:core/v1:ConfigMapPatch" and path == ".data.ssl-protocols":
        return "NGINX ssl-protocols", _protocol_minimum(value)
    if (
        resource.type == "aws:rds/parameterGroup:ParameterGroup"
        and path == ".parameters[name=ssl_min_protocol_version]"
    ):
        return "PostgreSQL ssl_min_protocol_version", _protocol_minimum(value)
    if resource.type == "aws:s3/bucketPolicy:BucketPolicy" and path.endswith(".NumericLessThan.s3:TlsVersion"):
        # A Deny on requests older than this: the value is the minimum admitted.
        return "S3 s3:TlsVersion", float(value)
    if resource.type == "aws:cloudfront/distribution:Distribution":
        if path == ".viewerCertificate.minimumProtocolVersion":
            # CloudFront's security policies: `TLSv1.3_2025` admits TLS 1.3 only, `TLSv1.2_*` 1.2 up.
            matched = re.fullmatch(r"TLSv1\.([23])_\d{4}", value)
            return "CloudFront viewer security policy", float(f"1.{matched[1]}") if matched else 0.0
        if re.fullmatch(r"\.origins(\.value)?\[\d+\]\.customOriginConfig\.originSslProtocols\[\d+\]", path):
            return "CloudFront origin protocols", _protocol_minimum(value)
    return None


AT_MOST_TLS_1_2 = {"CloudFront origin protocols": 1.2}
"""Where the strictest choice a service offers is TLS 1.2: CloudFront's origin protocols stop at
TLSv1.2 (its connection to the load balancer; docs/edge.md)."""


def places(rendering: Rendering) -> list[tuple[Resource, str, Any]]:
    return [(r, path, value) for r in rendering.resources for path, value in tls_settings(r)]


@pytest.mark.parametrize("stack", STACKS)
def test_every_tls_version_in_the_desired_state_is_known_and_at_least_1_3(stack):
    found: dict[str, list[float]] = {}
    unknown = []
    for resource, path, value in places(rendered(stack)):
        known = classify(resource, path, value)
        if known is None:
            unknown.append(f"{resource.type} {resource.name}{path} = {value!r}")
            continue
        found.setdefault(known[0], []).append(known[1])
    assert unknown == [], "a TLS version set somewhere this test does not know: classify it"
    # Every data bucket's policy (a DR standby owns none: its primary's: docs/dr.md).
    # Log buckets deny plain HTTP only: the AWS services that deliver into them choose their TLS.
    own = [
        b for b in rendered(stack).of_type("aws:s3/bucket:Bucket") if not b.inputs["bucket"].endswith("-access-logs")
    ]
    s3 = {"S3 s3:TlsVersion"} if own else set()
    cdn = {"CloudFront viewer security policy", "CloudFront origin protocols"} & set(found)
    assert set(found) == {"NGINX ssl-protocols", "PostgreSQL ssl_min_protocol_version"} | s3 | cdn
    expected = {what: AT_MOST_TLS_1_2.get(what, 1.3) for what in found}
    assert {what: min(minimums) for what, minimums in found.items()} == expected


def test_the_walk_finds_versions_in_keys_lists_and_json_policies():
    """The inventory above is only as good as its walk: it must see each shape a version takes."""
    policy = {"Statement": [{"Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}}}]}
    resource = Resource(
        type="aws:x/y:Z",
        name="n",
        urn="urn:pulumi:s::p::t::n",
        inputs={
            "policy": json.dumps(policy),
            "parameters": [{"name": "ssl_min_protocol_version", "value": "TLSv1.2"}],
            "sslPolicy": "ELBSecurityPolicy-2016-08",
            "data": {"note": "TLSv1.1 only"},
        },
        custom=True,
        parent="",
        provider="",
        protect=False,
        retain_on_delete=False,
        dependencies=[],
        ignore_changes=[],
        aliases=[],
        delete_before_replace=False,
    )
    assert dict(tls_settings(resource)) == {
        ".policy<json>.Statement[0].Condition.NumericLessThan.s3:TlsVersion": "1.2",
        ".parameters[name=ssl_min_protocol_version]": "TLSv1.2",
        ".sslPolicy": "ELBSecurityPolicy-2016-08",
        ".data.note": "TLSv1.1 only",
    }
    assert _protocol_minimum("TLSv1.2 TLSv1.3") == 1.2
    assert _protocol_minimum("TLSv1 TLSv1.3") == 0.0


@pytest.mark.parametrize(
    "version, minimum", [("15", "TLSv1.2"), (str(TLS13_FROM_MAJOR), "TLSv1.3"), ("17.6", "TLSv1.3")]
)
def test_postgresql_gets_tls_1_3_from_major_16_and_1_2_before(version, minimum):
    r = render_edited("dev", _set("database.engineVersion", version))
    group = r.one("aws:rds/parameterGroup:ParameterGroup", "database-params").inputs
    parameters = {p["name"]: p["value"] for p in group["parameters"]}
    assert parameters["ssl_min_protocol_version"] == minimum
    assert parameters["rds.force_ssl"] == "1"


@pytest.mark.parametrize("controller, config_map", [("f5", "nginx-config"), ("community", "ingress-nginx-controller")])
def test_nginx_accepts_only_tls_1_3_in_either_controllers_own_config_map(controller, config_map):
    r = render_edited("dev", _set("ingress.controller", controller))
    (patch,) = r.of_type("kubernetes:core/v1:ConfigMapPatch")
    assert patch.inputs["metadata"]["name"] == config_map
    assert patch.inputs["metadata"]["namespace"] == "nginx-ingress"
    # Only the one key: the rest of the controller's ConfigMap stays its installer's.
    assert patch.inputs["data"] == {"ssl-protocols": "TLSv1.3"}
    renamed = render_edited("dev", _set("ingress.controllerConfigMap", "edge-nginx"))
    assert renamed.of_type("kubernetes:core/v1:ConfigMapPatch")[0].inputs["metadata"]["name"] == "edge-nginx"
