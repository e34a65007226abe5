"""Schema migrations (docs/releasing.md, "Schema migrations"): a Job per version going live."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from components.config.base import Model, Version, int_range


class MigrationSettings(Model):
    """One Kubernetes Job per schema version runs the image's migrations before any pod of that
    version starts; a rollback never migrates down (expand/contract: docs/releasing.md)."""

    enabled: bool = True
    """Run a migration Job before a newer version goes live. Default on."""
    command: Annotated[list[str], Field(min_length=1)] = ["alembic", "upgrade", "head"]
    """The Job's command, run in that version's image. Default alembic upgrade head."""
    schema_version: Version | None = None
    """The version the database schema is migrated to. The release commands raise it to the
    newest version going live and no rollback lowers it, so a rollback, an abort or a flip back
    creates no Job. Default: the newest version of the release block."""
    snapshot_before_migrate: bool = False
    """Take an RDS manual snapshot named after the version before the Job runs (prod: on).
    Default off."""
    keep_snapshots: Annotated[int, int_range(1, 20, "a number of snapshots")] = 3
    """Pre-migration snapshots kept: the schema version's and those of the versions before it
    (snapshotVersions); older ones are deleted, since RDS allows 100 manual snapshots per region.
    Default 3."""
    snapshot_versions: list[Version] = []
    """Written by the release commands when the schema version rises: the earlier schema versions
    whose snapshots are kept, oldest first (at most keepSnapshots - 1). Default none."""
    active_deadline_seconds: Annotated[int, int_range(60, 7200, "a number of seconds")] = 900
    """The Job fails (and the update with it) when migrating takes longer. Default 900."""
    backoff_limit: Annotated[int, int_range(0, 10, "a number of retries")] = 1
    """Retries of a failed migration pod before the Job fails. Default 1."""
