"""The schema migration Job in the rendered state (components/cluster/migration_job.py): one per
schema version, awaited by the pods of that version, untouched by routing changes, never run for
an older version."""

from __future__ import annotations

import pytest

from components.config.migrations import MigrationSettings
from components.config.release import CanaryRelease, CanaryTrack, RollingRelease
from components.config.versions import name_slug
from components.release.migrations import raised_schema_version, schema_version
from tests.conftest import render_edited, rendered
from tests.release_state import pinned_version

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
    canary = pinned_version("v1.5.0")  # production pins every version by digest
    # The digest is in the name: a rebuild of the same tag is a new image, hence a new Job.
    assert (
        job.inputs["metadata"]["name"]
        == "plexichat-migrate-" + name_slug(canary)
        == ("plexichat-migrate-v1-5-0-" + canary.split(":")[1][:12])
    )
    container = job.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"ghcr.io/plexichat/plexichat:{canary}"
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
    # The namespace-wide allowances (mesh, HTTPS to S3 and the endpoints) leave Job pods out.
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
    assert snapshot.inputs["dbSnapshotIdentifier"].endswith("-before-" + name_slug(pinned_version("v1.5.0")))
    (primary,) = [i for i in prod.of_type("aws:rds/instance:Instance") if not i.inputs.get("replicateSourceDb")]
    assert snapshot.inputs["dbInstanceIdentifier"] == primary.inputs["identifier"]
    (job,) = migration_jobs(prod)
    assert snapshot.urn in job.dependencies
    assert not render_edited("dev", lambda config: None).of_type("aws:rds/snapshot:Snapshot")


def test_a_bounded_number_of_pre_migration_snapshots_is_kept():
    # As the release commands write them in production: every version pinned by digest.
    v130, v140, v142, v150 = (pinned_version(tag) for tag in ("v1.3.0", "v1.4.0", "v1.4.2", "v1.5.0"))

    def history(config):
        config["plexichat:migrations"] = {
            "snapshotBeforeMigrate": True,
            "keepSnapshots": 3,
            "schemaVersion": v150,
            "snapshotVersions": [v130, v140, v142],
        }

    prod = render_edited("prod", history)
    snapshots = {
        s.inputs["dbSnapshotIdentifier"].rsplit("-before-", 1)[1]: s for s in prod.of_type("aws:rds/snapshot:Snapshot")
    }
    assert sorted(snapshots) == sorted(name_slug(v) for v in (v140, v142, v150))  # v1.3.0's is deleted: three at most
    (job,) = migration_jobs(prod)
    assert snapshots[name_slug(v150)].urn in job.dependencies
    assert snapshots[name_slug(v140)].urn not in job.dependencies
    assert job.urn in deployment(prod, "plexichat-web-canary").dependencies


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
        f"    schemaVersion: {pinned_version('v1.5.0')}\n    snapshotVersions: [{pinned_version('v1.4.0')}]\n"
        "  plexichat:workloads:\n",
        1,
    )
    path.write_text(text)
    v160 = pinned_version("v1.6.0")
    rc.edit_stack("prod", path, partial(rc.canary_start, version=v160), root=project, render=False)
    written = yaml.safe_load(path.read_text())["config"]["plexichat:migrations"]
    assert written["schemaVersion"] == v160
    assert written["snapshotVersions"] == [pinned_version("v1.5.0")]  # with v1.6.0's own: keepSnapshots (2)
    assert f"snapshotVersions: [{pinned_version('v1.5.0')}]" in path.read_text()


def test_the_jobs_https_goes_only_to_the_configured_endpoints():
    def endpoints(config):
        config["plexichat:network"]["egressCidrs"] = ["10.30.200.0/24", "10.30.201.0/24"]

    policies = {
        p.inputs["metadata"]["name"]: p.inputs["spec"]
        for p in render_edited("prod", endpoints).of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    }
    https = [
        peer["ipBlock"]["cidr"]
        for rule in policies["allow-migrate-egress"]["egress"]
        if [p["port"] for p in rule["ports"]] == [443]
        for peer in rule["to"]
    ]
    assert https == ["10.30.200.0/24", "10.30.201.0/24"]
