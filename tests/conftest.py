"""Shared fixtures: every stack file rendered once per mode under Pulumi's mock engine."""

from __future__ import annotations

import copy
import functools

import pytest
import yaml

from plexictl.engine import ROOT, Rendering, run_program, stack_config

STACKS = ("dev", "staging", "prod")


@functools.lru_cache(maxsize=None)
def rendered(stack: str, preview: bool = False) -> Rendering:
    return run_program(stack, preview=preview)


def stack_file(stack: str) -> dict:
    return yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())


def render_edited(stack: str, edit, preview: bool = False) -> Rendering:
    """Render `stack` after `edit(config_dict)` changed a copy of its stack file in memory."""
    data = copy.deepcopy(stack_file(stack))
    edit(data["config"])
    config, secret_keys = stack_config(stack, stack_file=data)
    return run_program(stack, preview=preview, config=config, secret_keys=secret_keys)


@pytest.fixture(params=[(s, p) for s in STACKS for p in (False, True)],
                ids=lambda sp: f"{sp[0]}-{'preview' if sp[1] else 'up'}")
def any_stack(request) -> Rendering:
    """Each stack file, in `up` and in `preview` mode (apply callbacks do not run in preview)."""
    return rendered(*request.param)
