"""CloudFront for the static assets, on a host of their own (`static.<domain>`; docs/edge.md).

- **Origin:** the app host over HTTPS (TLS 1.2, the strictest CloudFront offers towards an
  origin), which the load balancer's certificate is valid for and which follows the DR pair's
  DNS failover: the CDN needs no change when the app fails over, and no second copy of the assets
  has to follow each release track.
- **Only the asset paths:** a cache behaviour per `edge.cdn.pathPatterns` (long TTLs,
  compression); the default behaviour runs a CloudFront Function that answers 404 at the edge,
  so `/`, `/api` or `/ws` never reach the origin through the distribution. 4xx answers are not
  cached: during a canary a page of one version may ask for an asset only the other one has.
- **Origin protection:** CloudFront adds a secret header (`OriginVerification`) that the
  regional WAF requires on the asset paths; the value lives in Secrets Manager and reaches the
  distribution and the WAF only as a Pulumi secret, read back from the stored version.
- **Edge security:** TLS 1.3 only towards viewers (`TLSv1.3_2025`, SNI), an ACM certificate and
  a CLOUDFRONT-scope WAF in us-east-1 through an explicit provider, HSTS and friends in a
  response headers policy; access logs (standard logging v2) in a log bucket of their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import naming
from components.config.edge import CdnSettings, path_pattern_regex
from components.data.access_log_bucket import VendedLogs, access_log_bucket
from components.data.shared import data_key, generated_secret
from components.edge.waf import CLOUDFRONT_REGION, OriginVerification, cloudfront_web_acl

ORIGIN_HEADER = "x-plexichat-origin-verify"
"""The header CloudFront adds to every origin request; the regional WAF requires it on the asset paths."""
ORIGIN_ID = "app"
VIEWER_TLS_POLICY = "TLSv1.3_2025"
"""TLS 1.3 only: the strictest viewer security policy CloudFront offers (2025)."""
ORIGIN_TLS_PROTOCOLS = ["TLSv1.2"]
"""The strictest CloudFront offers towards a custom origin (its choices stop at TLSv1.2)."""
CACHING_DISABLED_POLICY_ID = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
"""The AWS managed cache policy `Managed-CachingDisabled`, for the default behaviour that serves nothing."""
UNCACHED_ERROR_CODES = (400, 403, 404, 405, 414, 416)
"""The 4xx codes CloudFront caches (10 s by default) unless told otherwise."""
LOG_PREFIX = "cloudfront"
ASSET_METHODS = ["GET", "HEAD"]
NOT_FOUND_FUNCTION = """\
function handler(event) {
  // Only the asset paths have behaviours of their own; anything else ends here, at the edge.
  return { statusCode: 404, statusDescription: 'Not Found' };
}
"""


@dataclass(frozen=True)
class StaticAssetsCdnArgs:
    stack: str
    settings: CdnSettings
    host: str
    """The static-assets host (edge.cdn.host, default `static.<domain>`)."""
    origin_host: str
    """The app host (plexichat:domain), which the load balancer serves."""
    hosted_zone_id: str
    waf_mode: str
    """ingress.waf.mode: the CLOUDFRONT-scope ACL counts or blocks like the regional one."""
    hsts_max_age_seconds: int
    hsts_include_subdomains: bool
    account_id: pulumi.Input[str]
    protect: bool
    """`protect` (and retain) on the log bucket, as on the stack's other buckets."""


class StaticAssetsCdn(pulumi.ComponentResource):
    """Needs the stack's AWS provider (the origin secret lives in the stack's region); its own
    us-east-1 provider carries the certificate, the CLOUDFRONT-scope WAF and the log delivery."""

    distribution: aws.cloudfront.Distribution
    origin_verification: OriginVerification

    def __init__(self, name: str, args: StaticAssetsCdnArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:edge:StaticAssetsCdn", name, None, opts)
        s = args.settings
        self.us_east_1 = aws.Provider(
            f"{name}-{CLOUDFRONT_REGION}",
            region=CLOUDFRONT_REGION,
            default_tags=aws.ProviderDefaultTagsArgs(tags=naming.aws_tags(args.stack)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        edge = pulumi.ResourceOptions(parent=self, provider=self.us_east_1)
        current, previous = self._origin_secret(name, args)
        self.origin_verification = OriginVerification(
            ORIGIN_HEADER, (current, previous), "^(?:" + "|".join(path_pattern_regex(p) for p in s.path_patterns) + ")$"
        )
        certificate_arn = _certificate(name, args, edge)
        acl = cloudfront_web_acl(
            name,
            stack=args.stack,
            mode=args.waf_mode,
            rate_limit_per_5_minutes=s.rate_limit_per_5_minutes,
            log_retention_days=s.log_retention_days,
            account_id=args.account_id,
            opts=edge,
        )
        self.distribution = _distribution(name, args, certificate_arn, acl.arn, current, edge)
        for record_type in ("A", "AAAA"):
            aws.route53.Record(
                f"{name}-{record_type.lower()}",
                zone_id=args.hosted_zone_id,
                name=args.host,
                type=record_type,
                aliases=[
                    aws.route53.RecordAliasArgs(
                        name=self.distribution.domain_name,
                        zone_id=self.distribution.hosted_zone_id,
                        evaluate_target_health=False,
                    )
                ],
                opts=edge,
            )
        self.log_bucket = _access_logs(name, args, self.distribution, edge)
        self.host = args.host
        self.domain_name = self.distribution.domain_name
        self.distribution_id = self.distribution.id
        self.register_outputs(
            {"host": args.host, "domain_name": self.domain_name, "distribution_id": self.distribution_id}
        )

    def _origin_secret(self, name: str, args: StaticAssetsCdnArgs) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """The origin header's value in Secrets Manager, as `{"current", "previous"}` (docs/edge.md
        "Rotating the origin header"): CloudFront sends current, the WAF accepts both. Read back
        from the stored version, so every run uses what is stored, never a fresh value."""
        regional = pulumi.ResourceOptions(parent=self)
        key = data_key(
            f"{name}-origin-secret-key", f"PlexiChat {args.stack}: CDN origin header", args.account_id, regional
        )
        secret = aws.secretsmanager.Secret(
            f"{name}-origin-secret",
            name=f"plexichat/{args.stack}/cdn-origin-header",
            description=f"The header CloudFront adds for {args.host}; the regional WAF requires it on the asset paths",
            kms_key_id=key.arn,
            recovery_window_in_days=30,
            opts=regional,
        )
        first = generated_secret(self, 64, each_kind=True)
        version = aws.secretsmanager.SecretVersion(
            f"{name}-origin-secret-value",
            secret_id=secret.arn,
            secret_string=_secret(pulumi.Output.json_dumps({"current": first, "previous": first})),
            # The first value only: rotations write the next ones (Secrets Manager is the source of
            # truth), and the generator answers differently on every run.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["secretString"]),
        )
        stored = aws.secretsmanager.get_secret_version_output(
            secret_id=version.secret_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        values = _secret(stored.secret_string).apply(json.loads)
        return values.apply(lambda v: str(v["current"])), values.apply(lambda v: str(v["previous"]))


def _secret(value: pulumi.Output[str]) -> pulumi.Output[str]:
    return pulumi.Output.secret(value)


def _certificate(name: str, args: StaticAssetsCdnArgs, edge: pulumi.ResourceOptions) -> pulumi.Output[str]:
    """The host's ACM certificate in us-east-1 (the only region CloudFront takes one from),
    validated through its DNS record; the ARN once validation has passed."""
    certificate = aws.acm.Certificate(f"{name}-certificate", domain_name=args.host, validation_method="DNS", opts=edge)
    option = certificate.domain_validation_options.apply(lambda options: options[0])
    record = aws.route53.Record(
        f"{name}-certificate-validation",
        zone_id=args.hosted_zone_id,
        name=option.apply(lambda o: o.resource_record_name),
        type=option.apply(lambda o: o.resource_record_type),
        records=[option.apply(lambda o: o.resource_record_value)],
        ttl=300,
        opts=edge,
    )
    validation = aws.acm.CertificateValidation(
        f"{name}-certificate-validated",
        certificate_arn=certificate.arn,
        validation_record_fqdns=[record.fqdn],
        opts=edge,
    )
    return validation.certificate_arn


def _distribution(
    name: str,
    args: StaticAssetsCdnArgs,
    certificate_arn: pulumi.Output[str],
    web_acl_arn: pulumi.Output[str],
    origin_secret: pulumi.Output[str],
    edge: pulumi.ResourceOptions,
) -> aws.cloudfront.Distribution:
    s = args.settings
    not_found = _not_found_function(name, args, edge)
    cache_policy = _cache_policy(name, args, edge)
    headers = _response_headers(name, args, edge)
    return aws.cloudfront.Distribution(
        f"{name}-distribution",
        enabled=True,
        comment=f"PlexiChat {args.stack}: static assets of {args.origin_host}",
        aliases=[args.host],
        http_version="http2and3",
        is_ipv6_enabled=True,
        price_class=s.price_class,
        web_acl_id=web_acl_arn,
        origins=[
            {
                "origin_id": ORIGIN_ID,
                "domain_name": args.origin_host,
                "custom_origin_config": {
                    "http_port": 80,
                    "https_port": 443,
                    "origin_protocol_policy": "https-only",
                    "origin_ssl_protocols": ORIGIN_TLS_PROTOCOLS,
                },
                "custom_headers": [{"name": ORIGIN_HEADER, "value": origin_secret}],
            }
        ],
        default_cache_behavior={
            "target_origin_id": ORIGIN_ID,
            "viewer_protocol_policy": "https-only",
            "allowed_methods": ASSET_METHODS,
            "cached_methods": ASSET_METHODS,
            "cache_policy_id": CACHING_DISABLED_POLICY_ID,
            "response_headers_policy_id": headers.id,
            "function_associations": [{"event_type": "viewer-request", "function_arn": not_found.arn}],
        },
        ordered_cache_behaviors=[
            {
                "path_pattern": pattern,
                "target_origin_id": ORIGIN_ID,
                "viewer_protocol_policy": "https-only",
                "allowed_methods": ASSET_METHODS,
                "cached_methods": ASSET_METHODS,
                "cache_policy_id": cache_policy.id,
                "response_headers_policy_id": headers.id,
                "compress": True,
            }
            for pattern in s.path_patterns
        ],
        custom_error_responses=[{"error_code": code, "error_caching_min_ttl": 0} for code in UNCACHED_ERROR_CODES],
        restrictions={"geo_restriction": {"restriction_type": "none"}},
        viewer_certificate={
            "acm_certificate_arn": certificate_arn,
            "ssl_support_method": "sni-only",
            "minimum_protocol_version": VIEWER_TLS_POLICY,
        },
        opts=edge,
    )


def _not_found_function(name: str, args: StaticAssetsCdnArgs, edge: pulumi.ResourceOptions) -> aws.cloudfront.Function:
    return aws.cloudfront.Function(
        f"{name}-not-found",
        name=f"plexichat-{args.stack}-not-found",
        runtime="cloudfront-js-2.0",
        comment="Answers 404 for every path outside the asset behaviours",
        code=NOT_FOUND_FUNCTION,
        publish=True,
        opts=edge,
    )


def _cache_policy(name: str, args: StaticAssetsCdnArgs, edge: pulumi.ResourceOptions) -> aws.cloudfront.CachePolicy:
    s = args.settings
    return aws.cloudfront.CachePolicy(
        f"{name}-cache-policy",
        name=f"plexichat-{args.stack}-static-assets",
        comment="Assets: long TTLs, compressed; the query string (a version) is part of the key",
        min_ttl=0,  # the app's `no-cache` is honoured
        default_ttl=s.default_ttl_seconds,
        max_ttl=s.max_ttl_seconds,
        parameters_in_cache_key_and_forwarded_to_origin={
            "enable_accept_encoding_brotli": True,
            "enable_accept_encoding_gzip": True,
            "cookies_config": {"cookie_behavior": "none"},
            "headers_config": {"header_behavior": "none"},
            "query_strings_config": {"query_string_behavior": "all"},
        },
        opts=edge,
    )


def _response_headers(
    name: str, args: StaticAssetsCdnArgs, edge: pulumi.ResourceOptions
) -> aws.cloudfront.ResponseHeadersPolicy:
    """HSTS like the app host's (ingress.hstsMaxAgeSeconds), nosniff, no framing; CORS for the app's
    pages, which load fonts and modules from this host."""
    return aws.cloudfront.ResponseHeadersPolicy(
        f"{name}-headers",
        name=f"plexichat-{args.stack}-static-assets",
        comment=f"Security headers, and CORS for https://{args.origin_host}",
        security_headers_config={
            "strict_transport_security": {
                "access_control_max_age_sec": args.hsts_max_age_seconds,
                "include_subdomains": args.hsts_include_subdomains,
                "override": True,
            },
            "content_type_options": {"override": True},
            "frame_options": {"frame_option": "DENY", "override": True},
            "referrer_policy": {"referrer_policy": "strict-origin-when-cross-origin", "override": True},
        },
        cors_config={
            "access_control_allow_credentials": False,
            "access_control_allow_headers": {"items": ["*"]},
            "access_control_allow_methods": {"items": ASSET_METHODS},
            "access_control_allow_origins": {"items": [f"https://{args.origin_host}"]},
            "access_control_max_age_sec": 86400,
            "origin_override": True,
        },
        opts=edge,
    )


def _access_logs(
    name: str, args: StaticAssetsCdnArgs, distribution: aws.cloudfront.Distribution, edge: pulumi.ResourceOptions
) -> aws.s3.Bucket:
    """Standard logging v2: the distribution is a delivery source (in us-east-1, like every
    CloudFront log source), a log bucket of its own the destination."""
    bucket = access_log_bucket(
        f"{name}-access-logs",
        pulumi.Output.concat("plexichat-", args.stack, "-cdn-", args.account_id, "-access-logs"),
        account_id=args.account_id,
        writers=[VendedLogs(LOG_PREFIX, CLOUDFRONT_REGION)],
        retention_days=args.settings.log_retention_days,
        protect=args.protect,
        opts=edge,
    )
    delivery_name = f"plexichat-{args.stack}-static-assets"
    source = aws.cloudwatch.LogDeliverySource(
        f"{name}-log-source", name=delivery_name, log_type="ACCESS_LOGS", resource_arn=distribution.arn, opts=edge
    )
    destination = aws.cloudwatch.LogDeliveryDestination(
        f"{name}-log-destination",
        name=delivery_name,
        output_format="json",
        delivery_destination_configuration={
            "destination_resource_arn": pulumi.Output.concat(bucket.arn, "/", LOG_PREFIX)
        },
        opts=edge,
    )
    aws.cloudwatch.LogDelivery(
        f"{name}-log-delivery",
        delivery_source_name=source.name,
        delivery_destination_arn=destination.arn,
        opts=edge,
    )
    return bucket
