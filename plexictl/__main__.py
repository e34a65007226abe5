"""plexictl: the operator's tool for PlexiChat stacks: offline render, desired-state diff, release edits."""

from __future__ import annotations

import argparse
import functools
import os
import pathlib
import signal
import sys
from collections.abc import Callable
from typing import NoReturn

import ruamel.yaml
from ruamel.yaml.comments import CommentedMap

from plexictl import offline, render

# One table for every command, present and future (docs: exit codes).
EXIT_DONE = 0  # done, or nothing to do
EXIT_INVALID = 1  # invalid request or config (usage errors too: argparse's 2 is taken)
EXIT_DATA_LOSS = 2  # a change would replace or delete stateful data (diff)
EXIT_CANNOT_DEPLOY = 3  # the edit is fine but cannot be deployed here and now
EXIT_ROLLED_BACK = 4  # rolled back or aborted by analysis
EXIT_CODES = """exit codes (every command):
  0  done, or nothing to do
  1  invalid request or config (nothing was changed)
  2  data-loss risk: a stateful resource would be replaced or deleted (diff)
  3  cannot deploy: the edit was written but not deployed (e.g. no Pulumi CLI)
  4  rolled back or aborted by analysis"""


def _render(args: argparse.Namespace) -> int:
    rendering = offline.run_program(args.stack, preview=args.preview, root=args.project_dir)
    out = pathlib.Path(args.out or f"out/{args.stack}")
    counts = render.write(rendering, out)
    print(render.summary(rendering))
    print(
        f"\nwrote {counts['kubernetes']} Kubernetes manifests to {out}/kubernetes, "
        f"{counts['cloud']} cloud resources to {out}/cloud.yaml"
    )
    for warning in rendering.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_DONE


def _config_reference(args: argparse.Namespace) -> int:
    from plexictl import config_reference

    table = config_reference.markdown()
    if not args.write:
        print(table)
        return EXIT_DONE
    readme = pathlib.Path(args.write)
    text = readme.read_text()
    start, end = text.index(config_reference.BEGIN), text.index(config_reference.END)
    readme.write_text(text[:start] + table + text[end + len(config_reference.END) :])
    print(f"updated the configuration reference in {readme}")
    return EXIT_DONE


def _diff(args: argparse.Namespace) -> int:
    from plexictl import diff, revision

    project = args.project_dir.resolve()
    base_name, head_name = f"base ({args.base})", "working tree"
    try:
        with revision.checkout(project, args.base) as base_root:
            known = sorted({*offline.stack_names(project), *offline.stack_names(base_root)})
            stacks = [args.stack] if args.stack else known
            if args.stack and args.stack not in known:
                raise revision.RevisionError(
                    f"no stack {args.stack!r}: no Pulumi.{args.stack}.yaml in the working tree or "
                    f"at {args.base}; stacks: {', '.join(known) or '(none)'}"
                )
            # Every stack of both revisions at once, in parallel (see plexictl.revision).
            renderings = revision.render({base_name: base_root, head_name: project}, stacks)
            sdk_note = revision.sdk_difference(base_root, project, args.base)
    except revision.RevisionError as error:
        print(f"error: cannot diff: {error}", file=sys.stderr)
        return EXIT_INVALID
    base, head = renderings[base_name], renderings[head_name]
    diffs = []
    for stack in stacks:
        result = diff.diff(base[stack], head[stack], stack)
        if base[stack] is None:
            result.note = f"no Pulumi.{stack}.yaml at {args.base}: everything is added"
        elif head[stack] is None:
            result.note = f"Pulumi.{stack}.yaml is deleted: everything is removed"
        diffs.append(result)
    report = diff.format_markdown if args.format == "markdown" else diff.format_text
    print(report(diffs, base_name=args.base, head_name=head_name, notes=[sdk_note] if sdk_note else []))
    risks = sum(len(d.risks) for d in diffs)
    if risks and not args.allow_replace:
        print(
            f"error: {risks} change(s) would replace or delete stateful resources "
            f"({diff.DATA_LOSS}); if that is intended, rerun with --allow-replace",
            file=sys.stderr,
        )
        return EXIT_DATA_LOSS
    return EXIT_DONE


def _release(args: argparse.Namespace) -> int:
    from plexictl import diff
    from plexictl import release as rc
    from plexictl.release.changes import set_paused

    path = offline.stack_file_path(args.stack, args.project_dir)
    history = rc.git_history(path)
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
    print(f"{args.stack}: {edit.message}")
    print(f"{'dry run, not written' if args.dry_run else 'updated'}: {path}\n")
    if edit.diff is not None:  # edit_stack renders unless told not to
        print(diff.format_text([edit.diff], base_name=f"{path.name} before", head_name="after"))
    commands = edit.pulumi_commands()
    if commands:
        print("the same edit with the Pulumi CLI:")
        print("\n".join(f"  {c}" for c in commands) + "\n")
    if args.dry_run:
        return EXIT_DONE
    if args.apply:
        return rc.apply(args.stack, args.project_dir)
    print(
        f"next: commit {path.name}, open a PR (CI shows this diff), merge, then "
        f"`pulumi up --stack {args.stack}` (or rerun the command with --apply)"
    )
    return EXIT_DONE


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits 1 (invalid request): 2 means a data-loss risk here."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_INVALID, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="plexictl", description=__doc__, epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--project-dir",
        type=pathlib.Path,
        default=offline.ROOT,
        help="the Pulumi project (default: this checkout)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_render_commands(commands)
    _add_diff_command(commands)
    _add_canary_commands(commands)
    _add_release_commands(commands)
    _add_release_loop_commands(commands)
    _add_preflight_command(commands)
    return parser


def _add_render_commands(commands) -> None:
    """`render` and `config-reference`: what the stack files and the models produce, offline."""
    p = commands.add_parser("render", help="render a stack's desired state to files, offline (no cloud, no Pulumi CLI)")
    p.add_argument("--stack", required=True, help="dev, staging or prod (Pulumi.<stack>.yaml)")
    p.add_argument("--out", help="output directory (default out/<stack>)")
    p.add_argument(
        "--preview",
        action="store_true",
        help="render as `pulumi preview` sees it: values computed by the cloud stay unknown",
    )
    p.set_defaults(run=_render)

    p = commands.add_parser("config-reference", help="print the stack config reference (Markdown) from the models")
    p.add_argument("--write", metavar="FILE", help="replace the reference block in this file (docs/configuration.md)")
    p.set_defaults(run=_config_reference)


def _add_diff_command(commands) -> None:
    p = commands.add_parser(
        "diff",
        help="desired-state diff between a git ref and the working tree, offline, "
        "with a guard against replacing or deleting stateful resources",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", help="the stack to compare (Pulumi.<stack>.yaml)")
    which.add_argument("--all-stacks", action="store_true", help="every stack of either revision")
    p.add_argument("--base", required=True, help="git ref to compare against, e.g. origin/main")
    p.add_argument(
        "--format",
        choices=("text", "markdown"),
        default="text",
        help="text for a terminal, markdown for a PR comment (default text)",
    )
    p.add_argument(
        "--allow-replace", action="store_true", help="exit 0 even if a stateful resource would be replaced or deleted"
    )
    p.set_defaults(run=_diff)


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


def _add_canary_commands(commands) -> None:
    canary = commands.add_parser("canary", help="canary releases: start, set, next, promote, abort")
    steps = canary.add_subparsers(dest="canary_command", required=True)
    p = _release_command(
        steps, "start", "canary-start", "run VERSION as the canary (from rolling: the running version becomes stable)"
    )
    p.add_argument("version")
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


def _add_release_commands(commands) -> None:
    """The release commands outside `canary`: blue-green, rolling and rollback."""
    _release_command(commands, "switch", "switch", "blue-green: flip the active colour")
    p = _release_command(
        commands, "deploy", "deploy", "blue-green: put VERSION on the inactive colour; rolling: set the version"
    )
    p.add_argument("version")
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
    from plexictl.release import ReleaseError, apply
    from plexictl.release.loop import ReleaseRun

    def deploy(stack: str, project_dir: pathlib.Path) -> bool:
        return apply(stack, project_dir) == EXIT_DONE

    run = ReleaseRun(
        args.stack,
        args.project_dir,
        prometheus_url=args.prometheus,
        interval_seconds=args.interval,
        applier=deploy if args.apply else None,
        push=args.push,
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


def _add_release_loop_commands(commands) -> None:
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
    p.set_defaults(run=_release_run)
    p = loop.add_parser("status", help="strategy, versions, weights, plan position, last decisions, live metrics")
    p.add_argument("--stack", required=True)
    p.add_argument("--prometheus", metavar="URL", help="default: plexichat:monitoring.prometheusUrl")
    p.set_defaults(run=_release_status)
    _release_command(loop, "pause", "pause", "stop the release loop before its next step (release.paused)")
    _release_command(loop, "resume", "resume", "let the release loop go on (removes release.paused)")


def _preflight(args: argparse.Namespace) -> int:
    from plexictl import preflight

    results = preflight.check_stack(args.stack, args.project_dir, args.prometheus)
    print(preflight.table(results))
    print(f"\n{preflight.summary(args.stack, results, args.strict)}")
    return EXIT_CANNOT_DEPLOY if preflight.stopping(results, args.strict) else EXIT_DONE


def _add_preflight_command(commands) -> None:
    """`preflight`: the runbook's pre-deployment checks against the live stack (docs/releasing.md)."""
    p = commands.add_parser(
        "preflight",
        help="pre-deployment checks against the live stack: backups, database, cache, cluster room, critical alerts",
        epilog="exit codes: 0 ready to deploy; 1 invalid request or config; "
        "3 cannot deploy now: a check failed (or, with --strict, was skipped)",
    )
    p.add_argument("--stack", required=True, help="the stack to check (Pulumi.<stack>.yaml)")
    p.add_argument("--prometheus", metavar="URL", help="default: plexichat:monitoring.prometheusUrl")
    p.add_argument(
        "--strict", action="store_true", help="a skipped check (no Prometheus URL) stops the deploy too (CI sets it)"
    )
    p.set_defaults(run=_preflight)


def main(argv: list[str] | None = None) -> int:
    # Piped into `head` or `less`: stop quietly when the reader goes away, like other CLIs.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except offline.StackFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    except ruamel.yaml.YAMLError as error:  # what the strict reader lets through, if anything
        print(f"error: a stack file is not valid YAML: {error}", file=sys.stderr)
        return EXIT_INVALID
    except Exception as error:
        import pulumi

        from components.config.parse import ConfigError

        if isinstance(error, (ConfigError, pulumi.RunError)):
            print(f"error: {error}", file=sys.stderr)
            return EXIT_INVALID
        raise


def entry_point() -> None:
    """The `plexictl` console script (and `python -m plexictl`)."""
    # A crash shuts down normally: every offline run has closed its event loop (plexictl.offline),
    # so nothing is finalized late and its traceback stays readable.
    exit_code = main()
    # Tearing down the provider SDKs' modules and objects takes about a second and achieves
    # nothing: every file was written and closed by now. Flush what we printed and leave.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)


if __name__ == "__main__":
    entry_point()
