"""The schema migration Job in the rendered state (components/cluster/migration_job.py): one per
schema version, awaited by the pods of that version, untouched by routing changes, never run for
an older version."""

from __future__ import annotations

import pytest

from components.config.migrations import MigrationSettings
from components.config.release import CanaryRelease, CanaryTrack, RollingRelease
from components.release.migrations import raised_schema_version, schema_version
from tests.conftest import render_edited, rendered

JOB = "kubernetes:batch/v1:Job"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def migration_jobs(rendering) -> list:
    """The migration Jobs (the database bootstrap's Job is tests/test_database_roles_wiring.py's)."""
    return [j for j in rendering.of_type(JOB) if j.inputs["metadata"]["name"].startswith("plexichat-migrate-")]


def jobs(rendering) -> dict[str, dict]:
    return {j.inputs["metadata"]["name"]: j for j in migration_jobs(rendering)}


def deployment(rendering, name: str):
    (found,) = [d for d in rendering.of_type(DEPLOYMENT) if d.inputs["metadata"]["name"] == name]
    return found


def release(**block):
    def edit(config):
        config["plexichat:release"] = block

    return edit


def test_the_canary_versions_job_runs_first_and_only_its_pods_wait_for_it():
    prod = rendered("prod")  # pinned: canary v1.5.0 next to stable v1.4.2, no explicit schema
    (job,) = migration_jobs(prod)
    assert job.inputs["metadata"]["name"] == "plexichat-migrate-v1-5-0"
    container = job.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/plexichat/plexichat:v1.5.0"
    assert container["command"] == ["alembic", "upgrade", "head"]
    assert job.urn in deployment(prod, "plexichat-web-canary").dependencies
    for stable in ("plexichat-web-stable", "plexichat-worker-stable"):
        assert job.urn not in deployment(prod, stable).dependencies  # v1.4.2 needs no migration


def test_the_job_is_kept_awaited_and_replaced_when_it_failed():
    (job,) = migration_jobs(rendered("prod"))
    spec = job.inputs["spec"]
    assert "ttlSecondsAfterFinished" not in spec  # stays while its version is the schema's
    assert job.inputs["metadata"]["annotations"]["pulumi.com/replaceUnready"] == "true"
    assert spec["activeDeadlineSeconds"] == 900 and spec["backoffLimit"] == 1
    pod = spec["template"]
    assert pod["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"  # or it never completes
    assert pod["spec"]["restartPolicy"] == "Never" and pod["spec"]["serviceAccountName"] == "plexichat-migrate"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_job_reaches_only_dns_the_database_and_https_in_the_vpc():
    prod = rendered("prod")
    policies = {
        p.inputs["metadata"]["name"]: p.inputs["spec"]
        for p in prod.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    }
    own = policies["allow-migrate-egress"]
    assert own["podSelector"] == {"matchLabels": {"plexichat.com/job": "migrate"}} and own["ingress"] == []
    ports = sorted(p["port"] for rule in own["egress"] for p in rule["ports"])
    assert ports == [53, 53, 443, 5432]
    assert all("0.0.0.0/0" not in str(rule) for rule in own["egress"])
    # The namespace-wide allowances (mesh, HTTPS to anywhere) leave Job pods out.
    for name in ("allow-mesh", "allow-egress-https", "allow-egress-data"):
        assert policies[name]["podSelector"]["matchExpressions"][0] == {
            "key": "plexichat.com/job",
            "operator": "DoesNotExist",
        }


@pytest.mark.parametrize("preview", [False, True])
def test_a_weight_change_does_not_touch_the_job(preview):
    def weight(value):
        def edit(config):
            config["plexichat:release"]["canary"]["weight"] = value

        return edit

    before, after = render_edited("prod", weight(10), preview), render_edited("prod", weight(50), preview)
    assert {u: r.inputs for u, r in jobs(before).items()} == {u: r.inputs for u, r in jobs(after).items()}


def test_a_newer_version_creates_one_new_job_and_an_older_one_none():
    newer = render_edited("dev", release(strategy="rolling", version="v1.6.0"))
    assert list(jobs(newer)) == ["plexichat-migrate-v1-6-0"]

    def pinned_schema(version, schema):
        def edit(config):
            config["plexichat:release"] = {"strategy": "rolling", "version": version}
            config["plexichat:migrations"] = {"schemaVersion": schema}

        return edit

    # A rollback (what the release commands write): the schema stays at v1.6.0, no Job for v1.5.0.
    rolled_back = render_edited("dev", pinned_schema("v1.5.0", "v1.6.0"))
    (job,) = migration_jobs(rolled_back)
    assert job.inputs["metadata"]["name"] == "plexichat-migrate-v1-6-0"
    assert job.urn not in deployment(rolled_back, "plexichat-web-stable").dependencies  # v1.5.0 waits for nothing


def test_migrations_off_declares_no_job():
    def off(config):
        config["plexichat:migrations"] = {"enabled": False}

    assert not migration_jobs(render_edited("prod", off))


def test_the_schema_version_only_ever_rises():
    assert raised_schema_version(None, ["v1.4.2"], ["v1.4.2", "v1.5.0"]) == "v1.5.0"  # canary start
    assert raised_schema_version("v1.5.0", ["v1.4.2", "v1.5.0"], ["v1.5.0"]) is None  # promote
    assert raised_schema_version("v1.5.0", ["v1.4.2", "v1.5.0"], ["v1.4.2"]) is None  # abort
    assert raised_schema_version("v1.6.0", ["v1.6.0"], ["v1.5.0"]) is None  # rollback
    assert raised_schema_version(None, ["v1.9.0"], ["v1.10.0"]) == "v1.10.0"  # numeric, not text
    canary = CanaryRelease(strategy="canary", stable="v1.4.2", canary=CanaryTrack(version="v1.5.0"))
    assert schema_version(canary, MigrationSettings()) == "v1.5.0"
    rolling = RollingRelease(strategy="rolling", version="v1.4.2")
    assert schema_version(rolling, MigrationSettings(schema_version="v1.5.0")) == "v1.5.0"


def test_prod_snapshots_the_database_before_migrating():
    def on(config):
        config["plexichat:migrations"] = {"snapshotBeforeMigrate": True}

    prod = render_edited("prod", on)
    (snapshot,) = prod.of_type("aws:rds/snapshot:Snapshot")
    assert snapshot.inputs["dbSnapshotIdentifier"].endswith("-before-v1-5-0")
    (primary,) = [i for i in prod.of_type("aws:rds/instance:Instance") if not i.inputs.get("replicateSourceDb")]
    assert snapshot.inputs["dbInstanceIdentifier"] == primary.inputs["identifier"]
    (job,) = migration_jobs(prod)
    assert snapshot.urn in job.dependencies
    assert not render_edited("dev", lambda config: None).of_type("aws:rds/snapshot:Snapshot")


def test_a_bounded_number_of_pre_migration_snapshots_is_kept():
    def history(config):
        config["plexichat:migrations"] = {
            "snapshotBeforeMigrate": True,
            "keepSnapshots": 3,
            "schemaVersion": "v1.5.0",
            "snapshotVersions": ["v1.3.0", "v1.4.0", "v1.4.2"],
        }

    prod = render_edited("prod", history)
    snapshots = {
        s.inputs["dbSnapshotIdentifier"].rsplit("-before-", 1)[1]: s for s in prod.of_type("aws:rds/snapshot:Snapshot")
    }
    assert sorted(snapshots) == ["v1-4-0", "v1-4-2", "v1-5-0"]  # v1.3.0's is deleted: three at most
    (job,) = migration_jobs(prod)
    assert snapshots["v1-5-0"].urn in job.dependencies
    assert snapshots["v1-4-0"].urn not in job.dependencies


def test_the_release_commands_record_the_snapshots_to_keep(tmp_path):
    from functools import partial

    import yaml

    from plexictl import release as rc
    from tests.release_state import project_copy

    project = project_copy(tmp_path)
    path = project / "Pulumi.prod.yaml"
    data = yaml.safe_load(path.read_text())
    text = path.read_text()
    migrations = "  plexichat:migrations:\n    snapshotBeforeMigrate: true\n"
    if "plexichat:migrations" in data["config"]:
        text = text.replace(migrations, "")
    text = text.replace(
        "  plexichat:workloads:\n",
        "  plexichat:migrations:\n    snapshotBeforeMigrate: true\n    keepSnapshots: 2\n"
        "    schemaVersion: v1.5.0\n    snapshotVersions: [v1.4.0]\n  plexichat:workloads:\n",
        1,
    )
    path.write_text(text)
    rc.edit_stack("prod", path, partial(rc.canary_start, version="v1.6.0"), root=project, render=False)
    written = yaml.safe_load(path.read_text())["config"]["plexichat:migrations"]
    assert written["schemaVersion"] == "v1.6.0"
    assert written["snapshotVersions"] == ["v1.5.0"]  # with v1.6.0's own: keepSnapshots (2)
    assert "snapshotVersions: [v1.5.0]" in path.read_text()


def test_the_jobs_https_goes_only_to_the_configured_endpoints():
    def endpoints(config):
        config["plexichat:network"]["awsEndpointCidrs"] = ["10.30.200.0/24", "10.30.201.0/24"]

    policies = {
        p.inputs["metadata"]["name"]: p.inputs["spec"]
        for p in render_edited("prod", endpoints).of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    }
    https = [
        rule["to"][0]["ipBlock"]["cidr"]
        for rule in policies["allow-migrate-egress"]["egress"]
        if [p["port"] for p in rule["ports"]] == [443]
    ]
    assert https == ["10.30.200.0/24", "10.30.201.0/24"]
