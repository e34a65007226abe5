"""Run a program under the mock runtime, in this process, and return what it registered.

`run_program` runs `root/__main__.py` for a stack exactly as the CLI would (`runpy`, so
`pulumi.export` lands on the stack); `run` runs any function that declares resources (component
tests, benchmark floors). Each run has an event loop and worker threads of its own and ends them:
nothing is left running, so the process may fork afterwards (`plexictl.offline.parallel`).

A process caches the first `components` package it imports: rendering two revisions of the
program in one process would run one revision's code with the other's config. `parallel` renders
other revisions in forked children.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import runpy
import sys
from collections.abc import Callable, Iterator
from typing import Any

from plexictl.offline import memo
from plexictl.offline.rendering import UNKNOWN, Rendering
from plexictl.offline.stack_files import ROOT, project_file, stack_config


def run_program(
    stack: str,
    *,
    preview: bool = False,
    root: pathlib.Path = ROOT,
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
) -> Rendering:
    """Run `root/__main__.py` for `stack` exactly as the CLI would; return all it registered.

    `config` replaces the stack file (tests pass edited copies). A config error surfaces as the
    program's own `pulumi.RunError`.
    """
    if config is None:
        config, secret_keys = stack_config(stack, root)
    shared = memo.key(root, stack, preview, config, secret_keys)
    if (rendering := memo.lookup(shared)) is not None:
        return rendering

    def program() -> None:
        sys.path.insert(0, str(root))
        try:
            runpy.run_path(str(root / "__main__.py"), run_name="__main__")
        finally:
            sys.path.remove(str(root))

    rendering = run(
        program, stack, project=project_file(root)["name"], preview=preview, config=config, secret_keys=secret_keys
    )
    memo.remember(shared, rendering)
    return rendering


def run(
    program: Callable[[], None],
    stack: str,
    *,
    project: str = "plexichat",
    preview: bool = False,
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
) -> Rendering:
    """Run `program` (any function that declares resources) under the mock runtime."""
    import pulumi

    from plexictl.offline import recording
    from plexictl.offline.mocks import Mocks

    rendering = Rendering(stack=stack, preview=preview)
    mocks = Mocks()

    def keep_output(key: str) -> Callable[[Any], None]:
        return lambda value: rendering.outputs.__setitem__(key, value)

    @pulumi.runtime.test
    def execute():
        program()
        exported: dict[str, Any] = getattr(pulumi.runtime.get_root_resource(), "outputs", {})
        # One by one, so a preview shows every output it knows; the rest stay marked unknown.
        for key in exported:
            rendering.outputs[key] = UNKNOWN
        return pulumi.Output.all(
            *(pulumi.Output.from_input(value).apply(keep_output(key)) for key, value in exported.items())
        )

    with _own_event_loop():  # before set_mocks: the root stack's futures belong to this loop
        pulumi.runtime.reset_options(project=project, stack=stack, preview=preview)
        pulumi.runtime.set_mocks(
            mocks,
            project=project,
            stack=stack,
            preview=preview,
            logger=recording.warning_logger(stack, rendering),
            monitor=recording.RecordingMonitor(mocks, rendering),
        )
        pulumi.runtime.set_all_config(config or {}, secret_keys or [])
        execute()
    # Resources register as their inputs resolve, in an order that differs from one process to
    # the next; by URN, renders are byte-identical and diffs list risks in one order.
    rendering.resources.sort(key=lambda r: r.urn)
    return rendering


@contextlib.contextmanager
def _own_event_loop() -> Iterator[None]:
    """A fresh event loop for one run, ended with its worker threads (the runtime registers
    resources from the loop's thread pool) when the run ends, so none outlives the run. The
    caller's current loop, if any, is current again afterwards."""
    try:
        previous = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        previous = None
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        asyncio.set_event_loop(previous)
