"""The stack file's git history as the release loop's memory: commits, locks and decisions.

The loop keeps no state of its own. Where a canary stands is in the stack file; when it started
and what was decided is in the commits; who is running is a lock file in the git directory.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from plexictl.release.changes import ReleaseError

DECISION_TRAILER = "Plexictl-Decision"
"""The trailer every automated release commit carries: what the loop decided."""


def git(path: pathlib.Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=path.parent, capture_output=True, text=True)
    if result.returncode != 0:
        raise ReleaseError(f"git {' '.join(args)} failed in {path.parent}: {result.stderr.strip()}")
    return result.stdout


def require_committed(path: pathlib.Path) -> None:
    """The loop's state is what git holds: refuse to start on uncommitted edits of the file."""
    git(path, "rev-parse", "--git-dir")
    if git(path, "status", "--porcelain", "--", path.name).strip():
        raise ReleaseError(
            f"{path.name} has uncommitted changes: commit or discard them first (the release loop "
            "continues from what git holds, and commits each step)"
        )


def commit(path: pathlib.Path, subject: str, body: str, decision: str) -> str:
    """Commit the stack file alone; the message carries the evidence and the decision."""
    message = f"{subject}\n\n{body}\n\n{DECISION_TRAILER}: {decision}\n"
    git(path, "add", "--", path.name)
    git(path, "commit", "--quiet", "-m", message, "--", path.name)
    return git(path, "rev-parse", "HEAD").strip()


def push(path: pathlib.Path) -> None:
    """Publish the loop's commit, so the next run (or another machine) continues from it."""
    git(path, "push", "--quiet", "origin", "HEAD")


@dataclass(frozen=True)
class Decision:
    commit: str
    unix_time: int
    subject: str
    decision: str


def decisions(path: pathlib.Path, limit: int = 50) -> list[Decision]:
    """The loop's decisions on this stack file, newest first."""
    log = git(path, "log", f"-n{limit}", "--format=%H%x1f%ct%x1f%s%x1f%B%x1e", "--", path.name)
    found = []
    for record in filter(str.strip, log.split("\x1e")):
        commit_id, unix_time, subject, body = record.strip().split("\x1f", 3)
        for line in body.splitlines():
            if line.startswith(f"{DECISION_TRAILER}: "):
                found.append(Decision(commit_id, int(unix_time), subject, line.split(": ", 1)[1]))
    return found


def commit_times(path: pathlib.Path) -> dict[str, int]:
    """Commit -> commit time (Unix seconds), for every commit of the stack file."""
    log = git(path, "log", "--format=%H %ct", "--", path.name)
    return {commit_id: int(when) for commit_id, when in (line.split() for line in log.splitlines())}


@contextlib.contextmanager
def lock(path: pathlib.Path, stack: str) -> Iterator[None]:
    """One release loop per stack: a lock file in the git directory naming the holder's pid. A
    lock left by a process that no longer runs is taken over."""
    git_dir = pathlib.Path(git(path, "rev-parse", "--absolute-git-dir").strip())
    lock_file = git_dir / f"plexictl-release-{stack}.lock"
    for _ in range(2):
        try:
            descriptor = os.open(lock_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            holder = _holder(lock_file)
            if holder is not None and _running(holder):
                raise ReleaseError(
                    f"another release loop (pid {holder}) runs on stack {stack}; wait for it, or stop it"
                ) from None
            lock_file.unlink(missing_ok=True)  # stale: its process is gone
    else:
        raise ReleaseError(f"cannot take the release lock {lock_file}")
    os.write(descriptor, str(os.getpid()).encode())
    os.close(descriptor)
    try:
        yield
    finally:
        lock_file.unlink(missing_ok=True)


def _holder(lock_file: pathlib.Path) -> int | None:
    try:
        return int(lock_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
