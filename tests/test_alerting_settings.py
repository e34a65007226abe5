"""The monitoring and alerting config: mistakes are one RunError naming the key; receivers that
route somewhere must have their secret; thresholds stay ordered."""

from __future__ import annotations

import pytest

from components.config.monitoring import AlertThresholds
from components.config.parse import parse_stack_config
from plexictl.offline import stack_config
from tests.conftest import render_edited
from tests.test_settings import _remove, _set
from tests.test_settings import (  # the same check as the foundation's bad configs
    test_bad_config_is_one_run_error_naming_the_key_and_registers_nothing as check_bad_config,
)

BAD_CONFIGS = [
    # (stack, edit, key path the error must name, a word the message must contain)
    (
        "dev",
        _set("alerting", {"critical": "sms"}),
        "plexichat:alerting.critical",
        "must be none, chat, lowPriority or pagerduty (got 'sms')",
    ),
    ("dev", _set("alerting", {"critical": "chat"}), "plexichat:alertChatWebhookUrl", "--secret"),
    ("staging", _remove("alertChatWebhookUrl"), "plexichat:alertChatWebhookUrl", "required"),
    ("prod", _remove("pagerDutyRoutingKey"), "plexichat:pagerDutyRoutingKey", "pagerduty"),
    ("prod", _remove("pagerDutyCloudwatchUrl"), "plexichat:pagerDutyCloudwatchUrl", "CloudWatch"),
    ("prod", _remove("alertLowPriorityWebhookUrl"), "plexichat:alertLowPriorityWebhookUrl", "lowPriority"),
    (
        "dev",
        _set("monitoring", {"thresholds": {"errorRatioCriticalPercent": 150}}),
        "plexichat:monitoring.thresholds.errorRatioCriticalPercent",
        "percent",
    ),
    (
        "dev",
        _set("monitoring", {"thresholds": {"latencyTargetMs": 2000}}),
        "plexichat:monitoring.thresholds.latencyTargetMs",
        "below latencyWarningMs",
    ),
    (
        "dev",
        _set("monitoring", {"thresholds": {"errorRatioTargetPercent": 6}}),
        "plexichat:monitoring.thresholds.errorRatioTargetPercent",
        "below errorRatioCriticalPercent",
    ),
    (
        "dev",
        _set("monitoring", {"thresholds": {"minRequestsPerSecond": 0}}),
        "plexichat:monitoring.thresholds.minRequestsPerSecond",
        "request rate",
    ),
    (
        "dev",
        _set("monitoring", {"metrics": {"requestsTotal": "http-requests"}}),
        "plexichat:monitoring.metrics.requestsTotal",
        "metric name",
    ),
    ("dev", _set("monitoring", {"smokeProbes": True}), "plexichat:monitoring.smokeProbes", "unknown key"),
    (
        "dev",
        _set("monitoring", {"blackboxExporterAddress": "http://x"}),
        "plexichat:monitoring.blackboxExporterAddress",
        "host:port",
    ),
    (
        "dev",
        _set("monitoring", {"runbookUrl": "http://wiki/runbook#alerts"}),
        "plexichat:monitoring.runbookUrl",
        "https",
    ),
]


@pytest.mark.parametrize(
    "stack,edit,key,hint", BAD_CONFIGS, ids=[f"{b[0]}:{b[2].split(':')[1]}:{i}" for i, b in enumerate(BAD_CONFIGS)]
)
def test_bad_alerting_config_is_one_run_error_naming_the_key(stack, edit, key, hint):
    check_bad_config(stack, edit, key, hint)


def test_defaults_are_the_runbooks_numbers():
    t = AlertThresholds()
    assert (t.error_ratio_critical_percent, t.error_ratio_target_percent) == (5, 1)
    assert (t.latency_warning_ms, t.latency_target_ms) == (1000, 500)
    assert (t.cpu_info_percent, t.cpu_target_percent, t.memory_target_percent) == (90, 80, 85)
    assert (t.cache_hit_rate_min_percent, t.connection_utilisation_percent) == (90, 80)


def test_a_secret_that_looks_like_a_number_stays_text():
    config, secret_keys = stack_config("prod")
    config["plexichat:pagerDutyRoutingKey"] = "98765432109876543210"  # as the CLI passes it
    settings = parse_stack_config(config, "prod", secret_keys)
    assert settings.pager_duty_routing_key.get_secret_value() == "98765432109876543210"
    assert "98765432109876543210" not in repr(settings)  # never printed by accident


def test_dev_can_route_to_chat_once_it_has_a_webhook():
    def edit(config):
        config["plexichat:alerting"] = {"critical": "chat", "warning": "chat", "info": "none"}
        config["plexichat:alertChatWebhookUrl"] = {"secure": "v1:bm9uY2U=:Y2lwaGVydGV4dA=="}

    rendering = render_edited("dev", edit)
    (config,) = rendering.of_type("kubernetes:monitoring.coreos.com/v1alpha1:AlertmanagerConfig")
    routes = config.inputs["spec"]["route"]["routes"]
    assert [r["matchers"][0]["value"] for r in routes] == ["critical", "warning"]
