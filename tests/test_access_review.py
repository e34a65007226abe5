"""`plexictl access-review`: who may do what, read from the rendered desired state (issue #17).

The facts are asserted on the pinned prod render (tests/release_state.py); the command itself runs
on a git copy of this checkout, where `--diff` must show exactly a grant added to the program."""

from __future__ import annotations

import subprocess
import sys

import pytest

from plexictl import access_review
from plexictl.access_review.kubernetes import mesh_callers, reach, selects
from plexictl.offline import Resource
from tests.conftest import rendered
from tests.test_diff import checkout_repo, edit, resource

BUCKET = "arn:aws:s3:::plexichat-prod-backups-123456789012"


def facts(stack: str, subject: str, heading: str, preview: bool = False) -> list[str]:
    return [
        f.text for f in access_review.review(rendered(stack, preview)) if f.subject == subject and f.heading == heading
    ]


def test_the_app_role_is_assumable_by_the_app_service_accounts_only():
    trust = facts("prod", "`app-access-role`", "Trust: who may assume it")
    accounts = {line for line in trust if line.startswith("ServiceAccount ")}
    assert accounts == {
        "ServiceAccount `plexichat/plexichat-web-stable`",
        "ServiceAccount `plexichat/plexichat-web-canary`",
        "ServiceAccount `plexichat/plexichat-worker-stable`",
    }
    assert any("`system:serviceaccount:plexichat:plexichat-migrate`" in line for line in trust)  # the exclusion
    assert facts("prod", "`backups-backup-role`", "Trust: who may assume it") == ["AWS service `backup.amazonaws.com`"]


def test_the_app_writes_daily_only_and_the_archiver_monthly_only():
    def writes(role: str) -> set[str]:
        lines = facts("prod", f"`{role}`", "Permissions")
        return {line.split(" on ")[1].split(" ")[0] for line in lines if line.startswith("Allow `s3:PutObject` ")}

    assert writes("app-access-role") == {f"`{BUCKET}/daily/*`"}
    assert writes("backup-archiver-access-role") == {f"`{BUCKET}/monthly/*`"}
    app = facts("prod", "`app-access-role`", "Permissions")
    assert not [line for line in app if "Delete" in line]
    # A computed ARN (a KMS key id) is named by its resource, so a reviewer can read it.
    assert any(line.startswith("Allow `kms:GenerateDataKey` on ") and "(Key backups-key)" in line for line in app)


def test_a_service_account_shows_its_role_workload_egress_and_mesh_callers():
    web = "`plexichat/plexichat-web-stable`"
    assert facts("prod", web, "IAM role") == ["`app-access-role`"]
    assert facts("prod", web, "Runs") == ["Deployment `plexichat-web-stable`"]
    egress = facts("prod", web, "Network egress of its pods")
    assert "pods {k8s-app=kube-dns} in namespace kube-system: UDP 53, TCP 53" in egress
    assert {line for line in egress if "5432" in line} == {f"10.30.{n}.0/24: TCP 5432, TCP 6379" for n in (32, 33, 34)}
    assert facts("prod", web, "Mesh callers of its pods") == [
        "principals cluster.local/ns/nginx-ingress/sa/nginx-ingress → ports 8080"
    ]
    worker = "`plexichat/plexichat-worker-stable`"
    assert facts("prod", worker, "Mesh callers of its pods") == [
        "nobody: ALLOW policies select these pods and none has a rule"
    ]
    store = "`plexichat/plexichat-external-secrets`"
    assert facts("prod", store, "IAM role") == ["`app-access-store-role`"]
    assert facts("prod", store, "Runs") == ["SecretStore `plexichat-aws` (as its identity)"]


def test_a_preview_shows_computed_values_as_known_after_deploy():
    assert facts("prod", "`app-access-role`", "Permissions", preview=True) == [
        "policy (known after deploy) (role policy app-access-policy)"
    ]
    # The trust is built from config (the OIDC provider): known in a preview too.
    trust = facts("prod", "`app-access-role`", "Trust: who may assume it", preview=True)
    assert "ServiceAccount `plexichat/plexichat-web-stable`" in trust


def _object(kind: str, spec: dict, namespace: str = "app") -> Resource:
    return resource(f"kubernetes:x/v1:{kind}", kind.lower(), {"metadata": {"namespace": namespace}, "spec": spec})


def test_the_evaluators_read_selectors_and_absent_policies_as_kubernetes_and_istio_do():
    labels = {"app": "web", "tier": "front"}
    assert selects({"matchExpressions": [{"key": "job", "operator": "DoesNotExist"}]}, labels)
    assert not selects({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}, labels)
    assert selects({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]}]}, labels)
    assert reach([], "app", labels, "Egress") == ["unrestricted: no NetworkPolicy selects these pods for egress"]
    deny = _object("NetworkPolicy", {"podSelector": {}, "policyTypes": ["Egress"]})
    assert reach([deny], "app", labels, "Egress") == ["nothing: NetworkPolicies select these pods and allow no egress"]
    assert reach([deny], "other", labels, "Egress")[0].startswith("unrestricted")  # another namespace's policy
    assert mesh_callers([], "app", labels) == ["any mesh peer: no ALLOW AuthorizationPolicy selects these pods"]
    rules = [{"from": [{"source": {"namespaces": ["x"]}}]}]
    denying = _object("AuthorizationPolicy", {"action": "DENY", "rules": rules})
    assert mesh_callers([denying], "app", labels)[0] == "DENY: namespaces x → anything"


def plexictl(repo, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "plexictl", *args], cwd=repo, capture_output=True, text=True, timeout=300
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "repo").mkdir()
    return checkout_repo(tmp_path / "repo")


def test_the_record_is_stable_and_diff_shows_exactly_an_added_grant(repo, tmp_path):
    first, second = tmp_path / "first.md", tmp_path / "second.md"
    for out in (first, second):
        assert plexictl(repo, "access-review", "--stack", "prod", "--out", str(out)).returncode == 0
    assert first.read_text() == second.read_text()
    assert first.read_text().startswith("# Access review: stack prod\n")
    assert "### `app-access-role`" in first.read_text()

    edit(
        repo / "components" / "identity" / "app_access.py",
        '"Sid": "WriteDailyBackups",\n                "Effect": "Allow",\n                "Action": "s3:PutObject",',
        '"Sid": "WriteDailyBackups",\n                "Effect": "Allow",\n'
        '                "Action": ["s3:PutObject", "s3:DeleteObject"],',
    )
    result = plexictl(repo, "access-review", "--stack", "prod", "--diff", "HEAD")
    assert result.returncode == 0, result.stderr
    changes = result.stdout.split("## Changes since HEAD\n", 1)[1].split("```diff\n", 1)[1].split("```", 1)[0]
    assert changes.splitlines() == [
        "+ IAM roles › `app-access-role` › Permissions: Allow `s3:DeleteObject` on "
        f"`{BUCKET}/daily/*` (Bucket backups-bucket) (role policy app-access-policy)"
    ]


def test_diff_against_an_unknown_ref_is_a_clear_error(repo):
    result = plexictl(repo, "access-review", "--stack", "prod", "--diff", "no-such-ref")
    assert result.returncode == 1 and "unknown git ref 'no-such-ref'" in result.stderr
