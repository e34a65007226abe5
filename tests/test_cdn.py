"""CloudFront for the static assets (components/edge/static_assets_cdn.py, docs/edge.md), on the
rendered desired state of the stacks that have it.

Behaviours are judged path by path with CloudFront's own matching (ordered behaviours first,
the first match wins, then the default one); the default behaviour's function is run in node,
so "serves nothing" is what the code does, not what its name says.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess

import pulumi
import pytest

from components.config.edge import path_pattern_matches
from components.edge.static_assets_cdn import CACHING_DISABLED_POLICY_ID, ORIGIN_HEADER, VIEWER_TLS_POLICY
from components.edge.waf import ORIGIN_RULE, VERIFIED_LABEL
from plexictl import render
from plexictl.offline import Rendering, Resource, is_secret, recording
from tests.conftest import render_edited, rendered
from tests.test_settings import _set

CDN_STACKS = ["staging", "prod"]
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
ASSET_PATHS = ["/static/app.4f2a.js", "/static/css/site.css", "/assets/fonts/inter.woff2"]
NEVER_SERVED = ["/", "/api", "/api/", "/api/messages", "/ws", "/ws/", "/ws/chat", "/index.html", "/readyz", "/static"]


def revealed(value):
    """A recorded input without the wire format's secret wrapping (the test may look inside)."""
    return value["value"] if is_secret(value) else value


def distribution(r: Rendering) -> Resource:
    (found,) = r.of_type(DISTRIBUTION)
    return found


def behaviour_for(dist: Resource, path: str) -> dict:
    """The cache behaviour CloudFront picks for `path`: the first ordered one whose pattern
    matches, else the default one."""
    for behaviour in dist.inputs.get("orderedCacheBehaviors", []):
        if path_pattern_matches(behaviour["pathPattern"], path):
            return behaviour
    return dist.inputs["defaultCacheBehavior"]


def test_cloudfronts_path_matching_as_this_module_evaluates_it():
    assert path_pattern_matches("/static/*", "/static/a/b.js")
    assert path_pattern_matches("/static/*.js", "/static/a/b.js")
    assert not path_pattern_matches("/static/*.js", "/static/a/b.css")
    assert path_pattern_matches("/img/?.png", "/img/a.png") and not path_pattern_matches("/img/?.png", "/img/ab.png")
    assert not path_pattern_matches("/static/*", "/Static/a.js")  # case-sensitive
    assert path_pattern_matches("*", "/api") and path_pattern_matches("/*", "/")


@pytest.mark.parametrize("stack", CDN_STACKS)
@pytest.mark.parametrize("path", ASSET_PATHS)
def test_asset_paths_are_cached_long_and_compressed(stack, path):
    r = rendered(stack)
    behaviour = behaviour_for(distribution(r), path)
    assert behaviour is not distribution(r).inputs["defaultCacheBehavior"]
    assert behaviour["compress"] is True
    assert behaviour["viewerProtocolPolicy"] == "https-only"
    assert behaviour["allowedMethods"] == ["GET", "HEAD"]
    (policy,) = [p for p in r.of_type("aws:cloudfront/cachePolicy:CachePolicy")]
    assert behaviour["cachePolicyId"] == "static-assets-cache-policy-id"
    assert policy.inputs["defaultTtl"] >= 86400 and policy.inputs["maxTtl"] == 31536000
    key = policy.inputs["parametersInCacheKeyAndForwardedToOrigin"]
    assert key["enableAcceptEncodingGzip"] and key["enableAcceptEncodingBrotli"]
    assert key["cookiesConfig"]["cookieBehavior"] == "none"


def run_cloudfront_function(code: str, uri: str) -> dict:
    """The function's handler on a viewer-request event, in node (CloudFront's JavaScript)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = f"{code}\nprocess.stdout.write(JSON.stringify(handler({{request: {{uri: {json.dumps(uri)}}}}})));"
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True, timeout=30)
    return json.loads(done.stdout)


@pytest.mark.parametrize("stack", CDN_STACKS)
def test_no_behaviour_serves_the_api_the_websocket_or_pages_and_the_default_one_serves_nothing(stack):
    r = rendered(stack)
    dist = distribution(r)
    default = dist.inputs["defaultCacheBehavior"]
    for path in NEVER_SERVED:
        assert behaviour_for(dist, path) is default, path
    # The default behaviour answers at the edge: its viewer-request function returns a 404 for
    # every path, so the origin is never asked; and nothing it returns is cached.
    (association,) = default["functionAssociations"]
    assert association["eventType"] == "viewer-request"
    (function,) = r.of_type("aws:cloudfront/function:Function")
    assert association["functionArn"].endswith(f":function/{function.inputs['name']}")
    assert function.inputs["publish"] is True and function.inputs["runtime"] == "cloudfront-js-2.0"
    for path in NEVER_SERVED:
        assert run_cloudfront_function(function.inputs["code"], path) == {
            "statusCode": 404,
            "statusDescription": "Not Found",
        }
    assert default["cachePolicyId"] == CACHING_DISABLED_POLICY_ID


@pytest.mark.parametrize("stack", CDN_STACKS)
def test_errors_are_not_cached_and_viewers_get_tls_1_3_only_over_sni(stack):
    dist = distribution(rendered(stack))
    assert {e["errorCode"]: e["errorCachingMinTtl"] for e in dist.inputs["customErrorResponses"]} == dict.fromkeys(
        (400, 403, 404, 405, 414, 416), 0
    )
    certificate = dist.inputs["viewerCertificate"]
    assert certificate["minimumProtocolVersion"] == VIEWER_TLS_POLICY == "TLSv1.3_2025"
    assert certificate["sslSupportMethod"] == "sni-only"
    assert dist.inputs["httpVersion"] == "http2and3"


@pytest.mark.parametrize("stack", CDN_STACKS)
def test_every_origin_is_https_only_or_uses_origin_access_control(stack):
    origins = revealed(distribution(rendered(stack)).inputs["origins"])
    assert origins
    for origin in origins:
        if origin.get("originAccessControlId"):
            continue
        config = origin["customOriginConfig"]
        assert config["originProtocolPolicy"] == "https-only"
        assert config["originSslProtocols"] == ["TLSv1.2"]  # the strictest CloudFront allows
    (app,) = origins
    assert app["domainName"] == rendered(stack).outputs["url"].removeprefix("https://")


def provider_region(r: Rendering, resource: Resource) -> str:
    provider_urn = resource.provider.rsplit("::", 1)[0]
    (provider,) = [p for p in r.of_type("pulumi:providers:aws") if p.urn == provider_urn]
    assert not provider.name.startswith("default"), resource.urn  # an explicit provider
    return provider.inputs["region"]


@pytest.mark.parametrize("stack", CDN_STACKS)
def test_the_certificate_and_the_cloudfront_waf_are_made_in_us_east_1(stack):
    r = rendered(stack)
    (certificate,) = r.of_type("aws:acm/certificate:Certificate")
    (validation,) = r.of_type("aws:acm/certificateValidation:CertificateValidation")
    (acl,) = [a for a in r.of_type("aws:wafv2/webAcl:WebAcl") if a.inputs["scope"] == "CLOUDFRONT"]
    for resource in (certificate, validation, acl, distribution(r)):
        assert provider_region(r, resource) == "us-east-1", resource.name
    assert certificate.inputs["validationMethod"] == "DNS"
    assert distribution(r).inputs["webAclId"].endswith(f":{acl.name}")
    groups = {rule["statement"].get("managedRuleGroupStatement", {}).get("name") for rule in acl.inputs["rules"]}
    assert "AWSManagedRulesKnownBadInputsRuleSet" in groups
    assert any("rateBasedStatement" in rule["statement"] for rule in acl.inputs["rules"])


@pytest.mark.parametrize("stack", CDN_STACKS)
def test_the_static_host_has_alias_records_to_the_distribution(stack):
    r = rendered(stack)
    host = r.outputs["staticAssets"]["host"]
    aliases = {
        rec.inputs["type"]: rec.inputs["aliases"][0]
        for rec in r.of_type("aws:route53/record:Record")
        if rec.inputs["name"] == host
    }
    assert set(aliases) == {"A", "AAAA"}
    for alias in aliases.values():
        assert alias["name"] == r.outputs["staticAssets"]["distributionDomainName"]
        assert alias["zoneId"] == "Z2FDTNDATAQYW2"
    assert distribution(r).inputs["aliases"] == [host]


def origin_rule_group(r: Rendering) -> Resource:
    (group,) = r.of_type("aws:wafv2/ruleGroup:RuleGroup")
    return group


@pytest.mark.parametrize("mode", ["block", "count"])
def test_the_regional_waf_blocks_asset_paths_without_the_origin_header_in_either_mode(mode):
    r = render_edited("staging", _set("ingress.waf.mode", mode))
    (acl,) = [a for a in r.of_type("aws:wafv2/webAcl:WebAcl") if a.inputs["scope"] == "REGIONAL"]
    rules = {rule["name"]: rule for rule in acl.inputs["rules"]}
    reference = rules[ORIGIN_RULE]
    assert reference["overrideAction"] == {"none": {}}  # the group's block stands, in count mode too
    assert reference["statement"]["ruleGroupReferenceStatement"]["arn"].endswith(":web-waf-origin")
    group = origin_rule_group(r)
    assert is_secret(group.inputs["rules"])
    block = {rule["name"]: rule for rule in revealed(group.inputs["rules"])}[ORIGIN_RULE]
    assert block["action"] == {"block": {}}
    asset_path, missing_header = block["statement"]["andStatement"]["statements"]
    regex = asset_path["regexMatchStatement"]["regexString"]
    assert regex == "^(?:/static/.*|/assets/.*)$"
    (negated,) = missing_header["notStatement"]["statements"]
    header_checks = negated["orStatement"]["statements"]
    assert {c["byteMatchStatement"]["fieldToMatch"]["singleHeader"]["name"] for c in header_checks} == {ORIGIN_HEADER}
    # The rate rule counts no request that carries the header: those come from CloudFront's edge.
    scope_down = rules["rate-limit-per-ip"]["statement"]["rateBasedStatement"]["scopeDownStatement"]
    label = scope_down["notStatement"]["statement"]["labelMatchStatement"]["key"]
    assert label.endswith(f":rulegroup:plexichat-staging-origin:{VERIFIED_LABEL}")
    assert rules["rate-limit-per-ip"]["priority"] > reference["priority"]  # the label exists by then


def stored_origin_values(r: Rendering) -> dict:
    (version,) = [v for v in r.of_type("aws:secretsmanager/secretVersion:SecretVersion") if "origin" in v.name]
    assert is_secret(version.inputs["secretString"])
    assert version.ignore_changes == ["secretString"]
    return json.loads(revealed(version.inputs["secretString"]))


@pytest.mark.parametrize("stack", CDN_STACKS)
def test_cloudfront_and_the_waf_use_the_stored_header_value_only_as_a_secret(stack, tmp_path):
    r = rendered(stack)
    stored = stored_origin_values(r)
    origins = distribution(r).inputs["origins"]
    assert is_secret(origins)
    (header,) = revealed(origins)[0]["customHeaders"]
    assert header == {"name": ORIGIN_HEADER, "value": stored["current"]}
    group_rules = revealed(origin_rule_group(r).inputs["rules"])
    accepted = {
        c["byteMatchStatement"]["searchString"] for c in group_rules[0]["statement"]["orStatement"]["statements"]
    }
    assert accepted == {stored["current"], stored["previous"]}
    # Nowhere in plain text: not in any file `plexictl render` writes.
    render.write(r, tmp_path)
    for path in pathlib.Path(tmp_path).rglob("*"):
        if path.is_file():
            assert stored["current"] not in path.read_text(), path


@pytest.mark.parametrize("stack", CDN_STACKS)
def test_the_cdn_log_bucket_is_sse_s3_unlocked_private_and_keeps_90_days(stack):
    r = rendered(stack)
    owned = [res for res in r.resources if res.parent.endswith("::static-assets")]
    (bucket,) = [b for b in owned if b.type == "aws:s3/bucket:Bucket"]
    name = bucket.inputs["bucket"]
    assert name.endswith("-access-logs") and "objectLockEnabled" not in bucket.inputs
    on_bucket = {res.type.rsplit(":", 1)[-1]: res.inputs for res in owned if res.inputs.get("bucket") == name}
    assert "BucketObjectLockConfiguration" not in on_bucket
    (rule,) = on_bucket["BucketServerSideEncryptionConfiguration"]["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    assert all(on_bucket["BucketPublicAccessBlock"][flag] for flag in ("blockPublicAcls", "blockPublicPolicy"))
    assert all(on_bucket["BucketPublicAccessBlock"][flag] for flag in ("ignorePublicAcls", "restrictPublicBuckets"))
    (lifecycle,) = on_bucket["BucketLifecycleConfiguration"]["rules"]
    assert lifecycle["expiration"]["days"] == 90
    statements = json.loads(on_bucket["BucketPolicy"]["policy"])["Statement"]
    writers = {json.dumps(s["Principal"]) for s in statements if s["Effect"] == "Allow"}
    assert writers == {json.dumps({"Service": "delivery.logs.amazonaws.com"})}
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    (destination,) = r.of_type("aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination")
    assert (
        destination.inputs["deliveryDestinationConfiguration"]["destinationResourceArn"]
        == f"arn:aws:s3:::{name}/cloudfront"
    )
    (source,) = r.of_type("aws:cloudwatch/logDeliverySource:LogDeliverySource")
    assert source.inputs["logType"] == "ACCESS_LOGS" and provider_region(r, source) == "us-east-1"


@pytest.mark.parametrize("stack", ["dev", "staging", "prod", "prod-dr"])
def test_the_load_balancer_log_bucket_admits_only_elb_under_its_prefix(stack):
    r = rendered(stack)
    (bucket,) = [b for b in r.of_type("aws:s3/bucket:Bucket") if b.name == "web-load-balancer-access-logs"]
    assert r.outputs["loadBalancerAccessLogs"] == {"bucket": bucket.inputs["bucket"], "prefix": "alb"}
    (policy,) = [
        p for p in r.of_type("aws:s3/bucketPolicy:BucketPolicy") if p.name == "web-load-balancer-access-logs-policy"
    ]
    (allow,) = [s for s in json.loads(policy.inputs["policy"])["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"]["Service"] == "logdelivery.elasticloadbalancing.amazonaws.com"
    assert allow["Action"] == "s3:PutObject"
    assert allow["Resource"] == f"arn:aws:s3:::{bucket.inputs['bucket']}/alb/AWSLogs/123456789012/*"
    assert provider_region(r, bucket) == rendered(stack).one("pulumi:providers:aws", "plexichat-aws").inputs["region"]


def test_dev_and_the_standby_have_no_distribution():
    assert rendered("dev").of_type(DISTRIBUTION) == [] and "staticAssets" not in rendered("dev").outputs
    assert rendered("prod-dr").of_type(DISTRIBUTION) == []


def test_a_canary_weight_change_touches_no_edge_resource():
    """docs/design.md invariants 1 and 5: the CDN, both WAFs and the log buckets stay as they are."""
    before = rendered("prod")
    after = render_edited("prod", lambda c: c["plexichat:release"]["canary"].update(weight=25))
    after_by_urn = after.by_urn()
    edge = [
        res
        for res in before.resources
        if (res.parent.endswith(("::static-assets", "::web")) and res.type.startswith(("aws:", "pulumi:providers")))
        or res.name.startswith("web-load-balancer-access-logs")
    ]
    assert len([e for e in edge if e.parent.endswith("::static-assets")]) >= 20
    for resource in edge:
        assert after_by_urn[resource.urn].inputs == resource.inputs, resource.urn


def preview_resources(stack: str, edit) -> tuple[list[str], str]:
    registered: list[str] = []
    original = recording.record
    recording.record = lambda request, urn, *rest: registered.append(urn) or original(request, urn, *rest)
    try:
        with pytest.raises(pulumi.RunError) as raised:
            render_edited(stack, edit)
    finally:
        recording.record = original
    return registered, str(raised.value)


def put(path: str, value):
    """Set `plexichat:<a.b.c>`, making the blocks on the way (a stack file may not have them)."""
    top, *rest = path.split(".")

    def edit(config):
        node = config.setdefault(f"plexichat:{top}", {})
        for part in rest[:-1]:
            node = node.setdefault(part, {})
        node[rest[-1]] = value

    return edit


def both(*edits):
    def edit(config):
        for one in edits:
            one(config)

    return edit


BAD_CDN_CONFIGS = [
    *(
        ("staging", _set("edge.cdn.pathPatterns", [pattern]), "plexichat:edge.cdn.pathPatterns.0", hint)
        for pattern, hint in (
            ("/*", "a pattern such as *, /* or /static* would also match"),
            ("*", "must be a CloudFront path pattern under one asset directory"),
            ("/api/*", "must not be under /api/"),
            ("/ws*", "must be a CloudFront path pattern under one asset directory"),
            ("/ws/*", "must not be under /ws/"),
            ("/static*", "must be a CloudFront path pattern under one asset directory"),
        )
    ),
    (
        "staging",
        both(put("traffic.websocketPath", "/live/socket"), _set("edge.cdn.pathPatterns", ["/live/*"])),
        "plexichat:edge.cdn.pathPatterns.0",
        "must not be under traffic.websocketPath (/live/socket)",
    ),
    (
        "dev",
        both(
            put("edge.cdn.enabled", True),
            put("edge.cdn.hostedZoneId", "Z0A1B2C3D4E5F6PLEXI"),
            lambda c: c["plexichat:ingress"]["waf"].pop("loadBalancerArn"),
        ),
        "plexichat:edge.cdn.enabled",
        "needs ingress.waf.loadBalancerArn",
    ),
    ("dev", put("edge.cdn.enabled", True), "plexichat:edge.cdn.hostedZoneId", "required when the CDN is enabled"),
    ("staging", _set("edge.cdn.host", "staging.plexichat.com"), "plexichat:edge.cdn.host", "must be a host of its own"),
    ("staging", _set("edge.cdn.host", "Static_Host"), "plexichat:edge.cdn.host", "a lowercase DNS name"),
    (
        "prod-dr",
        put("edge.cdn.enabled", True),
        "plexichat:edge.cdn.enabled",
        "must be false in a DR standby",
    ),
    ("prod", _set("edge.cdn.defaultTtlSeconds", 40000000), "plexichat:edge.cdn.defaultTtlSeconds", "from 0 to"),
]


@pytest.mark.parametrize(
    "stack,edit,key,hint", BAD_CDN_CONFIGS, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD_CDN_CONFIGS)]
)
def test_bad_cdn_settings_are_refused_before_any_resource_registers(stack, edit, key, hint):
    registered, message = preview_resources(stack, edit)
    assert registered == []
    lines = [line for line in message.splitlines() if line.strip().startswith(f"- {key}:")]
    assert any(hint in line for line in lines), message


def keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys(v)}
    return set()


@pytest.mark.parametrize("stack", CDN_STACKS)
def test_every_nested_input_reached_the_provider_under_its_wire_name(stack):
    """Nested inputs given as dicts are renamed by the SDK only where its types know the key: a
    key it does not know (a typo, a shape of another resource) would travel in snake_case."""
    r = rendered(stack)
    edge = [res for res in r.resources if res.type.startswith(("aws:wafv2/", "aws:cloudfront/"))]
    assert edge
    for resource in edge:
        assert not {k for k in keys(revealed(resource.inputs)) if "_" in k}, resource.urn
