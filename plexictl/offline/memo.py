"""Renderings shared between identical runs in one process: opt-in, for the test session.

Many tests render the same stack with the same config (a release command's "after" is the next
command's "before"; a pinned stack file is rendered by several modules). With `share_renderings()`
a run whose program, stack, mode and config equal an earlier run's returns the earlier rendering,
the same object: treat it as read-only. Only renderings are shared: an error is raised again each
time, so a test of an error still sees the run fail.
"""

from __future__ import annotations

import json
import pathlib

from plexictl.offline import program_imports
from plexictl.offline.rendering import Rendering

Key = tuple[object, ...]
_renderings: dict[Key, Rendering] | None = None


def share_renderings() -> None:
    global _renderings
    if _renderings is None:
        _renderings = {}


def active() -> bool:
    return _renderings is not None


def key(
    root: pathlib.Path, stack: str, preview: bool, config: dict[str, str], secret_keys: list[str] | None
) -> Key | None:
    """What a run's result depends on: the program's files and the inputs; None when nothing is
    shared."""
    if _renderings is None:
        return None
    program = program_imports.fingerprint(root)
    return (program, stack, preview, json.dumps(config, sort_keys=True), tuple(sorted(secret_keys or ())))


def lookup(shared: Key | None) -> Rendering | None:
    return None if shared is None or _renderings is None else _renderings.get(shared)


def remember(shared: Key | None, rendering: Rendering) -> None:
    if shared is not None and _renderings is not None:
        _renderings[shared] = rendering
