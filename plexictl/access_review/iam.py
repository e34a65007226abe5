"""IAM from the rendered desired state: every role, who may assume it, what it may do (its role
policies, attached managed and own policies, inline policies), and every resource policy
(buckets, keys, topics, queues) with the principals it names."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import Any

from plexictl.access_review.facts import KNOWN_AFTER_DEPLOY, Fact, as_list, conditions, document, known
from plexictl.offline import Rendering, Resource
from plexictl.offline.mocks import MOCK_REGION, computed_aws_outputs

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
POLICY = "aws:iam/policy:Policy"
RESOURCE_POLICIES = {
    # type -> the input holding its policy document
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:kms/key:Key": "policy",
    "aws:sns/topicPolicy:TopicPolicy": "policy",
    "aws:sqs/queuePolicy:QueuePolicy": "policy",
    "aws:secretsmanager/secretPolicy:SecretPolicy": "policy",
    "aws:ecr/repositoryPolicy:RepositoryPolicy": "policy",
}
SERVICE_ACCOUNT_SUBJECT = "system:serviceaccount:"
_ALLOWING = ("StringEquals", "StringLike", "ForAnyValue:StringEquals", "ForAnyValue:StringLike")
_EXCLUDING = ("StringNotEquals", "StringNotLike")


def role_subject(role: Resource) -> str:
    return f"`{role.inputs.get('name') if isinstance(role.inputs.get('name'), str) else role.name}`"


def role_facts(rendering: Rendering, service_accounts: list[str]) -> Iterator[Fact]:
    """Facts about every role; `service_accounts` are `namespace/name` of the rendered ones,
    matched against OIDC subject patterns."""
    names = ArnNames(rendering)
    for role in rendering.of_type(ROLE):
        subject = role_subject(role)
        if isinstance(description := role.inputs.get("description"), str):
            yield Fact("IAM roles", subject, "About", description)
        for line in trust(role, service_accounts):
            yield Fact("IAM roles", subject, "Trust: who may assume it", line)
        for source, policy in _role_policies(rendering, role):
            for line in permissions(policy, names):
                yield Fact("IAM roles", subject, "Permissions", f"{line} ({source})")


def _attached_to(resource: Resource, role: Resource, key: str = "role") -> bool:
    """Whether `resource` names `role` in its `key` input: by Output lineage, else by name."""
    if role.urn in resource.property_dependencies.get(key, []):
        return True
    return resource.inputs.get(key) in (role.name, role.inputs.get("name"))


def _role_policies(rendering: Rendering, role: Resource) -> Iterator[tuple[str, Any]]:
    """(where it comes from, the policy document or its unknown value) for each policy of the role."""
    own_policies = rendering.of_type(POLICY)
    for policy in rendering.of_type(ROLE_POLICY):
        if _attached_to(policy, role):
            yield f"role policy {policy.name}", policy.inputs.get("policy")
    for inline in as_list(role.inputs.get("inlinePolicies")):
        yield f"inline policy {inline.get('name')}", inline.get("policy")
    for attachment in rendering.of_type(ROLE_POLICY_ATTACHMENT):
        if not _attached_to(attachment, role):
            continue
        ours = [p for p in own_policies if p.urn in attachment.property_dependencies.get("policyArn", [])]
        if ours:  # a policy of this program: its statements, not just its ARN
            yield f"policy {ours[0].name}", ours[0].inputs.get("policy")
        else:
            yield "attached", {"managed": known(attachment.inputs.get("policyArn"))}
    for arn in as_list(role.inputs.get("managedPolicyArns")):
        yield "attached", {"managed": known(arn)}


def permissions(policy: Any, names: ArnNames) -> list[str]:
    """One line per effect, action, resource and condition of a policy document."""
    if isinstance(policy, dict) and "managed" in policy:
        arn = policy["managed"]
        managed = arn.split(":policy/", 1)[-1] if ":aws:policy/" in arn else arn
        return [f"managed policy `{managed}`"]
    parsed = document(policy)
    if parsed is None:
        return [f"policy {KNOWN_AFTER_DEPLOY}"]
    lines = []
    for statement in as_list(parsed.get("Statement")):
        when = conditions(statement)
        for action in _listed(statement, "Action"):
            for resource in _listed(statement, "Resource"):
                line = f"{statement.get('Effect', 'Allow')} `{action}` on {names.show(resource)}"
                lines.append(f"{line} when {when}" if when else line)
    return lines


def _listed(statement: dict[str, Any], key: str) -> list[str]:
    if f"Not{key}" in statement:
        return [f"anything but {', '.join(str(v) for v in as_list(statement[f'Not{key}']))}"]
    return [str(v) for v in as_list(statement.get(key))] or ["(none)"]


def trust(role: Resource, service_accounts: list[str]) -> list[str]:
    """Who may assume the role: AWS services, other principals, and the ServiceAccounts whose
    OIDC subject (`system:serviceaccount:<ns>:<sa>`) its conditions allow."""
    parsed = document(role.inputs.get("assumeRolePolicy"))
    if parsed is None:
        return [f"trust policy {KNOWN_AFTER_DEPLOY}"]
    lines = []
    for statement in as_list(parsed.get("Statement")):
        if statement.get("Effect", "Allow") != "Allow":
            lines.append(f"denied: {statement.get('Principal')} ({conditions(statement)})")
            continue
        principal = statement.get("Principal")
        principals = principal if isinstance(principal, dict) else {"AWS": principal}
        for service in as_list(principals.get("Service")):
            lines.append(f"AWS service `{service}`")
        for other in as_list(principals.get("AWS")):
            when = f" when {conditions(statement)}" if "Condition" in statement else ""
            lines.append(f"AWS principal `{other}`{when}")
        if principals.get("Federated"):
            lines += _federated(statement, service_accounts)
    return lines


def _federated(statement: dict[str, Any], service_accounts: list[str]) -> list[str]:
    allowed, excluded = _subjects(statement)
    if not allowed:
        return [f"any identity of `{statement['Principal']['Federated']}` when {conditions(statement)}"]
    pattern = ", ".join(f"`{p}`" for p in allowed)
    if excluded:
        pattern += " except " + ", ".join(f"`{p}`" for p in excluded)
    lines = [f"OIDC subjects {pattern}"]
    for account in service_accounts:
        namespace, name = account.split("/", 1)
        sub = f"{SERVICE_ACCOUNT_SUBJECT}{namespace}:{name}"
        if any(fnmatch.fnmatchcase(sub, p) for p in allowed) and not any(fnmatch.fnmatchcase(sub, p) for p in excluded):
            lines.append(f"ServiceAccount `{account}`")
    return lines


def _subjects(statement: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The `:sub` values a web-identity statement allows and those it excludes."""
    allowed: list[str] = []
    excluded: list[str] = []
    for operator, tests in (statement.get("Condition") or {}).items():
        for key, values in tests.items():
            if key.endswith(":sub"):
                if operator in _ALLOWING:
                    allowed += [str(v) for v in as_list(values)]
                elif operator in _EXCLUDING:
                    excluded += [str(v) for v in as_list(values)]
    return sorted(allowed), sorted(excluded)


def resource_policy_facts(rendering: Rendering) -> Iterator[Fact]:
    names = ArnNames(rendering)
    for type_, key in RESOURCE_POLICIES.items():
        for resource in rendering.of_type(type_):
            if key not in resource.inputs:
                continue
            subject = f"`{type_.rsplit(':', 1)[-1]} {resource.name}`"
            parsed = document(resource.inputs[key])
            if parsed is None:
                yield Fact("Resource policies", subject, "Statements", f"policy {KNOWN_AFTER_DEPLOY}")
                continue
            for statement in as_list(parsed.get("Statement")):
                who = _principal(statement.get("Principal"))
                for line in permissions({"Statement": [statement]}, names):
                    yield Fact("Resource policies", subject, "Statements", f"{who}: {line}")


def _principal(principal: Any) -> str:
    if principal == "*" or principal == {"AWS": "*"}:
        return "anyone"
    if isinstance(principal, dict):
        return ", ".join(f"{kind} {v}" for kind, values in sorted(principal.items()) for v in as_list(values))
    return str(principal)


class ArnNames:
    """Names ARNs by the rendered resource they belong to. AWS computes some ARNs (a KMS key's
    id, a secret's suffix); offline they are the engine's placeholders, so the review names the
    resource beside each: `arn:…:key/…` (Key backups-key)."""

    def __init__(self, rendering: Rendering) -> None:
        regions = {r.urn: r.inputs.get("region", MOCK_REGION) for r in rendering.of_type("pulumi:providers:aws")}
        self.by_arn: dict[str, str] = {}
        for r in rendering.resources:
            if r.custom and r.type.startswith("aws:"):
                region = regions.get(r.provider.rsplit("::", 1)[0], MOCK_REGION)
                arn = computed_aws_outputs(r.type, r.name, r.inputs, str(region)).get("arn")
                if isinstance(arn, str):
                    self.by_arn.setdefault(arn, f"{r.type.rsplit(':', 1)[-1]} {r.name}")

    def show(self, resource: str) -> str:
        if resource == "*":
            return "`*`"
        base = resource.split("/*", 1)[0] if resource.endswith("*") else resource
        for arn in (resource, base, base.rsplit("/", 1)[0]):
            if arn in self.by_arn and arn.startswith("arn:"):
                return f"`{resource}` ({self.by_arn[arn]})"
        return f"`{resource}`"
