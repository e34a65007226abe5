"""Deploy notifications (docs/releasing.md "Notifications"): the message for every outcome and
strategy, posted to a real HTTP server; a webhook in plain text is refused; a webhook that fails
never fails the deploy it reports."""

from __future__ import annotations

import http.server
import json
import threading
from contextlib import contextmanager

import pytest

from components.config.release import BlueGreenRelease, CanaryRelease, RollingRelease
from plexictl import release as rc
from plexictl.__main__ import main
from plexictl.notification import OUTCOMES, WEBHOOK_ENV, Notice, message, track_states
from tests.release_state import pinned_version, project_copy
from tests.test_cli_errors import set_key

STABLE, CANARY = pinned_version("v1.4.2"), pinned_version("v1.5.0")
RELEASES = {
    "canary": CanaryRelease.model_validate(
        {"strategy": "canary", "stable": STABLE, "canary": {"version": CANARY, "weight": 25}}
    ),
    "blueGreen": BlueGreenRelease.model_validate(
        {"strategy": "blueGreen", "active": "green", "blue": "v1.4.2", "green": "v1.5.0"}
    ),
    "rolling": RollingRelease.model_validate({"strategy": "rolling", "version": "v1.5.0"}),
}
RUN = "https://github.com/plexichat/infra/actions/runs/42"


def notice_of(strategy: str, outcome: str, detail: str | None = None) -> Notice:
    release = RELEASES[strategy]
    return Notice("prod", outcome, release.strategy, track_states(release), "@alice", "0123abcd", RUN, detail)


def rendered(payload: dict) -> str:
    """Everything a reader sees: the summary and every block's text."""
    texts = [payload["text"]]
    for block in payload["blocks"]:
        texts += [block["text"]["text"]] if "text" in block else []
        texts += [f["text"] for f in block.get("fields", []) + block.get("elements", [])]
    return "\n".join(texts)


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_the_message_states_stack_versions_weights_outcome_who_commit_and_run(outcome):
    payload = message(notice_of("canary", outcome, detail="step 2 of 4 at 25%: pass"))
    assert json.loads(json.dumps(payload)) == payload  # JSON, as posted
    assert payload["text"].startswith(":") and f"prod: {outcome} by @alice" in payload["text"]
    shown = rendered(payload)
    assert f"*Outcome*\n{outcome}" in shown and "*Stack*\nprod" in shown and "*Strategy*\ncanary" in shown
    assert "*Who*\n@alice" in shown and "*Commit*\n`0123abcd`" in shown and f"<{RUN}|{RUN}>" in shown
    assert f"• `stable` {STABLE}: 75%" in shown and f"• `canary` {CANARY}: 25%" in shown
    assert "step 2 of 4 at 25%: pass" in shown
    assert f"stable {STABLE} 75%, canary {CANARY} 25%" in payload["text"]  # for clients without blocks


def test_each_outcome_has_its_own_summary_line():
    lines = {message(notice_of("rolling", outcome))["blocks"][0]["text"]["text"] for outcome in OUTCOMES}
    assert len(lines) == len(OUTCOMES)


def test_a_blue_green_message_names_the_live_and_the_preview_colour():
    shown = rendered(message(notice_of("blueGreen", "rolled-back")))
    assert "• `blue` v1.4.2: 0% (preview)" in shown and "• `green` v1.5.0: 100% (active)" in shown
    assert "*Strategy*\nblueGreen" in shown
    assert "• `stable` v1.5.0: 100%" in rendered(message(notice_of("rolling", "deployed")))


class Webhook(http.server.BaseHTTPRequestHandler):
    received: list[dict]
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"type": self.headers["Content-Type"], "json": json.loads(body)})
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:  # quiet
        pass


@contextmanager
def webhook(status: int = 200):
    handler = type("Handler", (Webhook,), {"received": [], "status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/services/T0/B0/secret", handler.received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project copy (staging has a deploy webhook, dev none) in a GitHub Actions run."""
    for name, value in {
        "GITHUB_ACTOR": "alice",
        "GITHUB_SHA": "89abcdef" * 5,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "plexichat/infra",
        "GITHUB_RUN_ID": "42",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    return project_copy(tmp_path)


def notify(project, *args: str) -> int:
    return main(["--project-dir", str(project), "notify", *args])


def test_notify_posts_the_message_as_json_to_the_webhook(project, monkeypatch, capsys):
    with webhook() as (url, received):
        monkeypatch.setenv(WEBHOOK_ENV, url)
        assert notify(project, "--stack", "staging", "--outcome", "deployed", "--detail", "smoke check passed") == 0
    ((post,),) = [received]
    assert post["type"] == "application/json"
    shown = rendered(post["json"])
    assert "staging: deployed by @alice" in post["json"]["text"]
    assert "• `blue` v1.4.2: 100% (active)" in shown and "• `green` v1.5.0: 0% (preview)" in shown
    assert f"`{'89abcdef' * 5}`" in shown and f"<{RUN}|{RUN}>" in shown and "smoke check passed" in shown
    out = capsys.readouterr().out
    assert "staging: notified the team" in out and url not in out  # the URL is a secret


def test_a_stack_without_a_webhook_is_not_notified(project, monkeypatch, capsys):
    with webhook() as (url, received):
        monkeypatch.setenv(WEBHOOK_ENV, url)
        assert notify(project, "--stack", "dev", "--outcome", "deployed") == 0
    assert received == [] and "no plexichat:deployChatWebhookUrl, so no notification" in capsys.readouterr().out


def test_a_webhook_in_plain_text_is_refused(project, capsys):
    set_key("staging", "deployChatWebhookUrl", "https://hooks.example.com/services/T0/B0/plain")(project)
    assert notify(project, "--stack", "staging", "--outcome", "deployed") == 1
    err = capsys.readouterr().err
    assert "plexichat:deployChatWebhookUrl: must be a secret; set it with `pulumi config set --secret" in err
    assert "hooks.example.com" not in err


@pytest.mark.parametrize("status", [500, 404])
def test_a_failed_post_is_reported_with_exit_3(project, monkeypatch, capsys, status):
    with webhook(status) as (url, received):
        monkeypatch.setenv(WEBHOOK_ENV, url)
        assert notify(project, "--stack", "staging", "--outcome", "failed") == 3
    assert len(received) == 1
    err = capsys.readouterr().err
    assert f"not delivered: the webhook answered HTTP {status}" in err and url not in err


def test_an_unreachable_webhook_or_a_missing_url_is_reported_with_exit_3(project, monkeypatch, capsys):
    assert notify(project, "--stack", "staging", "--outcome", "deployed") == 3
    assert f"{WEBHOOK_ENV} is not set" in capsys.readouterr().err
    with webhook() as (url, _):
        pass  # closed: nothing listens there any more
    monkeypatch.setenv(WEBHOOK_ENV, url)
    assert notify(project, "--stack", "staging", "--outcome", "deployed") == 3
    assert "the webhook could not be reached" in capsys.readouterr().err


def test_a_failed_notification_does_not_fail_the_deploy_it_reports(project, monkeypatch, capsys):
    deployed: list[str] = []
    monkeypatch.setattr(rc, "apply", lambda stack, project_dir: deployed.append(stack) or 0)
    with webhook(500) as (url, received):
        monkeypatch.setenv(WEBHOOK_ENV, url)
        assert main(["--project-dir", str(project), "switch", "--stack", "staging", "--apply"]) == 0
    assert deployed == ["staging"] and len(received) == 1
    assert "staging: deployed by @alice" in received[0]["json"]["text"]
    assert "not delivered" in capsys.readouterr().out


def test_an_applied_rollback_is_announced_as_rolled_back(project, monkeypatch):
    monkeypatch.setattr(rc, "apply", lambda stack, project_dir: 0)
    with webhook() as (url, received):
        monkeypatch.setenv(WEBHOOK_ENV, url)
        assert main(["--project-dir", str(project), "canary", "abort", "--stack", "staging", "--apply"]) == 1
        assert main(["--project-dir", str(project), "rollback", "--stack", "prod", "--apply"]) == 0
    (post,) = received
    assert "prod: rolled-back by @alice" in post["json"]["text"]
    assert "plexictl rollback --apply" in rendered(post["json"])


def test_every_deployment_and_every_loop_decision_reaches_the_chat():
    """deploy-stack.yml notifies after success, rollback and failure without ever failing the job;
    the release loop gets the decrypted webhook for its decisions. The secret is read with
    `pulumi config get`, masked, and handed over in the environment."""
    from tests.test_workflows import load

    steps = load("deploy-stack.yml")["jobs"]["up"]["steps"]
    names = [s.get("name", s.get("uses", "")) for s in steps]
    notify = steps[names.index("Notify the team")]
    assert notify["if"] == "always()" and notify["continue-on-error"] is True
    assert steps[names.index("Notify the team") - 1]["uses"].startswith("pulumi/actions@")  # the CLI, always
    assert notify["env"]["OUTCOME"] == (
        "${{ job.status == 'success' && 'deployed' || "
        "(steps.redeploy.outcome == 'success' && 'rolled-back' || 'failed') }}"
    )
    redeploy = next(s for s in steps if s.get("id") == "redeploy")
    assert redeploy["uses"].startswith("pulumi/actions@") and redeploy["with"]["command"] == "up"
    loop = next(s for s in load("release-loop.yml")["jobs"]["run"]["steps"] if s.get("id") == "loop")
    for script in (notify["run"], loop["run"]):
        assert 'PLEXICHAT_DEPLOY_WEBHOOK_URL="$(pulumi config get deployChatWebhookUrl --stack' in script
        assert 'echo "::add-mask::${PLEXICHAT_DEPLOY_WEBHOOK_URL}"' in script
        assert "export PLEXICHAT_DEPLOY_WEBHOOK_URL" in script
    assert f"{WEBHOOK_ENV}" == "PLEXICHAT_DEPLOY_WEBHOOK_URL"
    assert '.venv/bin/plexictl notify --stack "$STACK" --outcome "$OUTCOME"' in notify["run"]
    assert names.index("Notify the team") < names.index("Audit record") == len(steps) - 1
