"""Where CloudWatch alarms go: an SNS topic encrypted with its own KMS key, paging on-call when
the stack's critical alerts page.

A customer-managed key, not `alias/aws/sns`: CloudWatch can publish to an encrypted topic only if
the key policy lets `cloudwatch.amazonaws.com` use the key, and the AWS-managed key's policy
cannot be changed. EventBridge rules publish to it too (AWS Backup jobs that fail:
components/observability/data_path_alarms.py), which needs the same of `events.amazonaws.com`.
Both the key and the topic admit each service only on behalf of this account.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.data.shared import data_key

CLOUDWATCH = "cloudwatch.amazonaws.com"
EVENTBRIDGE = "events.amazonaws.com"
PUBLISHERS = {"CloudWatchPublishes": CLOUDWATCH, "EventBridgePublishes": EVENTBRIDGE}
"""The services that publish to the topic, by the Sid of their statements."""


@dataclass(frozen=True)
class AlarmTopicArgs:
    stack: str
    pager_duty_url: pulumi.Input[str] | None = None
    """PagerDuty CloudWatch integration URL (a secret). None: no paging subscription."""


class AlarmTopic(pulumi.ComponentResource):
    topic: aws.sns.Topic
    key: aws.kms.Key

    def __init__(self, name: str, args: AlarmTopicArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:alerting:AlarmTopic", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        root = pulumi.Output.concat("arn:", partition, ":iam::", account, ":root")

        self.key = _key(f"{name}-key", args.stack, account, child)
        self.topic = aws.sns.Topic(f"{name}-topic", kms_master_key_id=self.key.arn, opts=child)
        _topic_policy(f"{name}-topic-policy", self.topic, root, account, child)
        self.pager_duty = None
        if args.pager_duty_url is not None:
            self.pager_duty = _pager_duty(f"{name}-pagerduty", self.topic, args.pager_duty_url, child)
        self.register_outputs({"topic_arn": self.topic.arn, "key_arn": self.key.arn})


def _from_account(account: pulumi.Input[str]) -> dict:
    """The condition that admits CloudWatch only on behalf of this account."""
    return {"StringEquals": {"aws:SourceAccount": account}}


def _key(name: str, stack: str, account: pulumi.Input[str], opts: pulumi.ResourceOptions) -> aws.kms.Key:
    """The topic's own key, which CloudWatch may use to publish."""
    return data_key(
        name,
        f"Encrypts the {stack} CloudWatch alarm topic",
        account,
        opts,
        extra_statements=[
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": _from_account(account),
            }
            for sid, service in PUBLISHERS.items()
        ],
    )


def _topic_policy(
    name: str,
    topic: aws.sns.Topic,
    root: pulumi.Input[str],
    account: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> None:
    """The account manages the topic, CloudWatch and EventBridge publish to it, and nobody over
    plain HTTP."""
    aws.sns.TopicPolicy(
        name,
        arn=topic.arn,
        policy=pulumi.Output.json_dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "AccountManages",
                        "Effect": "Allow",
                        "Principal": {"AWS": root},
                        "Action": [
                            "SNS:GetTopicAttributes",
                            "SNS:SetTopicAttributes",
                            "SNS:Subscribe",
                            "SNS:ListSubscriptionsByTopic",
                            "SNS:Publish",
                        ],
                        "Resource": topic.arn,
                        # The account's own principals only, spelled out so no reader (or checkov's
                        # CKV_AWS_385) has to know that the root principal means this account.
                        "Condition": {"StringEquals": {"aws:PrincipalAccount": account}},
                    },
                    *(
                        {
                            "Sid": sid,
                            "Effect": "Allow",
                            "Principal": {"Service": service},
                            "Action": "SNS:Publish",
                            "Resource": topic.arn,
                            "Condition": _from_account(account),
                        }
                        for sid, service in PUBLISHERS.items()
                    ),
                    {
                        "Sid": "TlsOnly",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "SNS:Publish",
                        "Resource": topic.arn,
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                ],
            }
        ),
        opts=opts,
    )


def _pager_duty(
    name: str, topic: aws.sns.Topic, url: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> aws.sns.TopicSubscription:
    """The PagerDuty subscription that pages on-call."""
    return aws.sns.TopicSubscription(
        name,
        topic=topic.arn,
        protocol="https",
        # The URL holds the integration key: keep it secret in state and in logs.
        endpoint=pulumi.Output.secret(url),
        # PagerDuty confirms the subscription itself; without this Pulumi would wait for
        # a confirmation that never reaches it.
        endpoint_auto_confirms=True,
        opts=opts,
    )
