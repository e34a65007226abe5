"""The AWS WAF web ACLs and their logs: the regional one on the load balancer in front of the
NGINX controller, and (with the CDN) the CLOUDFRONT-scope one on the static-assets distribution.

A per-IP rate limit, then AWS managed rule groups. In `count` mode every rule only counts and
logs its matches, so the rules can be tuned before they block anyone. With the CDN the regional
ACL also lets only CloudFront reach the asset paths (`OriginVerification`): that rule always
blocks, in count mode too, since it is access control, not a heuristic being tuned.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_aws import wafv2

from components.config.edge import WafSettings
from components.data.shared import data_key, log_group, logs_may_use_key

MANAGED_RULE_GROUPS = (
    ("aws-common", "AWSManagedRulesCommonRuleSet"),
    ("aws-known-bad-inputs", "AWSManagedRulesKnownBadInputsRuleSet"),
    ("aws-sqli", "AWSManagedRulesSQLiRuleSet"),
)
"""(rule name, AWS managed rule group): common exploits (OWASP), known bad inputs (Log4j and the
like), SQL injection."""
REDACTED_HEADERS = ("authorization", "cookie")
"""Session credentials must not end up in logs that many people can read."""


@dataclass(frozen=True)
class OriginVerification:
    """Requests to the asset paths must carry `header` with one of `accepted_values` (a secret:
    the value CloudFront adds, and the previous one while a rotation is under way)."""

    header: str
    accepted_values: tuple[pulumi.Output[str], pulumi.Output[str]]
    asset_path_regex: str
    """Matched against the URL-decoded, normalized path (no `%2e`/`//` detours)."""

    def verified(self) -> dict:
        """A WAF statement: the request carries one of the accepted values."""
        return {
            "or_statement": {
                "statements": [
                    {
                        "byte_match_statement": {
                            "field_to_match": {"single_header": {"name": self.header}},
                            "positional_constraint": "EXACTLY",
                            "search_string": value,
                            "text_transformations": [{"priority": 0, "type": "NONE"}],
                        }
                    }
                    for value in self.accepted_values
                ]
            }
        }

    def asset_path(self) -> dict:
        return {
            "regex_match_statement": {
                "field_to_match": {"uri_path": {}},
                "regex_string": self.asset_path_regex,
                "text_transformations": [
                    {"priority": 0, "type": "URL_DECODE"},
                    {"priority": 1, "type": "NORMALIZE_PATH"},
                ],
            }
        }


def web_acl(
    name: str,
    parent: pulumi.Resource,
    *,
    stack: str,
    settings: WafSettings,
    account_id: pulumi.Input[str],
    region: str,
    origin: OriginVerification | None = None,
) -> wafv2.WebAcl:
    """The web ACL `plexichat-<stack>`, its logging and (when the stack names the load balancer)
    its association. Children of `parent` named `{name}-waf`, `{name}-waf-*`. With `origin`,
    only CloudFront reaches the asset paths, and its requests are no client of the rate rule."""
    child = pulumi.ResourceOptions(parent=parent)
    acl_name = _acl_name(stack)
    verified_label = None
    rules = _managed_rules(settings.mode, acl_name)
    if origin is not None:
        group, verified_label = _origin_rule_group(name, origin, acl_name, account_id, child)
        rules.insert(0, _origin_rule(group, acl_name))
    rules.insert(0, _rate_rule(settings.mode, settings.rate_limit_per_5_minutes, acl_name, verified_label))
    acl = _acl(f"{name}-waf", acl_name, f"PlexiChat {stack}", "REGIONAL", rules, child)
    # The origin header is a credential: out of the logs like the session's.
    redacted = (*REDACTED_HEADERS, *([origin.header] if origin else []))
    _logging(name, acl, acl_name, settings.log_retention_days, account_id, region, child, redacted)
    if settings.load_balancer_arn is not None:
        wafv2.WebAclAssociation(
            f"{name}-waf-association",
            resource_arn=settings.load_balancer_arn,
            web_acl_arn=acl.arn,
            opts=child,
        )
    return acl


def _acl_name(stack: str) -> str:
    """The ACL's name; its metric names and its log group are derived from it."""
    return f"plexichat-{stack}"


def _visibility(acl_name: str, metric: str) -> dict:
    return {
        "cloudwatch_metrics_enabled": True,
        "metric_name": f"{acl_name}-{metric}",
        "sampled_requests_enabled": True,
    }


def cloudfront_web_acl(
    name: str,
    *,
    stack: str,
    mode: str,
    rate_limit_per_5_minutes: int,
    log_retention_days: int,
    account_id: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> wafv2.WebAcl:
    """The CLOUDFRONT-scope web ACL `plexichat-<stack>-cdn` and its logging: the same rate rule
    and managed groups as the regional one, per viewer IP. `opts` must name a us-east-1
    provider: CloudFront's ACLs and their log groups live there."""
    acl_name = f"{_acl_name(stack)}-cdn"
    rules = [_rate_rule(mode, rate_limit_per_5_minutes, acl_name), *_managed_rules(mode, acl_name)]
    acl = _acl(f"{name}-waf", acl_name, f"PlexiChat {stack} static assets", "CLOUDFRONT", rules, opts)
    _logging(name, acl, acl_name, log_retention_days, account_id, CLOUDFRONT_REGION, opts, REDACTED_HEADERS)
    return acl


def _acl(
    name: str, acl_name: str, what: str, scope: str, rules: list[wafv2.WebAclRuleArgs], opts: pulumi.ResourceOptions
) -> wafv2.WebAcl:
    return wafv2.WebAcl(
        name,
        name=acl_name,
        description=f"{what}: managed rule groups and a per-IP rate limit",
        scope=scope,
        default_action=wafv2.WebAclDefaultActionArgs(allow={}),
        rules=rules,
        visibility_config=wafv2.WebAclVisibilityConfigArgs(**_visibility(acl_name, "web-acl")),
        opts=opts,
    )


CLOUDFRONT_REGION = "us-east-1"
"""Where CloudFront's certificates, web ACLs and log sources live."""


def _rate_rule(
    mode: str, limit: int, acl_name: str, verified_label: pulumi.Output[str] | None = None
) -> wafv2.WebAclRuleArgs:
    # Behind CloudFront every viewer arrives from an edge IP: requests that carry the origin
    # header (labelled by the origin rule group, which runs first) are left to the CloudFront
    # ACL's own per-viewer rate rule. Aggregating on X-Forwarded-For instead would let any direct
    # client pick the address it is counted as.
    scope_down = (
        {"not_statement": {"statement": {"label_match_statement": {"scope": "LABEL", "key": verified_label}}}}
        if verified_label is not None
        else None
    )
    return wafv2.WebAclRuleArgs(
        name="rate-limit-per-ip",
        # Cheapest first: a flood is cut before the managed rules run (after the origin check,
        # whose label it reads, when there is one).
        priority=0 if verified_label is None else 1,
        action=wafv2.WebAclRuleActionArgs(**({"count": {}} if mode == "count" else {"block": {}})),
        statement=wafv2.WebAclRuleStatementArgs(
            rate_based_statement=wafv2.WebAclRuleStatementRateBasedStatementArgs(
                limit=limit,
                aggregate_key_type="IP",
                **({"scope_down_statement": scope_down} if scope_down else {}),
            )
        ),
        visibility_config=wafv2.WebAclRuleVisibilityConfigArgs(**_visibility(acl_name, "rate-limit-per-ip")),
    )


ORIGIN_RULE = "assets-only-through-cdn"
VERIFIED_LABEL = "origin-verified"
ORIGIN_RULE_GROUP_CAPACITY = 50
"""WCUs of the origin rule group (about 31 used: a regex with two transformations, four exact
header matches); fixed at creation, so with room to spare."""


def _origin_rule_group(
    name: str, origin: OriginVerification, acl_name: str, account_id: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> tuple[wafv2.RuleGroup, pulumi.Output[str]]:
    """The origin check in a rule group of its own: its statements hold the secret, which makes a
    resource's whole `rules` secret in the state, and the web ACL's rules stay readable. Labels
    verified requests (for the rate rule), then blocks asset paths without the header."""
    group_name = f"{acl_name}-origin"
    group = wafv2.RuleGroup(
        f"{name}-waf-origin",
        name=group_name,
        description="Only CloudFront (the secret origin header) reaches the asset paths",
        scope="REGIONAL",
        capacity=ORIGIN_RULE_GROUP_CAPACITY,
        rules=[
            {
                "name": VERIFIED_LABEL,
                "priority": 0,
                "action": {"count": {}},  # only labels the request
                "rule_labels": [{"name": VERIFIED_LABEL}],
                "statement": origin.verified(),
                "visibility_config": _visibility(acl_name, VERIFIED_LABEL),
            },
            {
                "name": ORIGIN_RULE,
                "priority": 1,
                "action": {"block": {}},  # always: access control, whatever ingress.waf.mode says
                "statement": {
                    "and_statement": {
                        # A rule group's `not_statement` takes a list of one (a web ACL's, one statement).
                        "statements": [origin.asset_path(), {"not_statement": {"statements": [origin.verified()]}}]
                    }
                },
                "visibility_config": _visibility(acl_name, ORIGIN_RULE),
            },
        ],
        visibility_config=_visibility(acl_name, "origin-rule-group"),
        opts=opts,
    )
    label = pulumi.Output.concat("awswaf:", account_id, ":rulegroup:", group_name, ":", VERIFIED_LABEL)
    return group, label


def _origin_rule(group: wafv2.RuleGroup, acl_name: str) -> wafv2.WebAclRuleArgs:
    return wafv2.WebAclRuleArgs(
        name=ORIGIN_RULE,
        priority=0,  # first: the rate rule reads its label
        # `none`: the group's block stands in count mode too (access control, not a heuristic).
        override_action=wafv2.WebAclRuleOverrideActionArgs(none={}),
        statement=wafv2.WebAclRuleStatementArgs(
            rule_group_reference_statement=wafv2.WebAclRuleStatementRuleGroupReferenceStatementArgs(arn=group.arn)
        ),
        visibility_config=wafv2.WebAclRuleVisibilityConfigArgs(**_visibility(acl_name, ORIGIN_RULE)),
    )


def _managed_rules(mode: str, acl_name: str) -> list[wafv2.WebAclRuleArgs]:
    counting = mode == "count"
    return [
        wafv2.WebAclRuleArgs(
            name=rule_name,
            priority=10 * (index + 1),
            # `none` keeps the group's own block actions; `count` only counts them.
            override_action=wafv2.WebAclRuleOverrideActionArgs(**({"count": {}} if counting else {"none": {}})),
            statement=wafv2.WebAclRuleStatementArgs(
                managed_rule_group_statement=wafv2.WebAclRuleStatementManagedRuleGroupStatementArgs(
                    name=group, vendor_name="AWS"
                )
            ),
            visibility_config=wafv2.WebAclRuleVisibilityConfigArgs(**_visibility(acl_name, rule_name)),
        )
        for index, (rule_name, group) in enumerate(MANAGED_RULE_GROUPS)
    ]


def _logging(
    name: str,
    acl: wafv2.WebAcl,
    acl_name: str,
    retention_days: int,
    account_id: pulumi.Input[str],
    region: str,
    child: pulumi.ResourceOptions,
    redacted_headers: tuple[str, ...],
) -> None:
    # WAF logs only to destinations named `aws-waf-logs-*`. They hold client IPs and URLs:
    # encrypted with a key of their own.
    log_name = f"aws-waf-logs-{acl_name}"
    log_key = data_key(
        f"{name}-waf-logs-key",
        f"PlexiChat {acl_name.removeprefix('plexichat-')}: WAF logs",
        account_id,
        child,
        extra_statements=[logs_may_use_key(region, account_id, [log_name])],
    )
    waf_logs = log_group(f"{name}-waf-logs", log_name, retention_days, log_key, child)
    wafv2.WebAclLoggingConfiguration(
        f"{name}-waf-logging",
        resource_arn=acl.arn,
        log_destination_configs=[waf_logs.arn],
        redacted_fields=[
            wafv2.WebAclLoggingConfigurationRedactedFieldArgs(
                single_header=wafv2.WebAclLoggingConfigurationRedactedFieldSingleHeaderArgs(name=header)
            )
            for header in redacted_headers
        ],
        opts=child,
    )
