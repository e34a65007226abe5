"""plexictl: the operator's tool for PlexiChat stacks: offline render, desired-state diff, release edits."""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import sys
from typing import NoReturn

import ruamel.yaml

from plexictl import offline, render
from plexictl.audit_cli import add_access_review_command, add_security_audit_command
from plexictl.break_glass import add_break_glass_command
from plexictl.deploy_window import add_deploy_window_commands
from plexictl.dr_cli import add_dr_commands
from plexictl.exit_codes import EXIT_CANNOT_DEPLOY, EXIT_CODES, EXIT_DATA_LOSS, EXIT_DONE, EXIT_INVALID
from plexictl.notify import add_notify_command
from plexictl.release_cli import add_canary_commands, add_release_commands, add_release_loop_commands


def _render(args: argparse.Namespace) -> int:
    rendering = offline.run_program(args.stack, preview=args.preview, root=args.project_dir)
    out = pathlib.Path(args.out or f"out/{args.stack}")
    counts = render.write(rendering, out)
    print(render.summary(rendering))
    print(
        f"\nwrote {counts['kubernetes']} Kubernetes manifests to {out}/kubernetes, "
        f"{counts['cloud']} cloud resources to {out}/cloud.yaml (AWS ones also to {out}/{render.PLAN_FILE})"
    )
    if args.graph is not None:
        print(f"wrote the stack's Mermaid diagram to {render.write_graph(rendering, out, args.graph)}")
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
    from plexictl import diff, diff_report, revision

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
    notes = [sdk_note] if sdk_note else []
    if args.format == "markdown":
        from plexictl import graph

        # A changed stack's picture goes into the PR comment itself: GitHub draws it there.
        graphs = {d.stack: graph.mermaid(r) for d in diffs if not d.empty and (r := head[d.stack]) is not None}
        print(diff_report.format_markdown(diffs, base_name=args.base, head_name=head_name, notes=notes, graphs=graphs))
    else:
        # Red warnings on a terminal (https://no-color.org: NO_COLOR turns them off).
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        print(diff_report.format_text(diffs, base_name=args.base, head_name=head_name, notes=notes, color=color))
    risks = sum(len(d.risks) for d in diffs)
    if risks and not args.allow_replace:
        print(
            f"error: {risks} change(s) would replace or delete stateful resources or turn their "
            f"protection off ({diff.DATA_LOSS}); if that is intended, rerun with --allow-replace",
            file=sys.stderr,
        )
        return EXIT_DATA_LOSS
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
    add_canary_commands(commands)
    add_release_commands(commands)
    add_release_loop_commands(commands)
    _add_preflight_command(commands)
    add_dr_commands(commands)
    add_deploy_window_commands(commands)
    add_notify_command(commands)
    add_break_glass_command(commands)
    add_access_review_command(commands)
    add_security_audit_command(commands)
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
    p.add_argument(
        "--graph",
        nargs="?",
        const="",
        metavar="FILE",
        help="also write a Mermaid diagram of the stack (components, data flow, protected resources) "
        "to FILE (default <out>/graph.mmd)",
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
        "--allow-replace",
        action="store_true",
        help="exit 0 even if a stateful resource would be replaced or deleted, or lose its protection",
    )
    p.set_defaults(run=_diff)


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
