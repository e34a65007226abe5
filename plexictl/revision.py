"""Render the program of a git revision (or of a directory) for `plexictl diff`.

A revision whose code differs from this process's renders in its own Python process:
`run_program` imports `components` from the project root, and a process caches the first
`components` it imports, so rendering two revisions in one process would silently run one
revision's code with the other's config. The child writes its renderings as JSON to a file.
The working tree renders in this process when this process already runs its code
(`can_render_here`), which saves a Python start per diff.

`python -m plexictl.revision ROOT OUT_JSON STACK...` is that child (not a user command).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator

from plexictl import engine
from plexictl.engine import Rendering, Resource


class RevisionError(Exception):
    """A revision cannot be rendered: bad git ref, invalid config, or a broken program."""


def to_json(rendering: Rendering) -> dict:
    return dataclasses.asdict(rendering)


def from_json(data: dict) -> Rendering:
    resources = [Resource(**r) for r in data.pop("resources")]
    return Rendering(**data, resources=resources)


@contextlib.contextmanager
def checkout(project_dir: pathlib.Path, ref: str) -> Iterator[pathlib.Path]:
    """The project as it is at `ref`, in a temporary `git worktree` removed afterwards."""
    def git(*args: str, cwd: pathlib.Path = project_dir) -> str:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RevisionError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout.strip()

    top = pathlib.Path(git("rev-parse", "--show-toplevel"))
    try:
        commit = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except RevisionError:
        raise RevisionError(f"unknown git ref {ref!r} (fetch it first, e.g. `git fetch origin main`)") from None
    inside = project_dir.resolve().relative_to(top.resolve())
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="plexictl-base-"))
    tree = scratch / "tree"
    try:
        git("worktree", "add", "--detach", "--quiet", str(tree), commit, cwd=top)
        yield tree / inside
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=top,
                       capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=top, capture_output=True)


def start_render(root: pathlib.Path, stacks: list[str], out: pathlib.Path) -> subprocess.Popen:
    """Start rendering `stacks` of the program in `root` in a child process (see module doc)."""
    env = {**os.environ, "PYTHONPATH": str(engine.ROOT)}  # this checkout's plexictl, not root's
    return subprocess.Popen(
        [sys.executable, "-m", "plexictl.revision", str(root), str(out), *stacks],
        cwd=engine.ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def finish_render(process: subprocess.Popen, out: pathlib.Path, revision: str) -> dict[str, Rendering | None]:
    """Renderings by stack (None: no stack file in this revision), or RevisionError."""
    _, stderr = process.communicate()
    if process.returncode != 0 or not out.exists():
        raise RevisionError(f"{revision}: the renderer failed:\n{stderr.strip()}")
    return _outcomes(json.loads(out.read_text()), revision)


def can_render_here(root: pathlib.Path) -> bool:
    """Whether this process may render `root`: its cached `components` are root's own."""
    import components

    return pathlib.Path(components.__file__).resolve().parent == (root / "components").resolve()


def render_here(root: pathlib.Path, stacks: list[str], revision: str) -> dict[str, Rendering | None]:
    """As `finish_render`, in this process (saves a Python start when `can_render_here`)."""
    return _outcomes(_render_all(root, stacks), revision)


def _outcomes(results: dict[str, dict], revision: str) -> dict[str, Rendering | None]:
    renderings: dict[str, Rendering | None] = {}
    problems = []
    for stack, outcome in results.items():
        if "error" in outcome:
            problems.append(f"{revision}, stack {stack}: {outcome['error']}")
        elif isinstance(outcome["rendering"], Rendering) or outcome["rendering"] is None:
            renderings[stack] = outcome["rendering"]
        else:
            renderings[stack] = from_json(outcome["rendering"])
    if problems:
        raise RevisionError("\n".join(problems))
    return renderings


def _render_all(root: pathlib.Path, stacks: list[str], as_json: bool = False) -> dict[str, dict]:
    import pulumi

    results: dict[str, dict] = {}
    for stack in stacks:
        if not (root / f"Pulumi.{stack}.yaml").exists():
            results[stack] = {"rendering": None}
            continue
        try:
            rendering = engine.run_program(stack, root=root)
            results[stack] = {"rendering": to_json(rendering) if as_json else rendering}
        except (pulumi.RunError, engine.StackFileError) as error:
            results[stack] = {"error": str(error)}
        except Exception:  # noqa: BLE001 - a broken program at a ref is reported, not a crash
            last = traceback.format_exc().strip().splitlines()[-3:]
            results[stack] = {"error": "the program failed:\n  " + "\n  ".join(last)}
    return results


if __name__ == "__main__":
    root, out, *stacks = sys.argv[1:]
    pathlib.Path(out).write_text(json.dumps(_render_all(pathlib.Path(root), stacks, as_json=True)))
