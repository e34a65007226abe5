"""The release state tests are written against, kept apart from the live stack files.

`Pulumi.<stack>.yaml` is operator data: every release command edits its `plexichat:release`
block, several times a day. A test that needs a particular release (a canary at 10% with a header
route, a blue-green stack with blue live) pins it here and writes it into a copy of the stack
file; nothing asserts today's values of the real files.
"""

from __future__ import annotations

import copy
import hashlib
import io
import pathlib
import shutil
import subprocess

from ruamel.yaml.comments import CommentedMap

from components.config import versions
from plexictl.offline import ROOT
from plexictl.release import stack_file

STACKS = ("dev", "staging", "prod", "prod-dr")
IMAGE_REPOSITORY = "ghcr.io/plexichat/plexichat"
PRODUCTION_STACKS = ("prod", "prod-dr")
"""Stacks whose environment is production: every release version in them names its digest."""


def pinned_version(tag: str) -> str:
    """`tag` pinned by a digest, `v1.5.0@sha256:<64 hex>`: the same deterministic (fake) digest
    for the same tag, the SHA-256 of the image reference, as the pinned prod release uses."""
    digest = hashlib.sha256(f"{IMAGE_REPOSITORY}:{tag}".encode()).hexdigest()
    return f"{tag}@sha256:{digest}"


def version_for(stack: str, tag: str) -> str:
    """The version a test writes into `stack` for the release `tag`: pinned by digest in a
    production stack (which refuses a bare tag), the bare tag elsewhere."""
    return pinned_version(tag) if stack in PRODUCTION_STACKS else tag


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
stable: v1.4.2@sha256:003efcb7e825ce0dbabe19b909fe5eeaf4b9d8edd5bf3d2f79ea9213ae49bd8e
canary:
  version: v1.5.0@sha256:ac7463f47b617fc3b51e2e259c26f2fbb994c40f1cad46db49898644e92b2a77
  weight: 10
  steps: [10, 25, 50, 100]
  header:
    name: x-plexichat-canary
    value: "true"
""",
}
# The DR standby runs what its primary runs (docs/dr.md "The standby stack").
PINNED_RELEASES["prod-dr"] = PINNED_RELEASES["prod"]


def pin_versions(release: dict) -> dict:
    """`release` (a plain release block) with every bare tag in it pinned by `pinned_version`:
    what a stack must hold to say `environment: production`. Edits the block and returns it."""
    tracks = [release, release.get("canary")]
    for track, key in ((t, k) for t in tracks if isinstance(t, dict) for k in ("version", "stable", "blue", "green")):
        version = track.get(key)
        if isinstance(version, str) and versions.parse(version).digest is None:
            track[key] = pinned_version(version)
    return release


def release_for(stack: str, release: dict) -> dict:
    """A copy of the plain release block `release` as a test writes it into `stack`: its bare
    tags pinned by digest in a production stack, left as they are elsewhere."""
    block = copy.deepcopy(release)
    return pin_versions(block) if stack in PRODUCTION_STACKS else block


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


DEPLOY_WINDOWS_KEY = "plexichat:deployWindows"
"""Operator data too, and what a deploy may do depends on the clock: the pinned state has none
(always open); a test of the windows writes its own."""


def with_release(text: str, release_yaml: str) -> str:
    """A stack file's text with its release block replaced by `release_yaml` (every other line,
    comment and quote kept as it is), and no deployment windows."""
    round_trip = stack_file.round_trip_yaml()
    document = round_trip.load(text)
    release: CommentedMap = document["config"][stack_file.RELEASE_KEY]
    stack_file.set_keys(release, dict(round_trip.load(release_yaml)))
    pin_schema(document["config"])
    document["config"].pop(DEPLOY_WINDOWS_KEY, None)
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
