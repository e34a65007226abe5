"""A day of releases breaks no test (GitHub issue 10).

Release commands edit the stack files' `plexichat:release` blocks all day long; tests that
asserted today's release broke every evening. Here a copy of this checkout goes through a
release day with the real CLI, committed step by step as operators do, and at the end of the
day the tests that read the stack files as they are (marker `stack_files`) run on the copy: they
must pass whatever the releases left in the files. (One run, not one per step: each run costs
about 20 s, and every step's result is validated by the release command itself.)
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import yaml

from plexictl.offline import ROOT
from plexictl.release import RELEASE_KEY
from tests.conftest import STACK_FILES_ENV
from tests.release_state import STACKS, commit, pinned_release, pinned_version
from tests.test_diff import checkout_repo

# From the pinned release (tests/release_state.py): prod's canary goes through its plan and is
# promoted and the next version starts as a canary, staging and dev ship that version. Then it
# misbehaves in prod: the canary is aborted and the promote before it rolled back too (the git
# history holds earlier releases, so rollback has work to do). Prod ends the day `rolling`, the
# shape that broke the most tests when they asserted the release of the morning. Prod is a
# production stack: it names the version it starts by digest. Its DR standby (prod-dr) follows
# prod's promotion.
RELEASE_DAY = [
    ("prod", "canary", "next"),
    ("prod", "canary", "set", "50"),
    ("prod", "canary", "promote"),
    ("prod-dr", "canary", "promote"),  # the DR standby follows what prod runs
    ("prod", "canary", "start", pinned_version("v1.6.0"), "--steps", "5,50,100"),
    ("staging", "deploy", "v1.6.0"),
    ("staging", "switch"),
    ("dev", "deploy", "v1.6.0"),
    ("prod", "canary", "abort"),
    ("prod", "rollback"),
]


def release(repo: pathlib.Path, stack: str, *command: str) -> None:
    """One release command, through the CLI of this checkout, committed like every release edit."""
    path = repo / f"Pulumi.{stack}.yaml"
    before = path.read_text()
    result = subprocess.run(
        [sys.executable, "-m", "plexictl", "--project-dir", str(repo), *command, "--stack", stack],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    assert path.read_text() != before, (command, result.stdout)  # "nothing to do" exits 0 too
    commit(repo, f"{stack}: {' '.join(command)}")


def release_blocks(repo: pathlib.Path) -> dict[str, dict]:
    return {s: yaml.safe_load((repo / f"Pulumi.{s}.yaml").read_text())["config"][RELEASE_KEY] for s in STACKS}


def assert_stack_file_tests_pass(repo: pathlib.Path) -> None:
    result = subprocess.run(
        # -v undoes the -q of addopts, so the report header names the stack files read.
        [
            sys.executable,
            "-m",
            "pytest",
            "tests",
            "-m",
            "stack_files and not external",
            "-v",
            "-x",
            "--ignore",
            __file__,
        ],  # never itself
        cwd=ROOT,
        env={**os.environ, STACK_FILES_ENV: str(repo)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert f"stack files: {repo.resolve()} " in result.stdout, report  # the copy, not this checkout
    assert result.returncode == 0, report


def test_the_stack_file_tests_pass_after_a_day_of_releases(tmp_path):
    repo = checkout_repo(tmp_path)
    for step in RELEASE_DAY:
        release(repo, *step)
    evening = release_blocks(repo)
    # Every stack left its pinned release: the run below sees states no test was written for.
    assert all(evening[s] != pinned_release(s) for s in STACKS), evening
    assert evening["prod"]["strategy"] == "rolling", evening["prod"]
    assert_stack_file_tests_pass(repo)
