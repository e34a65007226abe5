"""The AWS WAF web ACL on the load balancer in front of the NGINX controller, and its logs.

A per-IP rate limit, then AWS managed rule groups. In `count` mode every rule only counts and
logs its matches, so the rules can be tuned before they block anyone.
"""

from __future__ import annotations

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


def web_acl(
    name: str,
    parent: pulumi.Resource,
    *,
    stack: str,
    settings: WafSettings,
    account_id: pulumi.Input[str],
    region: str,
) -> wafv2.WebAcl:
    """The web ACL `plexichat-<stack>`, its logging and (when the stack names the load balancer)
    its association. Children of `parent` named `{name}-waf`, `{name}-waf-*`."""
    child = pulumi.ResourceOptions(parent=parent)
    acl_name = _acl_name(stack)
    acl = wafv2.WebAcl(
        f"{name}-waf",
        name=acl_name,
        description=f"PlexiChat {stack}: managed rule groups and a per-IP rate limit",
        scope="REGIONAL",
        default_action=wafv2.WebAclDefaultActionArgs(allow={}),
        rules=_rules(settings, acl_name),
        visibility_config=wafv2.WebAclVisibilityConfigArgs(**_visibility(acl_name, "web-acl")),
        opts=child,
    )
    _logging(name, acl, stack, settings, account_id, region, child)
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


def _rules(settings: WafSettings, acl_name: str) -> list[wafv2.WebAclRuleArgs]:
    counting = settings.mode == "count"
    return [
        wafv2.WebAclRuleArgs(
            name="rate-limit-per-ip",
            priority=0,  # cheapest first: a flood is cut before the managed rules run
            action=wafv2.WebAclRuleActionArgs(**({"count": {}} if counting else {"block": {}})),
            statement=wafv2.WebAclRuleStatementArgs(
                rate_based_statement=wafv2.WebAclRuleStatementRateBasedStatementArgs(
                    limit=settings.rate_limit_per_5_minutes, aggregate_key_type="IP"
                )
            ),
            visibility_config=wafv2.WebAclRuleVisibilityConfigArgs(**_visibility(acl_name, "rate-limit-per-ip")),
        ),
        *(
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
        ),
    ]


def _logging(
    name: str,
    acl: wafv2.WebAcl,
    stack: str,
    settings: WafSettings,
    account_id: pulumi.Input[str],
    region: str,
    child: pulumi.ResourceOptions,
) -> None:
    # WAF logs only to destinations named `aws-waf-logs-*`. They hold client IPs and URLs:
    # encrypted with a key of their own.
    log_name = f"aws-waf-logs-{_acl_name(stack)}"
    log_key = data_key(
        f"{name}-waf-logs-key",
        f"PlexiChat {stack}: WAF logs",
        account_id,
        child,
        extra_statements=[logs_may_use_key(region, account_id, [log_name])],
    )
    waf_logs = log_group(f"{name}-waf-logs", log_name, settings.log_retention_days, log_key, child)
    wafv2.WebAclLoggingConfiguration(
        f"{name}-waf-logging",
        resource_arn=acl.arn,
        log_destination_configs=[waf_logs.arn],
        # Session credentials must not end up in logs that many people can read.
        redacted_fields=[
            wafv2.WebAclLoggingConfigurationRedactedFieldArgs(
                single_header=wafv2.WebAclLoggingConfigurationRedactedFieldSingleHeaderArgs(name=header)
            )
            for header in ("authorization", "cookie")
        ],
        opts=child,
    )
