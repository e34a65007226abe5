"""`plexictl diff`: field-level desired-state diffs and the replacement guard.

Unit tests compare hand-built renderings (so they cover resource types other branches add, such
as the VirtualService and RDS); CLI tests run `python -m plexictl diff --base HEAD` in a
temporary git repository made from this checkout, the way CI runs it on a pull request.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys

import pytest

from plexictl import revision
from plexictl.diff import DATA_LOSS, diff, field_changes
from plexictl.diff_report import format_markdown, format_text
from plexictl.offline import ROOT, Rendering, Resource
from plexictl.offline.rendering import SECRET_SIG_KEY, SECRET_SIG_VALUE
from plexictl.release import stack_file
from tests.release_state import STACKS, commit, pin_release
from tests.release_state import run_git as git

DB = "aws:rds/instance:Instance"
VS = "kubernetes:networking.istio.io/v1:VirtualService"


def resource(
    type_: str,
    name: str,
    inputs: dict,
    *,
    parent: str = "traffic",
    protect: bool = False,
    aliases: list[str] | None = None,
    retain: bool = False,
) -> Resource:
    return Resource(
        type=type_,
        name=name,
        inputs=inputs,
        custom=True,
        urn=f"urn:pulumi:prod::plexichat::plexichat:area:Part${type_}::{name}",
        parent=f"urn:pulumi:prod::plexichat::plexichat:area:Part::{parent}",
        provider="",
        protect=protect,
        retain_on_delete=retain,
        dependencies=[],
        ignore_changes=[],
        aliases=aliases or [],
        delete_before_replace=False,
    )


def rendering(*resources: Resource, outputs: dict | None = None) -> Rendering:
    return Rendering(stack="prod", preview=False, resources=list(resources), outputs=outputs or {})


def virtual_service(canary_weight: int) -> Resource:
    return resource(
        VS,
        "web-routes",
        {
            "metadata": {"name": "plexichat-web", "namespace": "plexichat"},
            "spec": {
                "hosts": ["plexichat-web.plexichat.svc.cluster.local"],
                "http": [
                    {"name": "canary-header", "route": [{"destination": {"subset": "canary"}}]},
                    {
                        "name": "primary",
                        "route": [
                            {"destination": {"subset": "stable"}, "weight": 100 - canary_weight},
                            {"destination": {"subset": "canary"}, "weight": canary_weight},
                        ],
                    },
                ],
            },
        },
    )


def database(**changes) -> Resource:
    inputs = {
        "engine": "postgres",
        "storageEncrypted": True,
        "allocatedStorage": 100,
        "identifierPrefix": "plexichat-prod-",
        **changes,
    }
    return resource(DB, "data-db", inputs, parent="data", protect=True)


def test_a_weight_change_is_exactly_the_two_route_weights():
    result = diff(rendering(virtual_service(10)), rendering(virtual_service(25)))
    assert [(c.kind, c.label, c.component) for c in result.changes] == [
        ("changed", "VirtualService plexichat-web", "Part traffic")
    ]
    assert [f.describe() for f in result.changes[0].fields] == [
        "spec.http[name=primary].route[subset=stable].weight 90 -> 75",
        "spec.http[name=primary].route[subset=canary].weight 10 -> 25",
    ]
    assert result.risks == []
    text = format_text([result])
    assert "~ VirtualService plexichat-web: spec.http[name=primary].route[subset=stable].weight 90 -> 75" in text
    assert "0 added, 1 changed, 0 removed" in text


def test_identical_renderings_have_no_changes():
    result = diff(rendering(virtual_service(10), database()), rendering(virtual_service(10), database()))
    assert result.empty and result.risks == [] and "no changes" in format_text([result])


def test_added_and_removed_resources_are_counted_per_component():
    web = resource(
        "kubernetes:apps/v1:Deployment",
        "web-canary-deployment",
        {"metadata": {"name": "plexichat-web-canary"}},
        parent="web-canary",
    )
    result = diff(rendering(web), rendering(virtual_service(0)))
    assert (result.count("added"), result.count("changed"), result.count("removed")) == (1, 0, 1)
    assert set(result.by_component()) == {"Part web-canary", "Part traffic"}
    text = format_text([result])
    assert "  component Part web-canary (1 removed):\n    - Deployment plexichat-web-canary (removed)" in text
    assert "  component Part traffic (1 added):\n    + VirtualService plexichat-web (added)" in text
    assert result.risks == []  # a Deployment holds no data


def test_a_replacement_forcing_input_of_a_stateful_resource_is_a_data_loss_risk():
    result = diff(rendering(database()), rendering(database(storageEncrypted=False)))
    assert [(r.label, r.reason) for r in result.risks] == [
        (f"{DB} data-db", "input storageEncrypted forces replacement (true -> false)")
    ]
    assert f"{DATA_LOSS}: {DB} data-db: input storageEncrypted" in format_text([result])


def test_an_in_place_change_of_a_stateful_resource_is_not_a_risk():
    result = diff(rendering(database()), rendering(database(allocatedStorage=200)))
    assert [f.describe() for f in result.changes[0].fields] == ["allocatedStorage 100 -> 200"]
    assert result.risks == []


def test_removing_a_stateful_resource_is_a_data_loss_risk():
    result = diff(rendering(database()), rendering())
    assert len(result.risks) == 1 and "removed: Pulumi would delete it" in result.risks[0].reason


def test_a_urn_change_without_an_alias_is_a_risk_and_with_one_is_a_rename():
    old = database()
    renamed = resource(DB, "data-primary", old.inputs, parent="data", protect=True)
    result = diff(rendering(old), rendering(renamed))
    assert len(result.risks) == 1
    assert f"URN changes to {renamed.urn} without an alias naming {old.urn}" in result.risks[0].reason

    aliased = resource(DB, "data-primary", old.inputs, parent="data", protect=True, aliases=[old.urn])
    result = diff(rendering(old), rendering(aliased))
    assert result.risks == []
    assert [c.kind for c in result.changes] == ["changed"]
    assert result.changes[0].fields[0].path == "urn (aliased)"


def test_dropping_protect_is_a_risk():
    unprotected = database()
    unprotected.protect = False
    result = diff(rendering(database()), rendering(unprotected))
    assert [f.describe() for f in result.changes[0].fields] == ["options.protect true -> false"]
    assert [r.reason for r in result.risks] == ["protect dropped: a later change could delete it"]


def test_turning_deletion_protection_off_is_a_risk_on_any_type_that_has_it():
    on, off = database(deletionProtection=True), database(deletionProtection=False)
    result = diff(rendering(on), rendering(off))
    assert [f.describe() for f in result.changes[0].fields] == ["deletionProtection true -> false"]
    assert [r.reason for r in result.risks] == [
        "deletionProtection turned off (true -> false): the cloud would then delete it on request"
    ]
    assert len(diff(rendering(on), rendering(database())).risks) == 1  # left out: RDS's default is off
    assert diff(rendering(off), rendering(on)).risks == []  # turning it on is no risk
    load_balancer = "aws:lb/loadBalancer:LoadBalancer"  # not stateful, but its protection is one

    def alb(protected: bool) -> Resource:
        return resource(load_balancer, "alb", {"enableDeletionProtection": protected}, parent="edge")

    assert [r.describe() for r in diff(rendering(alb(True)), rendering(alb(False))).risks] == [
        f"{DATA_LOSS}: {load_balancer} alb: enableDeletionProtection turned off (true -> false): "
        "the cloud would then delete it on request"
    ]


OVERRIDE = {"database.deletionProtection": "decommissioning, ticket OPS-42"}


def test_overridden_floors_are_shown_in_red_and_the_added_ones_marked():
    kept = {"cache.nodes": "one node until the Q3 budget"}
    base = rendering(database(), outputs={"productionFloorOverrides": kept})
    head = rendering(database(), outputs={"productionFloorOverrides": {**kept, **OVERRIDE}})
    result = diff(base, head)
    assert [o.describe() for o in result.overrides] == [
        "production floor cache.nodes overridden: one node until the Q3 budget",
        "production floor database.deletionProtection overridden (added by this change): "
        "decommissioning, ticket OPS-42",
    ]
    text = format_text([result])
    assert text.splitlines()[1:3] == [f"  !! {o.describe()}" for o in result.overrides]  # right under the stack
    assert "\033[" not in text
    assert f"\033[31m  !! {result.overrides[1].describe()}\033[0m" in format_text([result], color=True)
    markdown = format_markdown([result])
    assert "> [!CAUTION]\n> **2 production floor(s) overridden, 1 of them added by this change.**" in markdown
    assert "> - **prod**: **new** `database.deletionProtection`: decommissioning, ticket OPS-42" in markdown
    assert "> - **prod**: `cache.nodes`: one node until the Q3 budget" in markdown
    assert "<details open>" in markdown
    # A head without overrides shows none, whatever the base had.
    assert diff(head, base).overrides[0].added is False
    assert diff(head, rendering(database())).overrides == []


def test_moving_a_stateful_resource_to_another_provider_is_a_risk():
    moved = database()
    before = database()
    before.provider = "urn:pulumi:prod::plexichat::pulumi:providers:aws::default_7_51_1::id-1"
    moved.provider = "urn:pulumi:prod::plexichat::pulumi:providers:aws::data-aws::id-2"
    result = diff(rendering(before), rendering(moved))
    assert len(result.risks) == 1 and result.risks[0].reason.startswith(
        "provider changes (urn:pulumi:prod::plexichat::pulumi:providers:aws::default_7_51_1 -> "
    )
    moved.provider = before.provider.replace("id-1", "id-9")  # same provider, new id: no move
    assert diff(rendering(before), rendering(moved)).risks == []


def test_secret_values_are_compared_but_never_printed():
    def secret(value: str) -> dict:
        return {SECRET_SIG_KEY: SECRET_SIG_VALUE, "value": value}

    before = resource(
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "cache",
        {"authToken": secret("old-token-value"), "port": 6379},
    )
    after = resource(
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "cache",
        {"authToken": secret("new-token-value"), "port": 6380},
    )
    result = diff(
        rendering(before, outputs={"token": secret("old-token-value")}),
        rendering(after, outputs={"token": secret("new-token-value")}),
    )
    assert [f.describe() for f in result.changes[0].fields] == [
        "authToken [secret] -> [secret]",
        "port 6379 -> 6380",
    ]
    assert "input port forces replacement (6379 -> 6380)" in result.risks[0].reason
    for report in (format_text([result]), format_markdown([result])):
        assert "token-value" not in report


def test_keys_with_dots_use_pulumi_path_syntax():
    def labelled(version: str) -> Resource:
        return resource(
            "kubernetes:apps/v1:Deployment",
            "web",
            {"metadata": {"name": "web", "labels": {"app.kubernetes.io/version": version}}},
        )

    result = diff(rendering(labelled("v1")), rendering(labelled("v2")))
    assert result.changes[0].fields[0].path == 'metadata.labels["app.kubernetes.io/version"]'


def test_markdown_is_collapsible_per_stack_with_a_loud_warning_for_risks():
    safe = diff(rendering(virtual_service(10)), rendering(virtual_service(25)), "staging")
    risky = diff(rendering(database()), rendering(database(engine="mysql")), "prod")
    report = format_markdown([safe, risky], base_name="origin/main")
    assert report.count("<details") == 2 and report.count("</details>") == 2
    assert "<summary><b>staging</b>: 0 added, 1 changed, 0 removed</summary>" in report
    assert "> [!CAUTION]" in report
    assert f"> - **prod**: {DATA_LOSS}: {DB} data-db: input engine forces replacement" in report
    assert (
        "| ~ | `VirtualService plexichat-web` | `spec.http[name=primary].route[subset=stable].weight` | `90` | `75` |"
    ) in report
    assert "[!CAUTION]" not in format_markdown([safe])


def test_a_base_that_pins_other_sdks_is_said_plainly_to_have_rendered_with_these(tmp_path):
    """An SDK bump PR: both sides render with the SDKs installed here, and the diff says so. Pins
    of what the program does not import (the tool's own dependencies) are no concern of a render."""
    base, head = tmp_path / "base", tmp_path / "head"
    for root, aws, boto in ((base, "7.50.0", "1.40.0"), (head, "7.51.1", "1.44.8")):
        root.mkdir()
        (root / "__main__.py").write_text("import pulumi\nimport pulumi_aws as aws\naws.kms.Key('key')\n")
        (root / "requirements.txt").write_text(f"pulumi==3.272.0\npulumi_aws == {aws}  # the SDK\nboto3=={boto}\n")
    note = revision.sdk_difference(base, head, "origin/main")
    assert note and "requirements.txt pins other versions at origin/main (pulumi-aws 7.50.0 -> 7.51.1);" in note
    assert "both sides were rendered with the ones installed here (pulumi-aws " in note and "boto3" not in note
    assert revision.sdk_difference(head, head, "origin/main") is None
    same = diff(rendering(virtual_service(10)), rendering(virtual_service(10)), "prod")
    assert format_text([same], notes=[note]).startswith(f"note: {note}\n\nstack prod")
    assert f"> [!NOTE]\n> {note}\n" in format_markdown([same], notes=[note])


def web_deployment(env: list[dict]) -> Resource:
    return resource(
        "kubernetes:apps/v1:Deployment",
        "web-stable",
        {
            "metadata": {"name": "plexichat-web-stable"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "migrate-wait", "image": "busybox"},
                            {"name": "web", "image": "ghcr.io/plexichat/plexichat:v1.5.0", "env": env},
                        ]
                    }
                }
            },
        },
    )


def test_list_items_are_matched_and_named_by_name_so_an_insert_shifts_nothing():
    before = [
        {"name": "DATABASE_HOST", "value": "db-1.internal"},
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "OLD_FLAG", "value": "1"},
    ]
    after = [
        {"name": "FEATURE_FLAGS", "value": "chat"},
        {"name": "DATABASE_HOST", "value": "db-2.internal"},
        {"name": "LOG_LEVEL", "value": "info"},
    ]
    result = diff(rendering(web_deployment(before)), rendering(web_deployment(after)))
    env = "spec.template.spec.containers[name=web].env"
    assert [f.describe() for f in result.changes[0].fields] == [
        f"{env}[DATABASE_HOST].value db-1.internal -> db-2.internal",
        f'{env}[OLD_FLAG] {{"name": "OLD_FLAG", "value": "1"}} -> (absent)',
        f'{env}[FEATURE_FLAGS] (absent) -> {{"name": "FEATURE_FLAGS", "value": "chat"}}',
    ]


def test_a_reorder_is_one_change_not_a_change_per_position():
    swapped = virtual_service(10)
    swapped.inputs["spec"]["http"].reverse()
    result = diff(rendering(virtual_service(10)), rendering(swapped))
    # Istio takes the first matching route, so the order is shown, once.
    assert [f.describe() for f in result.changes[0].fields] == [
        'spec.http (order) ["name=canary-header", "name=primary"] -> ["name=primary", "name=canary-header"]'
    ]


def test_items_without_a_unique_identity_are_named_by_position():
    def policy(*peers: dict) -> Resource:
        return resource(
            "kubernetes:networking.k8s.io/v1:NetworkPolicy",
            "web-ingress",
            {"metadata": {"name": "web"}, "spec": {"ingress": [{"from": list(peers)}]}},
        )

    nginx = {"namespaceSelector": {"matchLabels": {"name": "nginx"}}}
    monitoring = {"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}
    result = diff(rendering(policy(nginx)), rendering(policy(nginx, monitoring)))
    assert [f.path for f in result.changes[0].fields] == ["spec.ingress[0].from[1]"]

    twice = [{"name": "LOG_LEVEL", "value": "info"}, {"name": "LOG_LEVEL", "value": "debug"}]
    result = diff(rendering(web_deployment(twice)), rendering(web_deployment(twice[:1])))
    assert [f.path for f in result.changes[0].fields] == ["spec.template.spec.containers[name=web].env[1]"]


def test_config_paths_keep_pulumi_index_syntax_unless_names_are_asked_for():
    before = {
        "canary": {"steps": [10, 25], "header": {"name": "x-canary", "value": "true"}},
        "routes": [{"name": "primary", "weight": 90}],
    }
    after = {
        "canary": {"steps": [5, 25], "header": {"name": "x-canary", "value": "yes"}},
        "routes": [{"name": "primary", "weight": 75}],
    }
    assert [f.path for f in field_changes(before, after, "release")] == [
        "release.canary.steps[0]",
        "release.canary.header.value",
        "release.routes[0].weight",
    ]
    assert field_changes(before, after, "release", by_name=True)[-1].path == "release.routes[name=primary].weight"


def test_long_values_are_shortened_after_a_whole_word_and_one_long_word_is_kept_whole():
    policy = (
        "Allow the backup service to read the primary database snapshots and copy them to the "
        "disaster recovery region every night"
    )
    arn = "arn:aws:kms:us-west-2:123456789012:key/" + "0123456789abcdef" * 6
    before = resource("aws:kms/key:Key", "data-key", {"description": "short", "policy": arn})
    after = resource("aws:kms/key:Key", "data-key", {"description": policy, "policy": arn + "0"})
    result = diff(rendering(before), rendering(after))
    shortened = (
        "Allow the backup service to read the primary database snapshots and copy them to the "
        "disaster recovery region every …"
    )
    assert [(f.path, f.describe()) for f in result.changes[0].fields] == [
        ("description", f"description short -> {shortened}"),
        ("policy", f"policy {arn} -> {arn}0"),
    ]
    assert len(shortened) <= 120
    assert f"| `description` | `short` | `{shortened}` |" in format_markdown([result])


def test_fields_are_listed_in_one_order_whatever_order_the_program_sets_them():
    import pulumi

    from plexictl.offline import run

    def key(**inputs) -> None:
        pulumi.CustomResource("aws:kms/key:Key", "data-key", inputs)

    old = {"multiRegion": False, "description": "data key", "enableKeyRotation": False, "deletionWindowInDays": 7}
    new = {"multiRegion": True, "description": "the data key", "enableKeyRotation": True, "deletionWindowInDays": 30}
    paths = []
    for order in (list(old), sorted(old), list(reversed(old))):
        base = run(lambda order=order: key(**{k: old[k] for k in order}), "prod")
        head = run(lambda order=order: key(**{k: new[k] for k in reversed(order)}), "prod")
        paths.append([f.path for f in diff(base, head).changes[0].fields])
    assert paths == [["deletionWindowInDays", "description", "enableKeyRotation", "multiRegion"]] * 3


# ---------------------------------------------------------------------------------------------
# The command, on a temporary git repository made from this checkout


def checkout_repo(dest):
    """This checkout's tracked files (as they are now) committed in a fresh repository, each stack
    file at its pinned release (tests/release_state.py): the release block is operator data that
    changes daily, and the tests below edit its text (`weight: 10`, `active: blue`)."""
    files = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    for stack in STACKS:
        pin_release(dest / f"Pulumi.{stack}.yaml", stack)
    git(dest, "init", "--quiet", "--initial-branch=main")
    commit(dest, "base")
    return dest


@pytest.fixture
def repo(tmp_path):
    return checkout_repo(tmp_path)


def plexictl_diff(repo, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "plexictl", "diff", "--base", "HEAD", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert git(repo, "worktree", "list").count("\n") == 1  # the base checkout is cleaned up
    return result


def edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_weight_edit_changes_no_workload_and_a_new_stack_is_all_added(repo):
    edit(repo / "Pulumi.prod.yaml", "weight: 10", "weight: 25")
    shutil.copy(repo / "Pulumi.dev.yaml", repo / "Pulumi.qa.yaml")
    result = plexictl_diff(repo, "--all-stacks")
    assert result.returncode == 0, result.stderr
    dev, prod, prod_dr, qa, staging = result.stdout.split("\nstack ")
    # prod-dr reads prod's outputs (a StackReference): a weight edit of prod changes none it reads.
    assert "no changes" in dev and "no changes" in staging and "no changes" in prod_dr
    # A weight edit may change routing (the VirtualService, once the traffic component exists)
    # and nothing else: no workload, Service or HPA, nothing added or removed.
    resources, outputs = prod.split("  stack outputs:\n")
    for line in resources.splitlines()[1:]:
        assert line.startswith("  component ") or (line.startswith("    ~ VirtualService ") and ".weight " in line), (
            line
        )
    assert outputs.splitlines() == [
        "    ~ tracks.stable.weightPercent 90 -> 75",
        "    ~ tracks.canary.weightPercent 10 -> 25",
        "    ~ canaryWeightPercent 10 -> 25",
    ]
    assert "note: no Pulumi.qa.yaml at HEAD: everything is added" in qa
    assert "+ Deployment plexichat-web-stable (added)" in qa


KEY_PROGRAM = """
import pulumi_aws as aws  # test-only stateful resource, to exercise the guard end to end
aws.kms.Key("guard-key", description="guard test", multi_region=False)
"""


def test_replacement_forcing_edit_exits_2_unless_allowed(repo):
    with (repo / "__main__.py").open("a") as program:
        program.write(KEY_PROGRAM)
    commit(repo, "add a key")
    edit(repo / "__main__.py", "multi_region=False", "multi_region=True")

    refused = plexictl_diff(repo, "--stack", "dev", "--format", "markdown")
    assert refused.returncode == 2
    assert f"{DATA_LOSS}: aws:kms/key:Key guard-key: input multiRegion forces replacement" in refused.stdout
    assert "> [!CAUTION]" in refused.stdout
    assert "--allow-replace" in refused.stderr

    allowed = plexictl_diff(repo, "--stack", "dev", "--allow-replace")
    assert allowed.returncode == 0, allowed.stderr
    assert "~ aws:kms/key:Key guard-key: multiRegion false -> true" in allowed.stdout


def set_config(path, key: str, value) -> None:
    """Set `plexichat:<key>` (a dotted path) in the stack file at `path`, keeping the rest as is."""
    yaml = stack_file.round_trip_yaml()
    document = yaml.load(path.read_text())
    top, *rest = key.split(".")
    node = document["config"]
    if rest:
        node = node[f"plexichat:{top}"]
        for part in rest[:-1]:
            node = node[part]
        node[rest[-1]] = value
    else:
        node[f"plexichat:{top}"] = value
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    path.write_text(buffer.getvalue())


def test_turning_deletion_protection_off_in_prod_exits_2_and_shows_the_override(repo):
    prod = repo / "Pulumi.prod.yaml"
    set_config(prod, "database.deletionProtection", False)
    set_config(prod, "productionFloorOverrides", OVERRIDE)

    refused = plexictl_diff(repo, "--stack", "prod")
    assert refused.returncode == 2
    header, override = refused.stdout.splitlines()[:2]
    assert header.startswith("stack prod ")
    assert override == (
        "  !! production floor database.deletionProtection overridden (added by this change): "
        "decommissioning, ticket OPS-42"
    )
    assert "aws:rds/instance:Instance database-primary: deletionProtection turned off" in refused.stdout
    assert "\033[" not in refused.stdout  # not a terminal: no colour codes in a log
    assert "turn their protection off" in refused.stderr and "--allow-replace" in refused.stderr

    allowed = plexictl_diff(repo, "--stack", "prod", "--format", "markdown", "--allow-replace")
    assert allowed.returncode == 0, allowed.stderr
    assert "> - **prod**: **new** `database.deletionProtection`: decommissioning, ticket OPS-42" in allowed.stdout


def test_dropping_protect_in_a_stack_file_exits_2(repo):
    set_config(repo / "Pulumi.staging.yaml", "environment", "staging")  # no floor keeps it on
    commit(repo, "staging")
    set_config(repo / "Pulumi.staging.yaml", "dataProtection.protect", False)
    refused = plexictl_diff(repo, "--stack", "staging")
    assert refused.returncode == 2
    assert "aws:rds/instance:Instance database-primary: protect dropped" in refused.stdout


def test_a_broken_config_at_either_revision_is_reported_as_such(repo):
    edit(repo / "Pulumi.prod.yaml", "weight: 10", "weight: 150")
    commit(repo, "broken")
    edit(repo / "Pulumi.prod.yaml", "weight: 150", "weight: 10")
    edit(repo / "Pulumi.staging.yaml", "active: blue", "active: purple")
    result = plexictl_diff(repo, "--all-stacks")
    assert result.returncode == 1 and result.stdout == ""
    assert "base (HEAD), stack prod: invalid configuration for stack 'prod'" in result.stderr
    assert "plexichat:release.canary.weight: must be an integer percent from 0 to 100 (got 150)" in result.stderr
    assert "working tree, stack staging: invalid configuration for stack 'staging'" in result.stderr
    assert "plexichat:release.active" in result.stderr


def test_an_unknown_base_ref_or_stack_is_a_clear_error(repo):
    result = plexictl_diff(repo, "--stack", "dev", "--base", "no-such-branch")
    assert result.returncode == 1 and "unknown git ref 'no-such-branch'" in result.stderr
    result = plexictl_diff(repo, "--stack", "qa")
    assert result.returncode == 1  # not 2: that exit code means a data-loss risk
    assert (
        "no stack 'qa': no Pulumi.qa.yaml in the working tree or at HEAD; stacks: dev, prod, prod-dr, staging"
        in result.stderr
    )


def test_the_base_checkout_is_removed_even_when_the_diff_fails(repo):
    with pytest.raises(RuntimeError), revision.checkout(repo, "HEAD") as base_root:
        assert (base_root / "Pulumi.prod.yaml").read_text() == (repo / "Pulumi.prod.yaml").read_text()
        raise RuntimeError("interrupted")
    assert not base_root.exists()
    assert git(repo, "worktree", "list").count("\n") == 1


def test_a_program_that_crashes_at_a_revision_is_reported_not_raised(tmp_path):
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path)
    shutil.copy(ROOT / "Pulumi.dev.yaml", tmp_path)
    (tmp_path / "__main__.py").write_text("raise ValueError('half-written refactoring')\n")
    with pytest.raises(revision.RevisionError) as raised:
        revision.render({"base (HEAD~1)": tmp_path}, ["dev", "qa"])
    assert "base (HEAD~1), stack dev: the program failed:" in str(raised.value)
    assert "ValueError: half-written refactoring" in str(raised.value)


def test_a_rename_with_a_real_alias_is_followed_through_the_engine():
    """`Alias(parent=...)` and `Alias(name=...)` reach the engine as specs; the diff sees URNs."""
    import pulumi

    from plexictl.offline import run

    class Data(pulumi.ComponentResource):
        def __init__(self, name: str) -> None:
            super().__init__("plexichat:data:Data", name, None)

    def key(name: str, **options) -> None:
        pulumi.CustomResource(
            "aws:kms/key:Key", name, {"description": "data key"}, opts=pulumi.ResourceOptions(**options)
        )

    def before() -> None:
        key("data-key")
        key("backup-key", parent=Data("data"))

    def after(aliased: bool) -> None:
        data = Data("data")
        # Moved into the component, and renamed inside it.
        key("data-key", parent=data, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)] if aliased else [])
        key("vault-key", parent=data, aliases=[pulumi.Alias(name="backup-key")] if aliased else [])

    result = diff(run(before, "prod"), run(lambda: after(True), "prod"))
    assert result.risks == []
    assert [(c.kind, c.fields[0].path) for c in result.changes] == [("changed", "urn (aliased)")] * 2

    result = diff(run(before, "prod"), run(lambda: after(False), "prod"))
    assert len(result.risks) == 2 and all("without an alias" in r.reason for r in result.risks)
