"""The deployment-window gate (docs/releasing.md "Deployment windows"): `plexictl deploy-window
check` in CI before `pulumi up`, and the verdict every `--apply` of a release command takes
before its edit and records when it deploys (plexictl/release_cli.py).
Outside the stack's `plexichat:deployWindows` a deploy is refused (exit 3) unless an emergency
override gives a reason, which goes into the audit record."""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from plexictl.exit_codes import EXIT_CANNOT_DEPLOY, EXIT_DONE

if TYPE_CHECKING:  # pydantic and the program's packages load only when a command runs
    from components.config.deploy_windows import DeployWindow


def clock() -> datetime:
    """Now, timezone-aware (tests replace it)."""
    return datetime.now(UTC)


def emergency_reason(text: str) -> str:
    """The argparse type of `--emergency`: a reason that says something."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "an emergency override needs a reason: what is broken and who decided, e.g. "
            "--emergency 'INC-1234: checkout errors, approved by the on-call lead'"
        )
    return text.strip()


def when(instant: datetime, windows: list[DeployWindow]) -> str:
    """`Mon 2026-03-09 09:00 EDT (13:00 UTC)`: in the first window's zone, and in UTC."""
    local = instant.astimezone(windows[0].zone) if windows else instant
    return f"{local:%a %Y-%m-%d %H:%M %Z} ({instant.astimezone(UTC):%H:%M} UTC)"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    message: str
    overridden: bool = False
    """Outside the windows, let through by an emergency override."""


def verdict(stack: str, windows: list[DeployWindow], reason: str | None, now: datetime) -> Verdict:
    """Whether `stack` may be deployed at `now`, and the line that says why."""
    from components.release import deploy_windows
    from plexictl.notification import actor

    which = f"deployment window ({deploy_windows.describe(windows)})"
    if not windows:
        return Verdict(True, f"{stack}: no plexichat:deployWindows: always open" + _reason_note(reason))
    if deploy_windows.is_open(windows, now):
        closes = deploy_windows.window_end(windows, now)
        until = f" until {when(closes, windows)}" if closes else ""
        return Verdict(True, f"{stack}: inside the {which}{until}" + _reason_note(reason))
    opening = deploy_windows.next_opening(windows, now)
    opens = f"it next opens {when(opening, windows)}" if opening else "it does not open in the next two weeks"
    if reason is not None:
        return Verdict(
            True,
            f"{stack}: EMERGENCY OVERRIDE: deploying outside the {which}; {opens}; by {actor()}; reason: {reason}",
            overridden=True,
        )
    return Verdict(
        False,
        f"error: {stack}: outside the {which}; {opens}. Nothing was deployed. For an emergency fix, "
        f'rerun with --emergency "<reason>" (the deploy workflow: its emergency_reason input); '
        "the reason goes into the audit record",
    )


def _reason_note(reason: str | None) -> str:
    return f"; emergency reason recorded anyway: {reason}" if reason else ""


def stack_windows(stack: str, project_dir: pathlib.Path) -> list[DeployWindow]:
    from components.config.parse import parse_stack_config
    from plexictl import offline

    config, secret_keys = offline.stack_config(stack, project_dir)
    return parse_stack_config(config, stack, secret_keys).deploy_windows


def check(stack: str, project_dir: pathlib.Path, reason: str | None) -> Verdict:
    """The gate now, recorded."""
    result = verdict(stack, stack_windows(stack, project_dir), reason, clock())
    record(stack, result, reason)
    return result


def record(stack: str, result: Verdict, reason: str | None) -> None:
    """The verdict printed, and an emergency reason written to the job summary."""
    print(result.message, file=sys.stdout if result.allowed else sys.stderr)
    if reason is not None:
        _to_job_summary(stack, result.message)


def _to_job_summary(stack: str, line: str) -> None:
    """The audit record of a workflow run: its job summary (nothing outside GitHub Actions)."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(f"### Deployment window of `{stack}`\n\n{line}\n\n")


def _check(args: argparse.Namespace) -> int:
    return EXIT_DONE if check(args.stack, args.project_dir, args.emergency).allowed else EXIT_CANNOT_DEPLOY


def add_deploy_window_commands(commands) -> None:
    window = commands.add_parser("deploy-window", help="deployment windows: may this stack be deployed now?")
    which = window.add_subparsers(dest="deploy_window_command", required=True)
    p = which.add_parser(
        "check",
        help="exit 0 inside the stack's deployment window (or with an emergency reason), 3 outside it",
        epilog="exit codes: 0 inside the window, no windows, or overridden with --emergency; "
        "1 invalid request or config (a blank reason too); 3 outside the window: do not deploy",
    )
    p.add_argument("--stack", required=True, help="the stack (Pulumi.<stack>.yaml)")
    emergency_option(p)
    p.set_defaults(run=_check)


def emergency_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--emergency",
        metavar="REASON",
        type=emergency_reason,
        help="deploy even outside the stack's deployment window; REASON (required, e.g. the incident) "
        "goes into the audit record",
    )
