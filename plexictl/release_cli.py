"""The release commands of plexictl: `canary ...`, `switch`, `deploy`, `rollback` (edits of the
release block) and `release run|status|pause|resume` (the metric-gated loop)."""

from __future__ import annotations

import argparse
import functools
import pathlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from ruamel.yaml.comments import CommentedMap

from plexictl import offline
from plexictl.deploy_window import Verdict, emergency_option
from plexictl.exit_codes import EXIT_CANNOT_DEPLOY, EXIT_CODES, EXIT_DONE, EXIT_INVALID

if TYPE_CHECKING:  # the release package imports the program's SDKs: only when a command runs
    from plexictl.notification import Outcome
    from plexictl.release import Edit


def _release(args: argparse.Namespace) -> int:
    from plexictl import release as rc
    from plexictl.release.changes import set_paused

    path = offline.stack_file_path(args.stack, args.project_dir)
    window = _window_before_edit(args, path)
    if isinstance(window, int):
        return window
    history = rc.git_history(path)
    if getattr(args, "pin", False):
        try:
            args.version = _pinned(args.version, args.stack, args.project_dir)
        except (rc.ReleaseError, offline.StackFileError) as error:
            print(f"error: {error}\n{path.name} was not changed", file=sys.stderr)
            return EXIT_INVALID
    # Built lazily: each action's arguments exist only on its own subcommand.
    partial = functools.partial
    actions: dict[str, Callable[[], Callable[[CommentedMap], str]]] = {
        "canary-start": lambda: partial(
            rc.canary_start,
            version=args.version,
            weight=args.weight,
            steps=args.steps,
            header=args.header,
            no_header=args.no_header,
            history=history,
        ),
        "canary-set": lambda: partial(rc.canary_set, weight=args.weight),
        "canary-next": lambda: rc.canary_next,
        "canary-promote": lambda: rc.canary_promote,
        "canary-abort": lambda: rc.canary_abort,
        "switch": lambda: rc.switch,
        "deploy": lambda: partial(rc.deploy, version=args.version),
        "rollback": lambda: partial(rc.rollback, history=history),
        "pause": lambda: partial(set_paused, paused=True),
        "resume": lambda: partial(set_paused, paused=False),
    }
    try:
        edit = rc.edit_stack(args.stack, path, actions[args.action](), root=args.project_dir, write=not args.dry_run)
    except rc.NothingToDo as error:
        print(f"{args.stack}: {error}; {path.name} was not changed")
        return EXIT_DONE
    except rc.ReleaseError as error:
        print(f"error: {error}\n{path.name} was not changed", file=sys.stderr)
        return EXIT_INVALID
    show_edit(edit, dry_run=args.dry_run)
    if args.dry_run:
        return EXIT_DONE
    if window is not None:  # --apply
        return _deploy_and_notify(args, window)
    print(
        f"next: commit {path.name}, open a PR (CI shows this diff), merge, then "
        f"`pulumi up --stack {args.stack}` (or rerun the command with --apply)"
    )
    return EXIT_DONE


def _window_before_edit(args: argparse.Namespace, path: pathlib.Path) -> Verdict | int | None:
    """With --apply, the deployment window's verdict, taken before anything is written: an edit
    meant to be applied outside the window is refused whole (exit 3). An override with nothing to
    override is an invalid request (exit 1). Without --apply: None."""
    from plexictl.deploy_window import clock, stack_windows, verdict

    if args.emergency is not None and not args.apply:
        print(
            "error: --emergency overrides the window of --apply; without --apply nothing is deployed", file=sys.stderr
        )
        return EXIT_INVALID
    if not args.apply:
        return None
    result = verdict(args.stack, stack_windows(args.stack, args.project_dir), args.emergency, clock())
    if result.allowed:
        return result
    print(f"{result.message}\n{path.name} was not changed", file=sys.stderr)
    return EXIT_CANNOT_DEPLOY


_OUTCOMES: dict[str, Outcome] = {"rollback": "rolled-back", "canary-promote": "promoted", "canary-abort": "aborted"}
"""The notification of an applied release command; every other one is `deployed`."""


def _deploy_and_notify(args: argparse.Namespace, window: Verdict) -> int:
    """`pulumi up` under the window's verdict (open, or overridden), recorded; then the team's
    chat hears how it went."""
    from plexictl import release as rc
    from plexictl.deploy_window import record
    from plexictl.notify import notify

    record(args.stack, window, args.emergency)
    code = rc.apply(args.stack, args.project_dir)
    outcome: Outcome = _OUTCOMES.get(args.action, "deployed") if code == EXIT_DONE else "failed"
    detail = f"plexictl {args.action} --apply" + (f"; emergency override: {args.emergency}" if args.emergency else "")
    notify(args.stack, args.project_dir, outcome, detail=detail)  # never changes the exit code
    return code


def show_edit(edit: Edit, *, dry_run: bool) -> None:
    """What an edit did to the stack file: its message, the desired-state diff, and the same
    edit as `pulumi config` commands (shared with `plexictl dr failover`)."""
    from plexictl import diff_report

    print(f"{edit.stack}: {edit.message}")
    print(f"{'dry run, not written' if dry_run else 'updated'}: {edit.path}\n")
    if edit.diff is not None:  # edit_stack renders unless told not to
        print(diff_report.format_text([edit.diff], base_name=f"{edit.path.name} before", head_name="after"))
    commands = edit.pulumi_commands()
    if commands:
        print("the same edit with the Pulumi CLI:")
        print("\n".join(f"  {c}" for c in commands) + "\n")


def _pinned(version: str, stack: str, project_dir: pathlib.Path) -> str:
    """`version` with the digest its tag points to now in the stack's image repository."""
    from components.config import versions
    from components.config.stack import StackSettings
    from plexictl.release import ReleaseError
    from plexictl.release.registry import RegistryError, resolve_digest

    try:
        parsed = versions.parse(version)
    except versions.InvalidVersion as error:
        raise ReleaseError(f"version {error}") from None
    if parsed.digest is not None or parsed.tag is None:
        return version  # already pinned
    config, _ = offline.stack_config(stack, project_dir)
    repository = str(config.get("plexichat:imageRepository") or StackSettings.model_fields["image_repository"].default)
    try:
        digest = resolve_digest(repository, parsed.tag)
    except RegistryError as error:
        raise ReleaseError(f"cannot pin {version}: {error}; give it as {version}@sha256:<digest>") from None
    print(f"{stack}: {repository}:{parsed.tag} is {digest}")
    return f"{parsed.tag}@{digest}"


def _pin_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--pin",
        action="store_true",
        help="write VERSION as vX.Y.Z@sha256:<digest>, asking the image registry which image the tag names now",
    )


def _release_command(parent, name: str, action: str, help_: str) -> argparse.ArgumentParser:
    """A release command: an edit of one stack file, written, dry-run or applied."""
    command = parent.add_parser(
        name, help=help_, description=help_, epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    command.add_argument("--stack", required=True, help="the stack whose Pulumi.<stack>.yaml to edit")
    when = command.add_mutually_exclusive_group()
    when.add_argument(
        "--apply",
        action="store_true",
        help="then run `pulumi up` for the stack with the policy pack (Automation API; needs the Pulumi CLI)",
    )
    when.add_argument("--dry-run", action="store_true", help="show the edit and its diff, write nothing")
    emergency_option(command)
    command.set_defaults(run=_release, action=action)
    return command


def _header(text: str) -> dict[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name or not value:
        raise argparse.ArgumentTypeError(f"must be NAME=VALUE, e.g. x-plexichat-canary=true, got {text!r}")
    return {"name": name, "value": value}


def _percent(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer percent, got {text!r}") from None


def add_canary_commands(commands) -> None:
    canary = commands.add_parser("canary", help="canary releases: start, set, next, promote, abort")
    steps = canary.add_subparsers(dest="canary_command", required=True)
    p = _release_command(
        steps, "start", "canary-start", "run VERSION as the canary (from rolling: the running version becomes stable)"
    )
    p.add_argument("version")
    _pin_option(p)
    p.add_argument("--weight", type=_percent, help="percent of traffic (default: first step of the plan, else 0)")
    p.add_argument(
        "--steps",
        type=lambda s: [_percent(x) for x in s.split(",")],
        help="a step plan such as 10,25,50,100 (default: the last canary's plan, from the stack file's git history)",
    )
    headers = p.add_mutually_exclusive_group()
    headers.add_argument(
        "--header",
        type=_header,
        metavar="NAME=VALUE",
        help="requests with this header and value always reach the canary "
        "(default: the last canary's header route, from git history)",
    )
    headers.add_argument("--no-header", action="store_true", help="start without a header route")
    p = _release_command(steps, "set", "canary-set", "send WEIGHT percent of traffic to the canary")
    p.add_argument("weight", type=_percent)
    _release_command(steps, "next", "canary-next", "move the canary weight to the next step of its plan")
    _release_command(
        steps, "promote", "canary-promote", "the canary version becomes the stable version; the canary track is removed"
    )
    _release_command(steps, "abort", "canary-abort", "all traffic back to stable; the canary track is removed")


def add_release_commands(commands) -> None:
    """The release commands outside `canary`: blue-green, rolling and rollback."""
    _release_command(commands, "switch", "switch", "blue-green: flip the active colour")
    p = _release_command(
        commands, "deploy", "deploy", "blue-green: put VERSION on the inactive colour; rolling: set the version"
    )
    p.add_argument("version")
    _pin_option(p)
    _release_command(
        commands,
        "rollback",
        "rollback",
        "put back the release that was live before the current one: a canary is "
        "aborted; rolling and blue-green go back to the previously live version "
        "found in the stack file's git history, never to one rolled back from",
    )


def _duration(text: str) -> int:
    from components.config.base import duration_seconds

    if not text[:-1].isdigit() or text[-1:] not in ("s", "m", "h") or int(text[:-1]) < 1:
        raise argparse.ArgumentTypeError(f"must be a duration such as 30s, 5m or 2h, got {text!r}")
    return duration_seconds(text)


def _release_run(args: argparse.Namespace) -> int:
    from plexictl.notify import notify
    from plexictl.release import ReleaseError, apply
    from plexictl.release.loop import ReleaseRun

    # Not the release commands' window gate: the loop keeps the windows itself, and going back is never held.
    def deploy(stack: str, project_dir: pathlib.Path) -> bool:
        return apply(stack, project_dir) == EXIT_DONE

    def tell(outcome, detail: str) -> None:
        notify(args.stack, args.project_dir, outcome, detail=detail)

    run = ReleaseRun(
        args.stack,
        args.project_dir,
        prometheus_url=args.prometheus,
        interval_seconds=args.interval,
        applier=deploy if args.apply else None,
        push=args.push,
        emergency_reason=args.emergency,
        notifier=tell,
    )
    try:
        return run.run()
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID


def _release_status(args: argparse.Namespace) -> int:
    from plexictl.release.status import status

    print(status(args.stack, args.project_dir, args.prometheus))
    return EXIT_DONE


def add_release_loop_commands(commands) -> None:
    """`release run|status|pause|resume`: the metric-gated loop (docs/releasing.md)."""
    release = commands.add_parser("release", help="metric-gated releases: run, status, pause, resume")
    loop = release.add_subparsers(dest="release_command", required=True)
    p = loop.add_parser(
        "run",
        help="step, wait, judge the metrics, go on or roll back; each step a commit with its evidence",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--stack", required=True)
    p.add_argument("--prometheus", metavar="URL", help="default: plexichat:monitoring.prometheusUrl")
    p.add_argument("--interval", type=_duration, help="wait between looks (default: the gate's interval)")
    p.add_argument("--apply", action="store_true", help="deploy each step (pulumi up with the policy pack)")
    p.add_argument("--push", action="store_true", help="push each commit to the upstream branch before deploying it")
    emergency_option(p)
    p.set_defaults(run=_release_run)
    p = loop.add_parser("status", help="strategy, versions, weights, plan position, last decisions, live metrics")
    p.add_argument("--stack", required=True)
    p.add_argument("--prometheus", metavar="URL", help="default: plexichat:monitoring.prometheusUrl")
    p.set_defaults(run=_release_status)
    _release_command(loop, "pause", "pause", "stop the release loop before its next step (release.paused)")
    _release_command(loop, "resume", "resume", "let the release loop go on (removes release.paused)")
