"""External tools some tests drive (checkov, actionlint, servers): skip when one is not installed,
unless CI demands it. `.ci/run` sets the PLEXICHAT_REQUIRE_* variables, so in CI a missing tool is
a failure instead of a silent skip."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from typing import NoReturn

import pytest


def missing(tool: str, require_env: str, how_to_install: str) -> NoReturn:
    """Skip (or, when `require_env` is set to 1, fail) a test whose tool is not installed."""
    message = f"{tool} is not installed ({how_to_install})"
    if os.environ.get(require_env) == "1":
        pytest.fail(f"{message}, and {require_env}=1 requires it")
    pytest.skip(message)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for a server a test starts. The server binds it itself, so
    another process could take it in between: unlikely on 127.0.0.1, and the server's startup
    error names the address if it happens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def offline_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's AWS, reached with fake credentials only: nothing can leave for the real one."""
    from moto import mock_aws

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield
