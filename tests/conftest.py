"""Shared fixtures: every stack file rendered once per mode under Pulumi's mock engine.

A stack file (`Pulumi.<stack>.yaml`) is operator data: release commands edit its
`plexichat:release` block several times a day. So tests see a stack file in one of two ways:

- pinned (`stack_file`, `rendered`, `render_edited`): the file with its release block replaced by
  the pinned one of tests/release_state.py (and the schema version the release commands write
  left implicit). Tests that assert what a release does (the canary's
  weight, the live colour, the versions) use this view, so they hold whatever is deployed today.
- current (`current_stack_file`, `current_config`, `rendered_current`, through the `any_stack`
  and `current_stack` fixtures): the file as it is. Tests on this view assert properties only (it
  parses, renders, validates, the invariants and the policy hold); both fixtures mark them
  `stack_files`, and tests/test_release_day.py reruns them on a copy after a day of releases.

Both read the files from PLEXICHAT_STACK_FILES_DIR (default: this checkout), which is how
tests/test_release_day.py points them at its copy. The program itself always comes from here.

Renderings are shared for the whole session: a run with the same program, stack, mode and config
as an earlier one (a fixture's, a test's, or a release command's "before" that was the previous
edit's "after") returns the earlier rendering (`plexictl.offline.memo`). Treat them as read-only.
"""

from __future__ import annotations

import copy
import functools
import os
import pathlib

import pytest
import yaml

from plexictl.offline import ROOT, Rendering, run_program, share_renderings, stack_config
from plexictl.release import RELEASE_KEY
from tests.prometheus_server import prometheus  # noqa: F401
from tests.release_state import STACKS, pin_schema, pinned_release

share_renderings()

STACK_FILES_ENV = "PLEXICHAT_STACK_FILES_DIR"
STACK_FILES_DIR = pathlib.Path(os.environ.get(STACK_FILES_ENV) or ROOT).resolve()


def pytest_report_header() -> str:
    return f"stack files: {STACK_FILES_DIR} (set {STACK_FILES_ENV} to read them elsewhere)"


# --- the stack files as they are ----------------------------------------------------------------


def current_stack_file(stack: str) -> dict:
    return yaml.safe_load((STACK_FILES_DIR / f"Pulumi.{stack}.yaml").read_text())


def stack_region(stack: str) -> str:
    """Where the stack's AWS resources are (`plexichat:aws.region`)."""
    return current_stack_file(stack)["config"]["plexichat:aws"]["region"]


def is_dr_standby(stack: str) -> bool:
    """Whether the stack is a DR standby (`plexichat:dr.role: standby`, docs/dr.md): its database is
    a read-only replica of its primary's, and its primary owns its backups and role secrets."""
    return (current_stack_file(stack)["config"].get("plexichat:dr") or {}).get("role") == "standby"


def primary_of(stack: str) -> str | None:
    """A DR standby's (or promoted standby's) primary stack (`plexichat:dr.primaryStack`)."""
    return (current_stack_file(stack)["config"].get("plexichat:dr") or {}).get("primaryStack")


def current_config(stack: str) -> tuple[dict[str, str], list[str]]:
    """The config map and secret keys the Pulumi CLI would pass for the file as it is."""
    return stack_config(stack, stack_file=current_stack_file(stack))


@functools.cache
def rendered_current(stack: str, preview: bool = False) -> Rendering:
    data = current_stack_file(stack)
    if data == stack_file(stack):
        return rendered(stack, preview)  # the file holds the pinned release: one render serves both
    return _render(stack, data, preview)


# --- the stack files at their pinned release ------------------------------------------------------


def stack_file(stack: str) -> dict:
    """The stack file with its release block replaced by the pinned one."""
    data = current_stack_file(stack)
    data["config"][RELEASE_KEY] = pinned_release(stack)
    pin_schema(data["config"])
    return data


@functools.cache
def rendered(stack: str, preview: bool = False) -> Rendering:
    return _render(stack, stack_file(stack), preview)


def render_edited(stack: str, edit, preview: bool = False) -> Rendering:
    """Render `stack` after `edit(config_dict)` changed a copy of its pinned stack file in memory."""
    data = copy.deepcopy(stack_file(stack))
    edit(data["config"])
    return _render(stack, data, preview)


def _render(stack: str, data: dict, preview: bool) -> Rendering:
    config, secret_keys = stack_config(stack, stack_file=data)
    return run_program(stack, preview=preview, config=config, secret_keys=secret_keys)


# --- fixtures over the current files ----------------------------------------------------------------

# The marker rides on the parameters, so every test that takes one of these fixtures is selected
# by `-m stack_files` without having to remember the mark.
STACK_FILES = pytest.mark.stack_files


_PINNED_VIEW = ("stack_file", "rendered", "render_edited")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The pinned view reads the stack files too (all but the release state): a module that
    renders through it is stack-file-dependent, and a release day must leave it green."""
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and any(getattr(module, name, None) is globals()[name] for name in _PINNED_VIEW):
            item.add_marker(STACK_FILES)


@pytest.fixture(
    params=[pytest.param((s, p), marks=STACK_FILES) for s in STACKS for p in (False, True)],
    ids=lambda sp: f"{sp[0]}-{'preview' if sp[1] else 'up'}",
)
def any_stack(request) -> Rendering:
    """Each stack file as it is, in `up` and in `preview` mode (apply callbacks do not run in
    preview). Assert properties only: the release in it changes daily."""
    return rendered_current(*request.param)


@pytest.fixture(params=[pytest.param(s, marks=STACK_FILES) for s in STACKS])
def current_stack(request) -> str:
    """Each stack's name, for a test that reads its file as it is (`current_config`,
    `rendered_current`). Assert properties only: the release in it changes daily."""
    return request.param
