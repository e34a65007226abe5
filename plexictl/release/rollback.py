"""`rollback`: puts back the release that was live before the current one, found in the stack
file's git history."""

from __future__ import annotations

import pathlib
import subprocess

from ruamel.yaml.comments import CommentedMap

from components.config import versions
from plexictl import offline
from plexictl.release.changes import History, ReleaseError, canary_abort, other_colour, reads, settled_version
from plexictl.release.stack_file import RELEASE_KEY, plain


@reads("strategy", "version", "stable", "canary.version", "canary.weight", "active", "blue", "green")
def rollback(release: CommentedMap, history: History) -> str:
    """Put back the release that was live before the current one (docs: the rollback rule).

    - A canary (any weight): abort, all traffic back to stable; git history is not needed.
    - Rolling: `version` becomes the previously live version.
    - Blue-green: the idle colour gets the previously live version (if it does not hold it
      already) and becomes active; the current version stays on the now idle colour.

    "Previously live" comes from the stack file's git history, read as a stack of releases:
    each version that goes live is pushed, except that going back to an *older* version already
    on the stack is a rollback to it, which drops everything above it. The target is the entry
    below the current one. So a second rollback goes further back instead of returning to the
    release just abandoned, while a fix released after a rollback is rolled back normally.
    """
    strategy = release["strategy"]
    if strategy == "canary":
        return "rollback: " + canary_abort(release)
    current = settled_version(plain(release))
    found = _previously_live(current, history())
    if found is None:
        raise ReleaseError(
            f"nothing to roll back to: {current} is the only version live in the git history of "
            "the stack file (commit each release edit so rollback can find the one before); "
            f"to go back to a version you know, use `deploy VERSION`"
            + (" and `switch`" if strategy == "blueGreen" else "")
        )
    commit, target = found
    since = f"{target} went live at commit {commit[:10]}"
    if strategy == "rolling":
        release["version"] = target
        return f"rollback: {target} goes live again in place of {current} (rolling update; {since})"
    idle = other_colour(release["active"])
    moved = ""
    if release[idle] != target:
        moved = f"{idle} gets {target} (was {release[idle]}), then "
        release[idle] = target
    release["active"] = idle
    return (
        f"rollback: {moved}{idle} becomes active: live traffic {current} -> {target}; "
        f"{current} stays on the idle colour {other_colour(idle)} ({since})"
    )


def _previously_live(current: str | None, history: list[tuple[str, dict]]) -> tuple[str, str] | None:
    """(commit, version) of the version live before `current`, by the rule in `rollback`."""
    live: list[tuple[str, str]] = []  # (commit it went live at, version), oldest first
    for commit, block in reversed(history):
        version = settled_version(plain(block))
        if version is None or (live and live[-1][1] == version):
            continue
        earlier = [i for i, (_, v) in enumerate(live) if v == version]
        if earlier and _older(version, live[-1][1]):
            del live[earlier[-1] + 1 :]  # back to it: what went live after it was rolled back
        else:
            live.append((commit, version))
    if current is not None and (not live or live[-1][1] != current):
        live.append(("(working tree)", current))  # an uncommitted edit
    if len(live) < 2:
        return None
    return live[-2]


def _older(version: str, than: str) -> bool:
    """Whether `version` is an earlier release than `than`; a bare digest has no order, so going
    back to one already live counts as going back."""
    try:
        return versions.newer(than, version)
    except versions.UnorderedVersion:
        return True


def git_history(path: pathlib.Path) -> History:
    """The release block of `path` at each commit that touched it, newest first."""

    def releases() -> list[tuple[str, dict]]:
        def git(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(["git", *args], cwd=path.parent, capture_output=True, text=True)

        log = git("log", "--format=%H", "--", path.name)
        if log.returncode != 0:
            raise ReleaseError(f"cannot read the git history of {path.name}: {log.stderr.strip()}")
        found = []
        for commit in log.stdout.split():
            shown = git("show", f"{commit}:./{path.name}")
            if shown.returncode != 0:
                continue
            try:
                config = offline.read_stack_file(path, shown.stdout).get("config") or {}
            except offline.StackFileError:
                continue  # a broken revision was never live: nothing to go back to
            if isinstance(config.get(RELEASE_KEY), dict):
                found.append((commit, config[RELEASE_KEY]))
        return found

    return releases
