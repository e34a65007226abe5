"""The release state tests are written against, kept apart from the live stack files.

`Pulumi.<stack>.yaml` is operator data: every release command edits its `plexichat:release`
block, several times a day. A test that needs a particular release (a canary at 10% with a header
route, a blue-green stack with blue live) pins it here and writes it into a copy of the stack
file; nothing asserts today's values of the real files.
"""

from __future__ import annotations

import io
import pathlib
import shutil
import subprocess

from ruamel.yaml.comments import CommentedMap

from plexictl.offline import ROOT
from plexictl.release import stack_file

STACKS = ("dev", "staging", "prod")

# In the stack files' own style (flow-style plan, quoted header value), so an edit's changed
# lines read as they would in a real file.
PINNED_RELEASES = {
    "dev": """\
strategy: rolling
version: v1.5.0
""",
    "staging": """\
strategy: blueGreen
active: blue
blue: v1.4.2
green: v1.5.0
""",
    "prod": """\
strategy: canary
stable: v1.4.2
canary:
  version: v1.5.0
  weight: 10
  steps: [10, 25, 50, 100]
  header:
    name: x-plexichat-canary
    value: "true"
""",
}


def pinned_release(stack: str) -> dict:
    """The pinned release block of `stack` as plain data."""
    return stack_file.plain(stack_file.round_trip_yaml().load(PINNED_RELEASES[stack]))


MIGRATIONS_KEY = "plexichat:migrations"
RELEASE_BOOKKEEPING = ("schemaVersion", "snapshotVersions")
"""The migration keys the release commands write with every release: release state too."""


def pin_schema(config: dict) -> None:
    """Leave the schema version implicit (the newest version of the pinned release), as if no
    release command had written it: a release day must not move what the tests see."""
    migrations = config.get(MIGRATIONS_KEY)
    if isinstance(migrations, dict):
        for key in RELEASE_BOOKKEEPING:
            migrations.pop(key, None)
        if not migrations:
            del config[MIGRATIONS_KEY]


def with_release(text: str, release_yaml: str) -> str:
    """A stack file's text with its release block replaced by `release_yaml` (every other line,
    comment and quote kept as it is)."""
    round_trip = stack_file.round_trip_yaml()
    document = round_trip.load(text)
    release: CommentedMap = document["config"][stack_file.RELEASE_KEY]
    stack_file.set_keys(release, dict(round_trip.load(release_yaml)))
    pin_schema(document["config"])
    buffer = io.StringIO()
    round_trip.dump(document, buffer)
    return buffer.getvalue()


def pin_release(path: pathlib.Path, stack: str, release_yaml: str | None = None) -> None:
    """Write the pinned (or the given) release block into the stack file at `path`."""
    path.write_text(with_release(path.read_text(), release_yaml or PINNED_RELEASES[stack]))


def project_copy(dest: pathlib.Path, *, git: bool = False) -> pathlib.Path:
    """A runnable copy of the project in `dest`, every stack at its pinned release: stack and
    project files copied, the program's code linked. With `git`, committed as one first commit."""
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, dest / name)
    (dest / "components").symlink_to(ROOT / "components")
    for stack in STACKS:
        shutil.copy(ROOT / f"Pulumi.{stack}.yaml", dest)
        pin_release(dest / f"Pulumi.{stack}.yaml", stack)
    if git:
        run_git(dest, "init", "--quiet")
        commit(dest, "pinned release state")
    return dest


def run_git(repo: pathlib.Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def commit(repo: pathlib.Path, message: str) -> None:
    run_git(repo, "add", "--all")
    run_git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
