"""`plexictl notify`: post a deploy, rollback or release decision to the stack's chat webhook
(docs/releasing.md "Notifications"). The release commands and the release loop use `notify` too."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from collections.abc import Callable

from plexictl.exit_codes import EXIT_CANNOT_DEPLOY, EXIT_DONE
from plexictl.notification import OUTCOMES, WEBHOOK_ENV, NotDelivered, Outcome, message, notice, post

NOT_DELIVERED = EXIT_CANNOT_DEPLOY
"""Exit code of `notify` when a configured webhook got nothing: it was not reachable, refused the
message, or its URL was not handed over. The deployment it reports is not affected."""


def notify(
    stack: str,
    project_dir: pathlib.Path,
    outcome: Outcome,
    *,
    run_url: str | None = None,
    detail: str | None = None,
    dry_run: bool = False,
    out: Callable[[str], None] = print,
) -> int:
    """Build the stack's notice from its stack file and post it: 0 posted (or no webhook is
    configured, or a dry run), NOT_DELIVERED otherwise. Invalid config raises ConfigError."""
    from components.config.parse import parse_stack_config
    from plexictl import offline

    config, secret_keys = offline.stack_config(stack, project_dir)
    settings = parse_stack_config(config, stack, secret_keys)  # a plain-text webhook is refused here
    payload = message(notice(stack, settings.release, outcome, project_dir=project_dir, run_url=run_url, detail=detail))
    if dry_run:
        out(json.dumps(payload, indent=2))
        return EXIT_DONE
    if settings.deploy_chat_webhook_url is None:
        out(f"{stack}: no plexichat:deployChatWebhookUrl, so no notification: {payload['text']}")
        return EXIT_DONE
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if not url:
        out(
            f"warning: {stack}: not notified: {WEBHOOK_ENV} is not set; the stack's webhook is a secret, "
            f'so hand it over decrypted: {WEBHOOK_ENV}="$(pulumi config get deployChatWebhookUrl -s {stack})"'
        )
        return NOT_DELIVERED
    try:
        post(url, payload)
    except NotDelivered as error:
        out(f"warning: {stack}: the {outcome} notification was not delivered: {error}")
        return NOT_DELIVERED
    out(f"{stack}: notified the team: {payload['text']}")
    return EXIT_DONE


def _notify(args: argparse.Namespace) -> int:
    return notify(
        args.stack,
        args.project_dir,
        args.outcome,
        run_url=args.run_url,
        detail=args.detail,
        dry_run=args.dry_run,
        out=lambda line: print(line, file=sys.stderr if line.startswith("warning:") else sys.stdout),
    )


def add_notify_command(commands) -> None:
    p = commands.add_parser(
        "notify",
        help="post a deploy, rollback or release decision (stack, versions, weights, who, commit, run) "
        "to the stack's chat webhook",
        epilog="exit codes: 0 posted, or the stack has no plexichat:deployChatWebhookUrl (nothing to do); "
        "1 invalid request or config (a webhook in plain text too); 3 not delivered: the webhook could "
        f"not be reached or refused the message, or {WEBHOOK_ENV} was not set. The webhook URL comes "
        f"from {WEBHOOK_ENV} (CI: `pulumi config get deployChatWebhookUrl`).",
    )
    p.add_argument("--stack", required=True, help="the stack whose release to report (Pulumi.<stack>.yaml)")
    p.add_argument("--outcome", required=True, choices=OUTCOMES, help="what happened")
    p.add_argument("--run-url", help="link to the run (default: the GitHub Actions run, from its variables)")
    p.add_argument("--detail", help="a line of context: the step, the failure, an emergency override's reason")
    p.add_argument("--dry-run", action="store_true", help="print the message (JSON) instead of posting it")
    p.set_defaults(run=_notify)
