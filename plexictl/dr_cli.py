"""The disaster-recovery commands of plexictl: `dr failover` (the one reviewed edit that promotes
a standby, and its checklist) and `dr status` (the pair's recovery state). docs/dr.md."""

from __future__ import annotations

import argparse
import sys

from plexictl import offline
from plexictl.exit_codes import EXIT_CANNOT_DEPLOY, EXIT_CODES, EXIT_DONE, EXIT_INVALID


def _failover(args: argparse.Namespace) -> int:
    from components.config.parse import parse_stack_config
    from plexictl import release as rc
    from plexictl.dr.failover import DR_KEY, checklist, format_checklist, promote
    from plexictl.release_cli import show_edit

    path = offline.stack_file_path(args.stack, args.project_dir)
    try:
        edit = rc.edit_stack(args.stack, path, promote, root=args.project_dir, write=not args.dry_run, key=DR_KEY)
    except rc.ReleaseError as error:
        print(f"error: {error}\n{path.name} was not changed", file=sys.stderr)
        return EXIT_INVALID
    show_edit(edit, dry_run=args.dry_run)
    config, secret_keys = offline.stack_config(
        args.stack, args.project_dir, stack_file=offline.read_stack_file(path, edit.new_text)
    )
    settings = parse_stack_config(config, args.stack, secret_keys)  # edit_stack validated it already
    assert settings.dr is not None
    print("the failover, step by step (docs/dr.md 'Failover and failback'):\n")
    print(format_checklist(checklist(args.stack, settings), settings.dr.rto_minutes) + "\n")
    if args.dry_run:
        return EXIT_DONE
    if args.apply:
        return rc.apply(args.stack, args.project_dir)
    print(
        f"next: commit {path.name}, open a PR (CI shows this diff), merge; its deploy "
        f"(`pulumi up --stack {args.stack}`) is the promotion (or rerun with --apply)"
    )
    return EXIT_DONE


def _status(args: argparse.Namespace) -> int:
    from plexictl import preflight
    from plexictl.dr import status

    try:
        results = status.check_stack(args.stack, args.project_dir)
    except status.NoDisasterRecovery as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    print(preflight.table(results))
    print(f"\n{status.summary(args.stack, results)}")
    return EXIT_CANNOT_DEPLOY if any(r.outcome is preflight.Outcome.FAIL for r in results.values()) else EXIT_DONE


def add_dr_commands(commands) -> None:
    """`dr failover|status` (docs/dr.md)."""
    dr = commands.add_parser("dr", help="disaster recovery: fail a standby over, report the recovery state")
    steps = dr.add_subparsers(dest="dr_command", required=True)
    p = steps.add_parser(
        "failover",
        help="promote a standby: the edit dr.role standby -> active, its diff, and the checklist "
        "that keeps the failover within the RTO",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--stack", required=True, help="the standby whose Pulumi.<stack>.yaml to edit, e.g. prod-dr")
    when = p.add_mutually_exclusive_group()
    when.add_argument(
        "--apply",
        action="store_true",
        help="then run `pulumi up` for the stack with the policy pack (Automation API; needs the Pulumi CLI)",
    )
    when.add_argument("--dry-run", action="store_true", help="show the edit, its diff and the checklist; write nothing")
    p.set_defaults(run=_failover)
    p = steps.add_parser(
        "status",
        help="replica lag, recovery points in each region, S3 replication backlog, last restore tests, "
        "DNS health check, cluster",
        epilog="exit codes: 0 every check passed (or was skipped); 1 invalid request or config; 3 a check failed",
    )
    p.add_argument("--stack", required=True, help="either stack of the pair (Pulumi.<stack>.yaml)")
    p.set_defaults(run=_status)
