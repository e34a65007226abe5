"""Many renderings at once: forked children, one per job, in parallel on every core.

Most of a render's time is importing the provider SDK modules the program uses. They are imported
once, in this process, and every child inherits them (`os.fork` after the imports). A revision's
own program is imported in the child that renders it, from that revision's root, since a process
caches the first `components` it imports; when every job runs the program this process already
runs (a release command, the tests), this process imports it once, for all. A revision with
several jobs imports its program in its child, which then forks one child per job. Renderings
come back pickled through a pipe, in the jobs' order whatever order the children finish in.

POSIX only (as `plexictl` is). Forking is safe here because nothing else runs in this process:
each run ends its event loop and worker threads (`runner`).
"""

from __future__ import annotations

import contextlib
import gc
import os
import pathlib
import pickle
import selectors
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from plexictl.offline import memo, program_imports, stack_references
from plexictl.offline.rendering import Rendering
from plexictl.offline.runner import run_program
from plexictl.offline.stack_files import ROOT, StackFileError, stack_config

_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class RenderJob:
    stack: str
    root: pathlib.Path = ROOT
    preview: bool = False
    config: dict[str, str] | None = None
    """The config map to run with (`stack_config`); None reads the stack file in `root`."""
    secret_keys: list[str] | None = None


@dataclass(frozen=True)
class Deferred:
    """A job that read a stack another job of its batch renders: it runs again after that one."""

    stack: str


@dataclass(frozen=True)
class Failure:
    """A job that rendered nothing."""

    message: str
    """The program's error message, or the traceback of a crash."""
    invalid_config: bool
    """The program refused its config (`pulumi.RunError`, `StackFileError`): the operator's
    mistake, reported as a message. Otherwise the program (or the renderer) crashed."""


def render_jobs(jobs: list[RenderJob]) -> list[Rendering | Failure]:
    """Render every job in a forked child; results in the jobs' order. A job whose rendering
    is shared already (`memo`) is not rendered again."""
    keys = [_memo_key(job) for job in jobs]
    results: list[Any] = [_shared(key, job) for key, job in zip(keys, jobs, strict=True)]
    missing = [index for index, result in enumerate(results) if result is None]
    for index, result in zip(missing, _render_in_children([jobs[index] for index in missing]), strict=True):
        results[index] = result
        if isinstance(result, Rendering):
            memo.remember(keys[index], result)
            _remember_outputs(jobs[index], result)
    return results


def _shared(key: memo.Key | None, job: RenderJob) -> Rendering | None:
    """The memo's rendering for the job, unless a stack it read has changed since."""
    rendering = memo.lookup(key)
    return rendering if rendering is not None and stack_references.still_current(job.root, rendering) else None


def _remember_outputs(job: RenderJob, rendering: Rendering) -> None:
    """A child's rendering, for the StackReferences of later runs in this process."""
    try:
        config, secret_keys = (job.config, job.secret_keys) if job.config else stack_config(job.stack, job.root)
    except StackFileError:
        return
    stack_references.remember(job.root, rendering, config, secret_keys)


def _memo_key(job: RenderJob) -> memo.Key | None:
    if not memo.active():
        return None
    try:
        config, secret_keys = (job.config, job.secret_keys) if job.config else stack_config(job.stack, job.root)
    except StackFileError:
        return None  # the job fails, in its child, and says why
    return memo.key(job.root, job.stack, job.preview, config, secret_keys)


def _render_in_children(jobs: list[RenderJob]) -> list[Rendering | Failure]:
    if not jobs:
        return []
    roots = list(dict.fromkeys(job.root for job in jobs))
    with _heap_shared_with_children():
        from plexictl.offline import recording  # noqa: F401 - the runtime's modules, imported once

        if len(roots) == 1 and program_imports.owns_program(roots[0]):
            program_imports.import_program(roots[0])  # imported once, here, for every child
            program_imports.import_dependencies(roots[0])  # what it imports only as it runs
            return _render_batch(jobs)
        for root in roots:
            program_imports.import_dependencies(root)
        groups = [[index for index, job in enumerate(jobs) if job.root == root] for root in roots]
        per_root = _in_children([_revision_task([jobs[index] for index in group]) for group in groups])
    results: list[Any] = [None] * len(jobs)
    for group, outcome in zip(groups, per_root, strict=True):
        # A list of results, or one Failure when the revision's child itself failed.
        for index, result in zip(group, outcome if isinstance(outcome, list) else [outcome] * len(group), strict=True):
            results[index] = result
    return results


def _job_task(job: RenderJob, defer: frozenset[str] = frozenset()) -> Callable[[], Rendering | Failure | Deferred]:
    return lambda: render_or_failure(job, defer)


def _revision_task(group: list[RenderJob]) -> Callable[[], list[Rendering | Failure]]:
    def task() -> list[Rendering | Failure]:
        program_imports.import_program(group[0].root)
        if len(group) == 1:
            return [_rendered(render_or_failure(group[0]))]
        return _render_batch(group)

    return task


def _render_batch(jobs: list[RenderJob]) -> list[Rendering | Failure]:
    """The jobs of one root, each in a child. A job that reads (StackReference) a stack another
    job of the batch renders from its stack file does not render that stack again in its own
    child: it stops at the reference, and runs again, in a second round, once this process has
    the other's outputs (its new child inherits them). A DR standby waits for its primary."""
    results: list[Any] = _in_children([_job_task(job, _renders_alongside(job, jobs)) for job in jobs])
    deferred = [index for index, result in enumerate(results) if isinstance(result, Deferred)]
    if not deferred:
        return results
    for job, result in zip(jobs, results, strict=True):
        if isinstance(result, Rendering):
            _remember_outputs(job, result)
    for index, result in zip(deferred, _in_children([_job_task(jobs[index]) for index in deferred]), strict=True):
        results[index] = _rendered(result)
    return results


def _renders_alongside(job: RenderJob, jobs: list[RenderJob]) -> frozenset[str]:
    """The stacks other jobs of the batch render as their stack files say, in `job`'s mode: what
    a StackReference of `job` reads."""
    return frozenset(
        other.stack for other in jobs if other is not job and other.config is None and other.preview == job.preview
    )


def _rendered(result: Rendering | Failure | Deferred) -> Rendering | Failure:
    if isinstance(result, Deferred):  # nothing else renders that stack: cannot happen without defer
        raise AssertionError(f"a job was deferred for stack {result.stack} with nothing to wait for")
    return result


def render_or_failure(job: RenderJob, defer: frozenset[str] = frozenset()) -> Rendering | Failure | Deferred:
    """The job rendered in this process; an error becomes a Failure. A reference to a stack in
    `defer` (rendered by another job) becomes Deferred."""
    import pulumi

    try:
        return run_program(
            job.stack, preview=job.preview, root=job.root, config=job.config, secret_keys=job.secret_keys, defer=defer
        )
    except stack_references.MissingReference as missing:
        return Deferred(missing.stack)
    except (pulumi.RunError, StackFileError) as error:
        return Failure(str(error), invalid_config=True)
    except Exception:  # noqa: BLE001 - a broken program is reported, not a crash of the caller
        return Failure(traceback.format_exc().strip(), invalid_config=False)


@contextlib.contextmanager
def _heap_shared_with_children() -> Iterator[None]:
    """The recipe of the `gc` docs for fork without exec: no collection while the parent imports
    (no freed holes in its pages), and what it built frozen before forking, so collections in the
    children never walk (and copy) the SDKs' ~400k long-lived objects."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


def _in_children(tasks: list[Callable[[], Any]]) -> list[Any]:
    """Each task's result, computed in a forked child; at most one child per core at a time."""
    results: list[Any] = [None] * len(tasks)
    waiting = list(enumerate(tasks))
    running: dict[int, tuple[int, int, list[bytes]]] = {}  # pipe -> (task index, pid, bytes read)
    selector = selectors.DefaultSelector()
    try:
        while waiting or running:
            while waiting and len(running) < _CORES:
                index, task = waiting.pop(0)
                pipe, pid = _fork(task)
                running[pipe] = (index, pid, [])
                selector.register(pipe, selectors.EVENT_READ)
            for key, _ in selector.select():
                chunk = os.read(key.fd, 1 << 20)
                if chunk:
                    running[key.fd][2].append(chunk)
                    continue
                selector.unregister(key.fd)
                os.close(key.fd)
                index, pid, chunks = running.pop(key.fd)
                results[index] = _result(b"".join(chunks), os.waitpid(pid, 0)[1])
    finally:
        _stop(running)
        selector.close()
    return results


def _fork(task: Callable[[], Any]) -> tuple[int, int]:
    """Start `task` in a child; return the pipe its pickled result arrives on, and its pid."""
    sys.stdout.flush()  # or the child would print what this process has buffered, again
    sys.stderr.flush()
    gc.freeze()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _run_child(task, write_end)
    os.close(write_end)
    return read_end, pid


def _run_child(task: Callable[[], Any], pipe: int) -> NoReturn:
    status = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the parent reports it, once
        gc.enable()
        payload = pickle.dumps(task(), protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(pipe, "wb") as out:
            out.write(payload)
        status = 0
    except BaseException:  # noqa: BLE001 - reported on stderr; the parent sees the exit status
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)  # no interpreter teardown, no atexit handlers of the parent


def _result(payload: bytes, status: int) -> Any:
    if os.waitstatus_to_exitcode(status) == 0 and payload:
        return pickle.loads(payload)
    return Failure(
        f"the renderer process failed (exit status {os.waitstatus_to_exitcode(status)}; its traceback is above)",
        invalid_config=False,
    )


def _stop(running: dict[int, tuple[int, int, list[bytes]]]) -> None:
    """End the children still running (the parent was interrupted)."""
    for pipe, (_, pid, _) in running.items():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        os.close(pipe)
