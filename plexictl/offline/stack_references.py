"""`pulumi.StackReference` offline: another stack's outputs, rendered from its own stack file.

A program that reads another stack (the DR standby reads its primary's `drSource`) names it as
the CLI accepts it: `stack`, `org/stack` or `org/project/stack` (with a self-managed backend the
organization is literally `organization`, which the offline engine reports as its organization).
The referenced stack must be one of this project's: its file is read from the same root as the
referencing stack's, so `plexictl diff` compares a base revision's standby with the base
revision's primary.

What the reference returns is what that stack's own offline run exports, in the referencing run's
mode: after `up`, every value; in a preview, the values the primary computes in the cloud stay
unknown, as a `pulumi preview` of a primary not yet deployed shows them.

How: a run's mock looks the outputs up here. The first time a stack is referenced they are not
known, so the mock records which stack is missing and fails the run; `runner.run_program` renders
that stack (a run of its own, in this process, after the failed one ended), remembers its outputs
and runs the referencing stack again. Outputs are kept for the rest of the process, by a digest of
everything they depend on (the program, the stack file's config, the mode): forked children
(`parallel`) inherit what their parent knew, and a run's `Rendering.references` carries the
digests it read, so the memo never serves a rendering made from an older primary.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from typing import Any

from plexictl.offline import program_imports
from plexictl.offline.rendering import UNKNOWN, Rendering
from plexictl.offline.stack_files import StackFileError, stack_config, stack_file_path

ORGANIZATION = "organization"
"""What `pulumi.get_organization()` answers offline: the organization of a self-managed backend,
where `organization/<project>/<stack>` is the fully qualified name of a stack."""
STACK_REFERENCE = "pulumi:pulumi:StackReference"
UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""How the wire format marks a value unknown in a preview (`pulumi.runtime.rpc.UNKNOWN`)."""

_outputs: dict[str, dict[str, Any]] = {}
"""Digest of a stack's program, config and mode -> the outputs its run exported."""


class MissingReference(Exception):
    """A run read a stack whose outputs are not known yet: render it, then run again."""

    def __init__(self, stack: str) -> None:
        super().__init__(f"the outputs of stack {stack!r} are not known yet")
        self.stack = stack


def target_stack(name: str, project: str) -> str:
    """The stack a reference names (`stack`, `org/stack`, `org/project/stack`), in `project`."""
    parts = name.split("/")
    if len(parts) > 3 or not all(parts):
        raise StackFileError(f"StackReference {name!r}: a stack is named `stack`, `org/stack` or `org/project/stack`")
    if len(parts) == 3 and parts[1] != project:
        raise StackFileError(
            f"StackReference {name!r} names project {parts[1]!r}: the offline engine reads stacks "
            f"of this project ({project}) only"
        )
    return parts[-1]


def digest(
    root: pathlib.Path,
    stack: str,
    preview: bool,
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
) -> str:
    """What a stack's outputs depend on: its program, its config (by default its stack file's),
    the mode."""
    if config is None:
        config, secret_keys = stack_config(stack, root)
    text = json.dumps(
        [program_imports.fingerprint(root), stack, preview, config, sorted(secret_keys or ())], sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()


def remember(root: pathlib.Path, rendering: Rendering, config: dict[str, str], secret_keys: list[str] | None) -> None:
    """Keep a rendering's outputs for the references of later runs: a reference reads them when
    `config` is its stack file's."""
    _outputs[digest(root, rendering.stack, rendering.preview, config, secret_keys)] = rendering.outputs


def still_current(root: pathlib.Path, rendering: Rendering) -> bool:
    """Whether every stack `rendering` read renders today as it did then."""
    try:
        return all(digest(root, stack, rendering.preview) == read for stack, read in rendering.references.items())
    except StackFileError:
        return False


class References:
    """The stacks one run may read, in `root`: the mock's `StackReference` lookup."""

    def __init__(self, root: pathlib.Path, project: str, preview: bool) -> None:
        self.root, self.project, self.preview = root, project, preview
        self.missing: str | None = None
        self.error: StackFileError | None = None
        """A reference that cannot be resolved: the run fails with this, whatever else it says."""
        self.read: dict[str, str] = {}
        """Stack -> the digest of the outputs the run read (`Rendering.references`)."""

    def outputs(self, name: str) -> dict[str, Any]:
        """The outputs of the stack `name` names, as the wire format carries them: a preview's
        unknowns as the unknown sentinel. Raises MissingReference the first time."""
        try:
            stack = target_stack(name, self.project)
            stack_file_path(stack, self.root)  # no such stack: the error names those there are
            key = digest(self.root, stack, self.preview)
        except StackFileError as error:
            self.error = error
            raise
        if key not in _outputs:
            self.missing = stack
            raise MissingReference(stack)
        self.read[stack] = key
        return _wire(_outputs[key])


def _wire(value: Any) -> Any:
    if value == UNKNOWN:
        return UNKNOWN_SENTINEL
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value
