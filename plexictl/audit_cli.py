"""The review commands of plexictl: `access-review` (who may do what in a stack, for the quarterly
access review) and `security-audit` (pip-audit's findings against the 30-day patch window).
docs/runbook.md "Quarterly access review" and "Dependency and security updates"."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pathlib
import sys

from plexictl import offline
from plexictl import security_audit as audit
from plexictl.exit_codes import EXIT_CANNOT_DEPLOY, EXIT_DONE, EXIT_INVALID


def _access_review(args: argparse.Namespace) -> int:
    from plexictl import access_review, revision

    project = args.project_dir.resolve()
    changes = ""
    if args.diff:
        # Both revisions in one call: each imports its own program (plexictl.revision).
        try:
            with revision.checkout(project, args.diff) as base_root:
                both = revision.render({"base": base_root, "head": project}, [args.stack])
        except revision.RevisionError as error:
            print(f"error: cannot render {args.stack}: {error}", file=sys.stderr)
            return EXIT_INVALID
        rendering = both["head"][args.stack]
        if rendering is None:
            raise offline.StackFileError(f"no stack {args.stack!r} (Pulumi.{args.stack}.yaml) in {project}")
        changes = access_review.changes_markdown(both["base"][args.stack], rendering, args.diff)
    else:
        rendering = offline.run_program(args.stack, preview=args.preview, root=project)
    text = access_review.markdown(rendering, changes)
    if args.out:
        pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.out).write_text(text)
        print(f"wrote the access review of {args.stack} to {args.out}")
    else:
        print(text, end="")
    return EXIT_DONE


def add_access_review_command(commands) -> None:
    p = commands.add_parser(
        "access-review",
        help="who may do what in a stack (IAM roles, trust, grants, ServiceAccounts and their reach), "
        "as Markdown for the quarterly access review; offline",
    )
    p.add_argument("--stack", required=True, help="the stack to review (Pulumi.<stack>.yaml)")
    p.add_argument("--out", metavar="FILE", help="write the record here (default: print it)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--diff", metavar="REF", help="also list what changed since the review at this git ref")
    mode.add_argument("--preview", action="store_true", help="as `pulumi preview` sees it: computed values unknown")
    p.set_defaults(run=_access_review)


def _security_audit(args: argparse.Namespace) -> int:
    now = dt.datetime.fromisoformat(args.now) if args.now else dt.datetime.now(dt.UTC)
    now = now if now.tzinfo else now.replace(tzinfo=dt.UTC)
    try:
        found = audit.read_reports(args.reports)
        assessment = audit.assess(found, audit.osv_fetcher(args.osv_url), now)
    except (audit.AuditError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    report = audit.markdown(assessment, now)
    print(report)
    if args.summary:
        with open(args.summary, "a") as summary:
            summary.write(report + "\n")
    if os.environ.get("GITHUB_ACTIONS") == "true":
        print("\n".join(audit.workflow_commands(assessment, now)))
    return EXIT_CANNOT_DEPLOY if assessment.failed else EXIT_DONE


def add_security_audit_command(commands) -> None:
    p = commands.add_parser(
        "security-audit",
        help="pip-audit findings by the age of their advisory (OSV): fail past the 30-day patch window",
        epilog="exit codes: 0 no finding past the window (younger ones are warnings); 1 unreadable report "
        "or OSV error; 3 a finding is older than 30 days, or its age is unknown",
    )
    p.add_argument("reports", nargs="+", type=pathlib.Path, help="pip-audit JSON reports (`--format json`)")
    p.add_argument("--osv-url", default=audit.OSV_API, help="the OSV vulns endpoint")
    p.add_argument("--summary", metavar="FILE", help="append the Markdown report here ($GITHUB_STEP_SUMMARY)")
    p.add_argument("--now", help=argparse.SUPPRESS)  # tests: a fixed clock (ISO 8601)
    p.set_defaults(run=_security_audit)
