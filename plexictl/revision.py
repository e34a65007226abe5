"""Render the program of git revisions (or of directories) for `plexictl diff`.

Every stack of every revision renders in a forked child (`plexictl.offline.parallel`), all in
parallel: the provider SDKs are imported once, here, and each child imports its revision's
program from that revision's root (a process caches the first `components` it imports, so two
revisions cannot render in one process). A stack file that a pull request leaves alone, under a
program it leaves alone, renders once for both sides.

The SDKs are this checkout's. A base revision that pins other versions in requirements.txt (an
SDK bump) is rendered with them all the same, and `sdk_difference` says so in the diff.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import pathlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

from plexictl.offline import Failure, Rendering, RenderJob, program_imports, render_jobs, stack_references


class RevisionError(Exception):
    """A revision cannot be rendered: bad git ref, invalid config, or a broken program."""


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
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=top, capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=top, capture_output=True)


def render(revisions: dict[str, pathlib.Path], stacks: list[str]) -> dict[str, dict[str, Rendering | None]]:
    """Each revision's (name -> project root) renderings by stack, None where the revision has no
    file for the stack; or RevisionError naming every revision and stack that failed. A stack
    whose file and program are the same in two revisions renders once, for both (unless a stack
    it reads through a StackReference differs between them)."""
    programs = {name: program_imports.fingerprint(root) for name, root in revisions.items()}
    wanted: dict[tuple[str, str], tuple[str, bytes]] = {}  # (revision, stack) -> what it renders
    jobs: dict[tuple[str, bytes], RenderJob] = {}
    for name, root in revisions.items():
        for stack in stacks:
            if (root / f"Pulumi.{stack}.yaml").exists():
                wanted[name, stack] = (programs[name], (root / f"Pulumi.{stack}.yaml").read_bytes())
                jobs.setdefault(wanted[name, stack], RenderJob(stack, root))
    results = dict(zip(jobs, render_jobs(list(jobs.values())), strict=True))
    per_revision = {key: results[what] for key, what in wanted.items()}
    # A stack that reads another through a StackReference (a DR standby, its primary) renders
    # once for both revisions only if the stacks it read render alike in both: else again here.
    stale = {
        key: RenderJob(key[1], revisions[key[0]])
        for key, result in per_revision.items()
        if isinstance(result, Rendering) and not stack_references.still_current(revisions[key[0]], result)
    }
    per_revision.update(zip(stale, render_jobs(list(stale.values())), strict=True))
    renderings: dict[str, dict[str, Rendering | None]] = {name: dict.fromkeys(stacks) for name in revisions}
    problems = []
    for (name, stack), result in per_revision.items():
        if isinstance(result, Failure):
            problems.append(f"{name}, stack {stack}: {_describe(result)}")
        else:
            renderings[name][stack] = result
    if problems:
        raise RevisionError("\n".join(problems))
    return renderings


def _describe(failure: Failure) -> str:
    if failure.invalid_config:
        return failure.message
    return "the program failed:\n  " + "\n  ".join(failure.message.splitlines()[-3:])


def sdk_difference(base_root: pathlib.Path, head_root: pathlib.Path, base_name: str) -> str | None:
    """What the diff must say when the base pins other versions of what the program imports (the
    SDKs, in requirements.txt) than the working tree: both sides rendered with those installed here."""
    base, head = _pins(base_root), _pins(head_root)
    imported = _program_distributions(base_root, head_root)
    changed = sorted(name for name in (base.keys() | head.keys()) & imported if base.get(name) != head.get(name))
    if not changed:
        return None
    pins = ", ".join(f"{name} {base.get(name, '(none)')} -> {head.get(name, '(none)')}" for name in changed)
    return (
        f"requirements.txt pins other versions at {base_name} ({pins}); both sides were rendered with "
        f"the ones installed here ({_installed(changed)}), so what the upgrade itself changes (provider "
        "defaults, schemas) is not in this diff"
    )


def _program_distributions(*roots: pathlib.Path) -> set[str]:
    """The installed distributions the programs at `roots` import (`pulumi-aws` for `pulumi_aws`)."""
    modules = {path[0] for root in roots for path in program_imports.scan(root).attribute_paths}
    by_module = importlib.metadata.packages_distributions()
    return {_normalized(name) for module in modules for name in by_module.get(module, [])}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(root: pathlib.Path) -> dict[str, str]:
    """`name==version` lines of root's requirements.txt, by normalized name."""
    path = root / "requirements.txt"
    text = path.read_text() if path.is_file() else ""
    pins = re.findall(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)", text, re.MULTILINE)
    return {_normalized(name): version for name, version in pins}


def _installed(names: list[str]) -> str:
    versions = []
    for name in names:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} not installed")
    return ", ".join(versions)
