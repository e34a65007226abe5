"""External tools some tests drive (checkov, actionlint): skip when one is not installed, unless
CI demands it. `.ci/run` sets the PLEXICHAT_REQUIRE_* variables, so in CI a missing tool is a
failure instead of a silent skip."""

from __future__ import annotations

import os

import pytest


def missing(tool: str, require_env: str, how_to_install: str) -> None:
    """Skip (or, when `require_env` is set to 1, fail) a test whose tool is not installed."""
    message = f"{tool} is not installed ({how_to_install})"
    if os.environ.get(require_env) == "1":
        pytest.fail(f"{message}, and {require_env}=1 requires it")
    pytest.skip(message)
