"""Which schema version the database is migrated to, and so which pods wait for a migration.

The program keeps no history, so the schema's version is explicit: `migrations.schemaVersion`,
raised by the release commands to the newest version going live and never lowered by a rollback.
One migration Job is declared for it; only the pods of that version wait for the Job. A rollback,
an abort or a flip back leaves the schema version, hence the Job, as it is: no Job runs for an
older version (its `alembic upgrade head` would fail on the newer schema, and no pod would
start). Pure functions, no Pulumi.
"""

from __future__ import annotations

from components.config import versions
from components.config.migrations import MigrationSettings
from components.config.release import BlueGreenRelease, CanaryRelease, RollingRelease

Release = RollingRelease | CanaryRelease | BlueGreenRelease


def block_versions(block: dict) -> list[str]:
    """Every version a release block (as written in the stack file) names."""
    strategy = block.get("strategy")
    if strategy == "rolling":
        found = [block.get("version")]
    elif strategy == "canary":
        found = [block.get("stable"), (block.get("canary") or {}).get("version")]
    else:
        found = [block.get("blue"), block.get("green")]
    return [v for v in found if isinstance(v, str) and versions.is_valid(v)]


def release_versions(release: Release) -> list[str]:
    """Every version the release block runs."""
    if isinstance(release, RollingRelease):
        return [release.version]
    if isinstance(release, CanaryRelease):
        return [release.stable, release.canary.version]
    return [release.blue, release.green]


def newest(candidates: list[str]) -> str:
    """The newest release among `candidates` by the tags' release numbers; bare digests, which
    have no order, count only when nothing else is there (the last one given wins)."""
    ordered = [v for v in candidates if versions.parse(v).tag is not None]
    if not ordered:
        return candidates[-1]
    return max(ordered, key=versions.release_key)


def schema_version(release: Release, migrations: MigrationSettings) -> str:
    """The version the schema is migrated to: the explicit setting, else the newest version of
    the release block."""
    return migrations.schema_version or newest(release_versions(release))


def kept_snapshot_versions(migrations: MigrationSettings, schema: str) -> list[str]:
    """The schema versions whose pre-migration snapshots exist: the earlier ones the release
    commands recorded and the current one, at most `keepSnapshots`, oldest first."""
    earlier = [v for v in migrations.snapshot_versions if v != schema]
    return [*earlier, schema][-migrations.keep_snapshots :]


def recorded_snapshot_versions(earlier: list[str], previous_schema: str, keep: int) -> list[str]:
    """`snapshotVersions` after the schema rises from `previous_schema`: it joins the earlier
    ones, and only the newest `keep - 1` stay (the new schema version is the keep-th)."""
    joined = [v for v in earlier if v != previous_schema] + [previous_schema]
    return joined[-(keep - 1) :] if keep > 1 else []


def raised_schema_version(current: str | None, before: list[str], after: list[str]) -> str | None:
    """The schema version a release edit should write, given the versions of the release block
    before and after it: the newest one after, when it is newer than the schema's (explicit, or
    the newest before), else None (leave it). A rollback never lowers it."""
    if not after:
        return None  # nothing valid to migrate to: the settings report the version itself
    floor = current or (newest(before) if before else None)
    candidate = newest(after)
    if floor is None:
        return candidate
    try:
        return candidate if versions.newer(candidate, floor) else None
    except versions.UnorderedVersion:
        return None  # a bare digest has no order: the operator sets schemaVersion by hand
