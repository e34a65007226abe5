"""Running a release change on a stack file, as a small, reviewable edit:

1. read the stack file (a YAML error or a key given twice is refused, naming file and line),
   and refuse a command whose input keys are invalid now (`@reads`),
2. load it with ruamel.yaml's round-trip mode (comments, quoting, key order and flow-style
   lists survive; untouched lines stay byte-for-byte identical) and change the release block
   (or another block: `plexictl dr failover` edits `plexichat:dr` the same way),
3. validate the whole new stack config with the program's own settings models
   (`parse_stack_config`); an invalid request raises the program's RunError and the file is not
   written,
4. render the stack before and after (at once, in two forked children) and report the
   desired-state diff the edit causes,
5. write the file, and print the equivalent `pulumi config` commands.
"""

from __future__ import annotations

import io
import pathlib
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
from ruamel.yaml.comments import CommentedMap

from components.config import versions
from components.config.migrations import MigrationSettings
from components.release.migrations import block_versions, newest, raised_schema_version, recorded_snapshot_versions
from plexictl import diff, offline
from plexictl.release.changes import ReleaseError, settled_version
from plexictl.release.stack_file import RELEASE_KEY, flow_list, plain, round_trip_yaml


class NothingToDo(ReleaseError):
    """The request would leave the release block as it is: nothing to write, review or apply."""


@dataclass
class Edit:
    stack: str
    path: pathlib.Path
    message: str
    before: dict[str, Any]
    after: dict[str, Any]
    old_text: str
    new_text: str
    diff: diff.StackDiff | None = None
    key: str = RELEASE_KEY
    """The config key whose block was edited (the release block, or `plexichat:dr`)."""

    def pulumi_commands(self) -> list[str]:
        """The same edit as plain `pulumi config` commands (what the CLI would write)."""
        key = self.key.partition(":")[2]
        commands = []
        for change in diff.field_changes(self.before, self.after, key):
            if change.after is diff.ABSENT:
                commands.append(f"pulumi config rm --path {shlex.quote(change.path)} -s {self.stack}")
                continue
            for path, value in _leaves(change.path, change.after):
                commands.append(_config_set(path, value, self.stack))
        return commands


def _leaves(path: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(diff.key_path(path, str(k)), v)]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(f"{path}[{i}]", v)]
    return [(path, value)]


def _config_set(path: str, value: Any, stack: str) -> str:
    # With --path, the CLI stores "true"/"false" as booleans and integers as numbers; a string
    # that looks like one must say it is a string.
    text = str(value).lower() if isinstance(value, bool) else str(value)
    typed = isinstance(value, str) and (text in ("true", "false") or text.lstrip("-").isdigit())
    return (
        f"pulumi config set --path {shlex.quote(path)} {shlex.quote(text)}"
        f"{' --type string' if typed else ''} -s {stack}"
    )


def edit_stack(
    stack: str,
    path: pathlib.Path,
    change: Callable[[CommentedMap], str],
    *,
    root: pathlib.Path = offline.ROOT,
    write: bool = True,
    render: bool = True,
    key: str = RELEASE_KEY,
) -> Edit:
    """Apply `change` to the block `key` (the release block unless told) of `path`; validate,
    diff, and write it. Only a release edit follows the schema version and notes capacity.

    Raises ReleaseError (request does not apply) or the program's pulumi.RunError (the result is
    invalid); in both cases the file is untouched.
    """
    from components.config.parse import ConfigError, parse_stack_config

    old_text = path.read_text()
    old_data = offline.read_stack_file(path, old_text)  # names the file and line of a YAML error
    if not isinstance(old_data.get("config", {}).get(key), dict):
        raise ReleaseError(f"{path.name} has no {key} block to edit")
    old_config = offline.stack_config(stack, root, stack_file=old_data)
    try:
        parse_stack_config(old_config[0], stack, old_config[1])
    except ConfigError as error:
        _refuse_on_what_it_reads(change, error.problems, path, key)
    round_trip = round_trip_yaml()
    document = round_trip.load(old_text)
    block = document["config"][key]
    before = plain(block)
    message = change(block)
    if plain(block) == before:
        what = "the release" if key == RELEASE_KEY else key
        raise NothingToDo(f"nothing to do: {what} is already as requested ({message})")
    if key == RELEASE_KEY:
        message += follow_schema_version(document["config"], before, plain(block))
    buffer = io.StringIO()
    round_trip.dump(document, buffer)
    new_text = buffer.getvalue()

    new_config = offline.stack_config(stack, root, stack_file=offline.read_stack_file(path, new_text))
    config, secret_keys = new_config
    settings = parse_stack_config(config, stack, secret_keys)  # raises the program's own RunError
    if key == RELEASE_KEY:
        message += _flip_capacity_note(before, plain(block), settings)
    edit = Edit(stack, path, message, before, plain(block), old_text, new_text, key=key)
    if render:
        before_rendering, after = _render_before_and_after(stack, root, old_config, new_config)
        edit.diff = diff.diff(before_rendering, after, stack)
        if before_rendering is None:
            edit.diff.note = f"{path.name} was invalid before this edit; everything shows as added"
    if write and new_text != old_text:
        path.write_text(new_text)
    return edit


MIGRATIONS_KEY = "plexichat:migrations"


def follow_schema_version(config: CommentedMap, before: dict[str, Any], after: dict[str, Any]) -> str:
    """Raise `migrations.schemaVersion` to the newest version going live (docs/releasing.md,
    schema migrations); never lower it. Returns a note for the operator: the raise, or a
    warning when the release goes back past a migrated schema."""
    migrations = config.get(MIGRATIONS_KEY)
    current = migrations.get("schemaVersion") if isinstance(migrations, dict) else None
    known = block_versions(before) or block_versions(after)
    schema = current or (newest(known) if known else None)
    raised = raised_schema_version(current, block_versions(before), block_versions(after))
    # Written whenever it changes, and pinned the first time: left implicit, it would follow the
    # release block down after an abort, and a Job would run for the older version.
    versions_changed = sorted(block_versions(before)) != sorted(block_versions(after))
    if raised is not None or (current is None and schema is not None and versions_changed):
        if not isinstance(migrations, CommentedMap):
            migrations = CommentedMap()
            config.insert(list(config).index(RELEASE_KEY) + 1, MIGRATIONS_KEY, migrations)
        migrations["schemaVersion"] = raised or schema
    if raised is not None and schema is not None and migrations.get("snapshotBeforeMigrate"):
        keep = int(migrations.get("keepSnapshots", MigrationSettings().keep_snapshots))
        kept = recorded_snapshot_versions(list(migrations.get("snapshotVersions") or []), schema, keep)
        if kept:
            migrations["snapshotVersions"] = flow_list(kept)
    if raised is not None:
        return f"; schema version -> {raised}: its migration Job runs before any of its pods starts"
    live = settled_version(after)
    went_back = live != settled_version(before)
    if went_back and live and schema and live != schema and _older_release(live, schema):
        return (
            f"; note: the schema stays migrated to {schema} (no automatic downgrade): {live} runs on "
            "it, which expand/contract migrations allow (docs/releasing.md)"
        )
    return ""


def _older_release(version: str, than: str) -> bool:
    try:
        return versions.newer(than, version)
    except (versions.UnorderedVersion, versions.InvalidVersion):
        return False  # no order to tell; an invalid version is the settings' to report


def _render_before_and_after(
    stack: str, root: pathlib.Path, *configs: tuple[dict[str, str], list[str]]
) -> tuple[offline.Rendering | None, offline.Rendering]:
    """The stack rendered with the old and the new config, at the same time (in two children of
    this process); None before when the old config was invalid (the edit repairs it)."""
    before, after = offline.render_jobs(
        [offline.RenderJob(stack, root, config=config, secret_keys=secret_keys) for config, secret_keys in configs]
    )
    if isinstance(after, offline.Failure):
        raise (pulumi.RunError if after.invalid_config else RuntimeError)(after.message)
    if isinstance(before, offline.Failure):
        if not before.invalid_config:
            raise RuntimeError(before.message)
        return None, after  # the edit repairs a broken file: show what it now builds
    return before, after


def _refuse_on_what_it_reads(
    change: Callable[[CommentedMap], str], problems: list[tuple[str, str]], path: pathlib.Path, block: str
) -> None:
    """ReleaseError when a key of the edited block the change reads (`@reads`) is invalid now."""
    command = getattr(change, "func", change)  # a functools.partial carrying the arguments
    keys = [f"{block}.{key}" for key in getattr(command, "reads", ())]
    blocking = [
        (key, message)
        for key, message in problems
        if any(key == k or k.startswith(key + ".") or key.startswith(k + ".") for k in keys)
    ]
    if blocking:
        raise ReleaseError(
            f"{path.name} is invalid where this command reads it; fix it first:\n"
            + "\n".join(f"  - {key}: {message}" for key, message in blocking)
        )


def _flip_capacity_note(before: dict, after: dict, settings: Any) -> str:
    """A warning when a flip (switch, or a rollback that flips back) moves live traffic onto a
    colour that nothing has sized for it: without requestsPerSecondPerPod it idled at minReplicas."""
    if not (
        before.get("strategy") == after.get("strategy") == "blueGreen" and before.get("active") != after.get("active")
    ):
        return ""
    web = settings.workloads["web"]  # the settings guarantee the web workload's name
    if web.requests_per_second_per_pod:
        return ""
    return (
        f"; note: {after['active']} has been idling at minReplicas ({web.min_replicas}) and now "
        "takes all live traffic: under heavy load raise workloads.web.minReplicas in this "
        "change, or set workloads.web.requestsPerSecondPerPod so both colours stay sized"
    )
