"""Run a program under the mock runtime, in this process, and return what it registered.

`run_program` runs `root/__main__.py` for a stack exactly as the CLI would (`runpy`, so
`pulumi.export` lands on the stack), first rendering the stacks it reads through a
`pulumi.StackReference` (`stack_references`); `run` runs any function that declares resources
(component tests, benchmark floors). Each run has an event loop and worker threads of its own and ends them:
nothing is left running, so the process may fork afterwards (`plexictl.offline.parallel`).

A process caches the first `components` package it imports: rendering two revisions of the
program in one process would run one revision's code with the other's config. `parallel` renders
other revisions in forked children.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import pathlib
import runpy
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from plexictl.offline import memo, stack_references
from plexictl.offline.rendering import UNKNOWN, Rendering
from plexictl.offline.stack_files import ROOT, StackFileError, project_file, stack_config


def run_program(
    stack: str,
    *,
    preview: bool = False,
    root: pathlib.Path = ROOT,
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
    defer: frozenset[str] = frozenset(),
) -> Rendering:
    """Run `root/__main__.py` for `stack` exactly as the CLI would; return all it registered.

    `config` replaces the stack file (tests pass edited copies). A config error surfaces as the
    program's own `pulumi.RunError`. A stack in `defer` that the program reads and that is not
    rendered yet raises `MissingReference` instead of being rendered here: another run is
    rendering it (`parallel`), and this one runs again once its outputs are known.
    """
    if config is None:
        config, secret_keys = stack_config(stack, root)
    shared = memo.key(root, stack, preview, config, secret_keys)
    if (rendering := memo.lookup(shared)) is not None and stack_references.still_current(root, rendering):
        return rendering

    def program() -> None:
        sys.path.insert(0, str(root))
        try:
            runpy.run_path(str(root / "__main__.py"), run_name="__main__")
        finally:
            sys.path.remove(str(root))

    project = project_file(root)["name"]
    while True:
        references = stack_references.References(root, project, preview)
        try:
            rendering = run(
                program,
                stack,
                project=project,
                preview=preview,
                config=config,
                secret_keys=secret_keys,
                stack_outputs=references.outputs,
            )
            break
        except Exception:
            if references.error is not None:
                raise references.error from None
            if references.missing is None:
                raise
        # The run read a stack not rendered yet: render it (a run of its own), then run again.
        _forget_the_failed_run()
        if references.missing in defer:
            raise stack_references.MissingReference(references.missing)
        _render_referenced(references.missing, stack, root, preview)
    rendering.references = references.read
    memo.remember(shared, rendering)
    stack_references.remember(root, rendering, config, secret_keys)
    return rendering


def _forget_the_failed_run() -> None:
    """Collect what the abandoned run left, quietly: the outputs that waited on the reference
    hold coroutines its ended event loop never ran."""
    import pulumi

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"coroutine .* was never awaited", category=RuntimeWarning)
        pulumi.runtime.reset_options()  # the runtime's globals held the run's root resource
        gc.collect()


_referencing: list[str] = []
"""The stacks whose runs wait for a referenced stack's rendering, outermost first."""


def _render_referenced(target: str, referrer: str, root: pathlib.Path, preview: bool) -> None:
    """Render `target` from its stack file, for `referrer`'s StackReference; its error (an
    invalid stack file, a cycle of references) is `referrer`'s error, naming both."""
    import pulumi

    chain = [*_referencing, referrer]
    if target in chain:
        raise StackFileError(f"stack references form a cycle: {' -> '.join([*chain[chain.index(target) :], target])}")
    _referencing.append(referrer)
    try:
        run_program(target, preview=preview, root=root)
    except (pulumi.RunError, StackFileError) as error:
        raise StackFileError(
            f"stack {referrer} reads the outputs of stack {target} (a StackReference), which does not render: {error}"
        ) from None
    finally:
        _referencing.pop()


def run(
    program: Callable[[], None],
    stack: str,
    *,
    project: str = "plexichat",
    preview: bool = False,
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
    stack_outputs: Callable[[str], dict[str, Any]] | None = None,
) -> Rendering:
    """Run `program` (any function that declares resources) under the mock runtime.
    `stack_outputs` answers its `pulumi.StackReference`s (`stack_references.References`)."""
    import pulumi

    from plexictl.offline import recording
    from plexictl.offline.mocks import Mocks

    rendering = Rendering(stack=stack, preview=preview)
    mocks = Mocks(stack_outputs)
    execute = _recording_outputs(program, rendering)
    failed = False

    def report(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """The loop's report of an error nobody awaited, unless the run failed already: what its
        abandoned tasks then hit (a missing stack reference, a shut-down executor) is no news."""
        if not failed:
            loop.default_exception_handler(context)

    with _own_event_loop(report):  # before set_mocks: the root stack's futures belong to this loop
        pulumi.runtime.reset_options(project=project, stack=stack, preview=preview)
        pulumi.runtime.set_mocks(
            mocks,
            project=project,
            stack=stack,
            preview=preview,
            organization=stack_references.ORGANIZATION,
            logger=recording.warning_logger(stack, rendering),
            monitor=recording.RecordingMonitor(mocks, rendering),
        )
        pulumi.runtime.set_all_config(config or {}, secret_keys or [])
        try:
            execute()
        except BaseException:
            failed = True
            raise
    # Resources register as their inputs resolve, in an order that differs from one process to
    # the next; by URN, renders are byte-identical and diffs list risks in one order.
    rendering.resources.sort(key=lambda r: r.urn)
    return rendering


def _recording_outputs(program: Callable[[], None], rendering: Rendering) -> Callable[[], Any]:
    """`program` as a mock-runtime test that records the stack's outputs into `rendering`."""
    import pulumi

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

    return execute


@contextlib.contextmanager
def _own_event_loop(report: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]) -> Iterator[None]:
    """A fresh event loop for one run, ended with its worker threads (the runtime registers
    resources from the loop's thread pool) when the run ends, so none outlives the run. The
    caller's current loop, if any, is current again afterwards."""
    try:
        previous = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        previous = None
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(report)
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        asyncio.set_event_loop(previous)
