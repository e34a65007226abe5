"""Release commands: `canary start|set|next|promote|abort`, `switch`, `deploy`, `rollback`.

Each command is a small, reviewable edit of `plexichat:release` in `Pulumi.<stack>.yaml` — the
same edit an operator could make by hand or with `pulumi config set --path` — so the release
state lives in git, not in a controller's memory.

- `stack_file`: the round trip that edits the release block and leaves every other line as it was;
- `changes`: the release changes (`canary_*`, `switch`, `deploy`) and what each decides;
- `rollback`: back to the release live before the current one, by the stack file's git history;
- `edit`: a change run on a stack file: validated, rendered before and after, diffed, written;
- `pulumi_up`: `--apply`, the same stack deployed with the mandatory policy pack.
"""

from plexictl.release.changes import (
    History,
    ReleaseError,
    canary_abort,
    canary_next,
    canary_promote,
    canary_set,
    canary_start,
    deploy,
    switch,
)
from plexictl.release.edit import Edit, NothingToDo, edit_stack
from plexictl.release.pulumi_up import NOT_APPLIED, apply, pulumi_up_command
from plexictl.release.rollback import git_history, rollback
from plexictl.release.stack_file import RELEASE_KEY

__all__ = [
    "NOT_APPLIED",
    "RELEASE_KEY",
    "Edit",
    "History",
    "NothingToDo",
    "ReleaseError",
    "apply",
    "canary_abort",
    "canary_next",
    "canary_promote",
    "canary_set",
    "canary_start",
    "deploy",
    "edit_stack",
    "git_history",
    "pulumi_up_command",
    "rollback",
    "switch",
]
