"""`--apply`: `pulumi up` for the edited stack, with the mandatory policy pack."""

from __future__ import annotations

import pathlib
import shlex
import shutil
import sys

NOT_APPLIED = 3
"""Exit code of `--apply` without the Pulumi CLI: the edit is written, nothing was deployed."""


def pulumi_up_command(stack: str, project_dir: pathlib.Path) -> list[str]:
    """The CLI equivalent of `apply`: the same stack, project and mandatory policy pack."""
    return ["pulumi", "up", "--stack", stack, "--cwd", str(project_dir), "--policy-pack", str(project_dir / "policy")]


def apply(stack: str, project_dir: pathlib.Path) -> int:
    """`pulumi up` for the stack through the Automation API, if the Pulumi CLI is installed."""
    if shutil.which("pulumi") is None:
        print(
            f"--apply: the Pulumi CLI is not installed here, so nothing was deployed. "
            f"Run this where it is (after committing the edit):\n"
            f"  {shlex.join(pulumi_up_command(stack, project_dir))}"
        )
        return NOT_APPLIED
    from pulumi import automation

    # select, not create: applying to a stack that does not exist in the logged-in backend would
    # create every resource afresh next to the real ones.
    try:
        workspace_stack = automation.select_stack(stack_name=stack, work_dir=str(project_dir))
        # The same mandatory policy pack as every CI preview and deployment: the emergency
        # path is not a way around the rules.
        result = workspace_stack.up(on_output=print, show_secrets=False, policy_packs=[str(project_dir / "policy")])
    except automation.CommandError as error:
        print(f"error: pulumi up failed for stack {stack}: {error}", file=sys.stderr)
        return NOT_APPLIED
    print(f"pulumi up: {result.summary.result}; {result.summary.resource_changes}")
    return 0
