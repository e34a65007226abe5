"""Deploy notifications: one chat message per deploy, rollback and release-analysis decision,
posted to the stack's `plexichat:deployChatWebhookUrl` (docs/releasing.md "Notifications").

`message` is pure: a `Notice` in, Slack-compatible JSON out (`text` for notifications and
clients without blocks, `blocks` for the layout), the format the alert receivers' chat webhook
takes too. `post` delivers it; a failure is reported, never raised past the caller's deploy.
"""

from __future__ import annotations

import getpass
import json
import os
import pathlib
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:  # pydantic loads only when a message is built, not with every plexictl command
    from components.config.release import Release

Outcome = Literal["deployed", "rolled-back", "promoted", "aborted", "paused", "failed"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
WEBHOOK_ENV = "PLEXICHAT_DEPLOY_WEBHOOK_URL"
"""Where the decrypted webhook URL reaches plexictl (CI: `pulumi config get`); never an argument,
so it stays out of process lists and logs."""

_ICONS = {
    "deployed": ":white_check_mark:",
    "promoted": ":tada:",
    "rolled-back": ":rewind:",
    "aborted": ":rewind:",
    "paused": ":double_vertical_bar:",
    "failed": ":x:",
}


@dataclass(frozen=True)
class TrackState:
    name: str
    version: str
    weight_percent: int
    role: str
    """What the track is for: `stable`, `canary`, `active`, `preview` (the idle blue-green colour)."""


@dataclass(frozen=True)
class Notice:
    """Everything a notification states."""

    stack: str
    outcome: Outcome
    strategy: str
    tracks: tuple[TrackState, ...]
    who: str
    commit: str
    run_url: str | None = None
    detail: str | None = None
    """One or more lines: the step and its metrics, the reason of an emergency override."""


class NotDelivered(Exception):
    """The webhook could not be reached or refused the message."""


def track_states(release: Release) -> tuple[TrackState, ...]:
    """Each track of the release with its version, its share of unmatched traffic and its role."""
    from components.release.plan import plan_release

    plan = plan_release(release)

    def role(track: str) -> str:
        if plan.active_colour is not None:
            return "active" if track == plan.active_colour else "preview"
        return track

    return tuple(TrackState(t.name, t.version, plan.weight_of(t.name), role(t.name)) for t in plan.tracks)


def notice(
    stack: str,
    release: Release,
    outcome: Outcome,
    *,
    project_dir: pathlib.Path,
    run_url: str | None = None,
    detail: str | None = None,
) -> Notice:
    """The notice for `stack` now: who and which commit from GitHub Actions' variables, else from
    the user and the checkout; the run from `run_url`, else from GitHub Actions' variables."""
    return Notice(
        stack=stack,
        outcome=outcome,
        strategy=release.strategy,
        tracks=track_states(release),
        who=actor(),
        commit=os.environ.get("GITHUB_SHA") or _head_commit(project_dir),
        run_url=run_url or _actions_run_url(),
        detail=detail,
    )


def actor() -> str:
    """Who deploys: the GitHub user who started the workflow run, else the local user."""
    github = os.environ.get("GITHUB_ACTOR")
    return f"@{github}" if github else getpass.getuser()


def message(notice: Notice) -> dict[str, Any]:
    """The Slack-compatible message: `text` (the one-line summary) and `blocks`."""
    summary = f"{_ICONS[notice.outcome]} {notice.stack}: {notice.outcome} by {notice.who}"
    tracks = "\n".join(
        f"• `{t.name}` {t.version}: {t.weight_percent}%" + (f" ({t.role})" if t.role != t.name else "")
        for t in notice.tracks
    )
    run = f"<{notice.run_url}|{notice.run_url}>" if notice.run_url else "a local run (no CI run)"
    fields = [
        f"*Stack*\n{notice.stack}",
        f"*Outcome*\n{notice.outcome}",
        f"*Strategy*\n{notice.strategy}",
        f"*Who*\n{notice.who}",
        f"*Commit*\n`{notice.commit}`",
        f"*Run*\n{run}",
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{summary}*"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": field} for field in fields]},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Versions and weights*\n{tracks}"}},
    ]
    if notice.detail:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": notice.detail[:2900]}]})
    text = f"{summary}; " + ", ".join(f"{t.name} {t.version} {t.weight_percent}%" for t in notice.tracks)
    return {"text": text, "blocks": blocks}


def post(url: str, payload: dict[str, Any], timeout_seconds: float = 10) -> None:
    """POST the message as JSON. NotDelivered says why without the URL (it is a secret)."""
    if not url.startswith(("https://", "http://")):
        raise NotDelivered("the webhook URL is not an http(s) URL")
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:  # the scheme was checked: urlopen would read file:// too
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
            response.read()
    except urllib.error.HTTPError as error:
        raise NotDelivered(f"the webhook answered HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise NotDelivered(f"the webhook could not be reached: {reason}") from None


def _head_commit(project_dir: pathlib.Path) -> str:
    try:
        found = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_dir, capture_output=True, text=True)
    except OSError:  # no git here
        return "unknown (no git)"
    return found.stdout.strip() if found.returncode == 0 else "unknown (not a git checkout)"


def _actions_run_url() -> str | None:
    parts = [os.environ.get(name) for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    if not all(parts):
        return None
    server, repository, run_id = parts
    return f"{server}/{repository}/actions/runs/{run_id}"
