"""`plexictl release run`: the metric-gated release loop (docs/releasing.md).

Step, wait, judge, go on or roll back, like Flagger and Argo Rollouts, except that every step
is a validated edit of the stack file and a git commit whose message carries the metrics that
decided it. The loop keeps nothing in memory that matters: killed at any point and started
again, it continues from the file (where the canary stands) and git (when it started).

- canary: each step of the plan is judged (`components.release.analysis.judge`) against the gate
  and against stable; all steps pass: promote; `maxFailedChecks` failures in a row or the
  timeout: abort (weight 0: all unmatched traffic back to stable).
- blue-green: the live colour is judged over the verify window; on failure it flips back.
- rolling: a failed deploy or a failed verify window restores the previous version.

Missing data is never a pass: the loop waits, and the timeout ends it. With an `applier` each
edit is deployed (`pulumi up` with the policy pack); without one it is only edited and committed.

Deployment windows (`plexichat:deployWindows`): outside them the loop takes no step forward
(a canary's start, next and promote, the rolling deploy): it says it is paused, waits for the
next opening, then judges afresh; a canary's time outside the windows does not count against its
timeout. Verifying what is already deployed, and going back (abort, flip back, rollback), are
never held back. An emergency reason lifts the windows and is written into every commit.
"""

from __future__ import annotations

import os
import pathlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from components.config.stack import StackSettings
from components.observability.alert_rules import slis
from components.release import deploy_windows
from components.release.analysis import NO_DATA, Gate, Judgement, TrackMetrics, Verdict, gate, judge
from plexictl import offline
from plexictl.release import gitlog
from plexictl.release.changes import ReleaseError, canary_next, canary_promote, canary_set, switch
from plexictl.release.edit import edit_stack
from plexictl.release.prometheus import PrometheusUnavailable, TrackQuery
from plexictl.release.report import Look, markdown_report
from plexictl.release.rollback import git_history, rollback

Applier = Callable[[str, pathlib.Path], bool]
"""Deploys the stack as its file now says; False when it could not (e.g. the rollout failed)."""
Notifier = Callable[[str, str], None]
"""Tells the team an outcome (`deployed`, `promoted`, `aborted`, `rolled-back`, `paused`,
`failed`) with a line of detail; it reports its own failures and never raises."""
_OUTCOMES = {"promote": "promoted", "abort": "aborted", "flip back": "rolled-back", "rollback": "rolled-back"}
"""The notification of each decision; `start` and `next` are `deployed`."""
_LONGEST_NAP_SECONDS = 600.0
"""While paused for the window: wake up this often (a resumed or re-dispatched run, a log line)."""

DONE, ROLLED_BACK, CANNOT_DEPLOY = 0, 4, 3


class CannotDeploy(Exception):
    """An edit was committed but could not be deployed."""


# An abort by analysis sends all unmatched traffic back to stable and keeps the canary track at
# weight 0, as Flagger does: its pods stay up for investigation (reachable only through the
# header route); `canary abort` removes them, `canary start` replaces the version.
_ABORT = partial(canary_set, weight=0)


def _failures_in_a_row(failed: int, judgement: Judgement) -> int:
    """A pass ends a streak of failures; waiting for data neither ends nor extends it."""
    if judgement.verdict is Verdict.PASS:
        return 0
    return failed + 1 if judgement.verdict is Verdict.FAIL else failed


@dataclass
class ReleaseRun:
    stack: str
    project_dir: pathlib.Path
    prometheus_url: str | None = None
    interval_seconds: int | None = None
    """Overrides the gate's interval (tests, or an impatient operator)."""
    applier: Applier | None = None
    push: bool = False
    """Push each commit to the checkout's upstream (the release workflow) before deploying it."""
    emergency_reason: str | None = None
    """Deploy outside the stack's deployment windows, for this reason (recorded in each commit)."""
    notifier: Notifier | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    out: Callable[[str], None] = print
    looks: list[Look] = field(default_factory=list)
    _held_until: datetime | None = field(default=None, init=False, repr=False)

    @property
    def path(self) -> pathlib.Path:
        return offline.stack_file_path(self.stack, self.project_dir)

    def run(self) -> int:
        """The loop for the stack's strategy; its exit code (0, 4 or 3). ReleaseError: 1."""
        gitlog.require_committed(self.path)
        with gitlog.lock(self.path, self.stack):
            settings = self._settings()
            if settings.release.paused:
                return self._paused()
            try:
                strategy = settings.release.strategy
                code = {"canary": self._canary, "blueGreen": self._blue_green, "rolling": self._rolling}[strategy]()
            except CannotDeploy as error:
                self.out(f"error: {error}")
                code = CANNOT_DEPLOY
        self._report()
        return code

    # -- the three strategies ------------------------------------------------------------------

    def _canary(self) -> int:
        settings = self._settings()
        assert settings.release.strategy == "canary"
        analysis = settings.release.canary.analysis
        if analysis is None:
            raise ReleaseError(f"{self.path.name}: plexichat:release.canary.analysis is not set: nothing to gate on")
        the_gate = gate(analysis, settings.monitoring.thresholds)
        started, failed = self._started_at(lambda r: (r.get("canary") or {}).get("version")), 0
        while True:
            settings = self._settings()
            release = settings.release
            if release.strategy != "canary" or release.paused:
                return self._paused() if release.paused else self._ended_elsewhere()
            steps, weight = release.canary.steps or [], release.canary.weight
            if weight == 0:
                if self._aborted(release.canary.version):
                    return ROLLED_BACK
                if self._hold_for_window(settings):
                    continue
                self._change(partial(canary_set, weight=steps[0]), "start", "the canary's first step")
                continue
            if self._hold_for_window(settings):
                continue
            where = f"step {steps.index(weight) + 1} of {len(steps)} at {weight}%"
            judgement, metrics = self._look(settings, the_gate, started, where, ("canary", "stable"), window_time=True)
            if judgement is None:  # the analysis timed out without a pass
                return self._end(_ABORT, "abort", f"timeout at {where}", metrics)
            failed = _failures_in_a_row(failed, judgement)
            if judgement.verdict is Verdict.PASS:
                if self._outside_window(settings) is not None:
                    continue  # judged as the window closed: hold, then judge again when it opens
                done = weight == steps[-1]
                evidence = self._evidence(where, judgement, metrics)
                self._change(canary_promote if done else canary_next, "promote" if done else "next", evidence)
                if done:
                    return DONE
            elif failed >= the_gate.max_failed_checks:
                return self._end(_ABORT, "abort", f"{failed} failed checks at {where}", metrics, judgement)

    def _blue_green(self) -> int:
        settings = self._settings()
        assert settings.release.strategy == "blueGreen"
        live = settings.release.active
        return self._verify(settings, live, switch, "flip back", lambda r: r.get("active"))

    def _rolling(self) -> int:
        settings = self._settings()
        assert settings.release.strategy == "rolling"
        undo = partial(rollback, history=git_history(self.path))
        while self._hold_for_window(settings):
            pass
        if self.applier is not None and not self.applier(self.stack, self.project_dir):
            self.out(f"{self.stack}: the deploy of {settings.release.version} failed; rolling back")
            return self._end(undo, "rollback", "the deploy failed (rollout not done in time)", {})
        return self._verify(settings, "stable", undo, "rollback", lambda r: r.get("version"))

    def _verify(self, settings: StackSettings, track: str, undo, decision: str, marker) -> int:
        verification = getattr(settings.release, "verify", None)
        if verification is None:
            self.out(f"{self.stack}: no plexichat:release.verify block: nothing to verify")
            return DONE
        the_gate = gate(verification, settings.monitoring.thresholds)
        started, failed = self._started_at(marker), 0
        while True:
            now = self._settings()
            if now.release.paused:
                return self._paused()
            where = f"verify {track}"
            judgement, metrics = self._look(now, the_gate, started, where, (track,))
            if judgement is None:
                return self._end(undo, decision, f"timeout: {where} never passed", metrics)
            if judgement.verdict is Verdict.PASS:
                self.out(f"{self.stack}: verified: {judgement.describe()}")
                return DONE
            failed = _failures_in_a_row(failed, judgement)
            if failed >= the_gate.max_failed_checks:
                return self._end(undo, decision, f"{failed} failed checks ({where})", metrics, judgement)

    # -- looking at the metrics ----------------------------------------------------------------

    def _look(
        self,
        settings: StackSettings,
        the_gate: Gate,
        started: float,
        where: str,
        tracks: tuple[str, ...],
        window_time: bool = False,
    ):
        """Wait one interval (a progress line every few seconds), then judge. (None, metrics)
        when the whole analysis ran out of time first: counted inside the deployment windows
        only with `window_time`."""
        interval = self.interval_seconds or the_gate.interval_seconds
        query = self._query(settings)
        deadline, metrics = self.clock() + interval, dict.fromkeys(tracks, NO_DATA)
        while True:
            metrics = self._measure(query, tracks)
            left = deadline - self.clock()
            self.out(f"{self.stack} {where}: {max(left, 0):.0f} s left; " + self._describe(metrics))
            if left <= 0:
                break
            self.sleep(min(left, max(1.0, interval / 5)))
        elapsed = self.clock() - started
        if window_time and not self.emergency_reason:
            elapsed = deploy_windows.open_seconds(settings.deploy_windows, self._instant(started), self._now())
        if elapsed > the_gate.timeout_seconds:
            return None, metrics
        candidate, *rest = tracks
        judgement = judge(metrics[candidate], the_gate, metrics[rest[0]] if rest else None)
        self.looks.append(Look(where, self._weights(settings), metrics, judgement.describe()))
        self.out(f"{self.stack} {where}: {judgement.describe()}")
        return judgement, metrics

    def _measure(self, query: TrackQuery, tracks: tuple[str, ...]) -> dict[str, TrackMetrics]:
        try:
            return {track: query.metrics(track) for track in tracks}
        except PrometheusUnavailable as error:
            self.out(f"{self.stack}: Prometheus unavailable ({error}): no judgement, waiting")
            return dict.fromkeys(tracks, NO_DATA)

    def _query(self, settings: StackSettings) -> TrackQuery:
        url = self.prometheus_url or settings.monitoring.prometheus_url
        if url is None:
            raise ReleaseError("no Prometheus to ask: pass --prometheus URL or set plexichat:monitoring.prometheusUrl")
        return TrackQuery(url, slis(settings.monitoring), settings.namespace)

    @staticmethod
    def _describe(metrics: dict[str, TrackMetrics]) -> str:
        return " | ".join(f"{track} {m.describe()}" for track, m in metrics.items())

    @staticmethod
    def _weights(settings: StackSettings) -> dict[str, int]:
        from components.release.plan import plan_release

        plan = plan_release(settings.release)
        return {track.name: plan.weight_of(track.name) for track in plan.tracks}

    @staticmethod
    def _evidence(where: str, judgement: Judgement, metrics: dict[str, TrackMetrics]) -> str:
        lines = [f"{where}: {judgement.describe()}"]
        lines += [f"  {track}: {m.describe()}" for track, m in metrics.items()]
        return "\n".join(lines)

    # -- the deployment window -----------------------------------------------------------------

    def _now(self) -> datetime:
        return self._instant(self.clock())

    @staticmethod
    def _instant(unix_time: float) -> datetime:
        return datetime.fromtimestamp(unix_time, UTC)

    def _outside_window(self, settings: StackSettings) -> datetime | None:
        """When the window next opens, if the loop may not step forward now; else None."""
        windows, now = settings.deploy_windows, self._now()
        if self.emergency_reason or deploy_windows.is_open(windows, now):
            return None
        opening = deploy_windows.next_opening(windows, now)
        if opening is None:
            raise ReleaseError(f"{self.path.name}: plexichat:deployWindows never opens in the next two weeks")
        return opening

    def _hold_for_window(self, settings: StackSettings) -> bool:
        """Outside the window: say so (once per closed spell), nap towards the opening, True."""
        opening = self._outside_window(settings)
        if opening is None:
            self._held_until = None
            return False
        if opening != self._held_until:
            self._held_until = opening
            line = f"paused: outside the deployment window until {opening:%Y-%m-%d %H:%M} UTC"
            self.out(f"{self.stack}: {line} ({deploy_windows.describe(settings.deploy_windows)})")
            self._notify("paused", line)
        self.sleep(min(max((opening - self._now()).total_seconds(), 1.0), _LONGEST_NAP_SECONDS))
        return True

    def _notify(self, outcome: str, detail: str) -> None:
        if self.notifier is not None:
            self.notifier(outcome, f"release run: {detail}")

    # -- changing the release ------------------------------------------------------------------

    def _end(self, change, decision: str, why: str, metrics, judgement: Judgement | None = None) -> int:
        evidence = "\n".join(
            [why, *(f"  {track}: {m.describe()}" for track, m in metrics.items())]
            + ([f"  judgement: {judgement.describe()}"] if judgement else [])
        )
        self._change(change, decision, evidence)
        return ROLLED_BACK

    def _change(self, change, decision: str, evidence: str) -> None:
        """One validated edit of the release block, committed with its evidence, then deployed."""
        edit = edit_stack(self.stack, self.path, change, root=self.project_dir, render=False)
        subject = f"release run {self.stack}: {edit.message.split(';')[0]}"
        if self.emergency_reason:
            evidence += f"\nemergency override of the deployment window: {self.emergency_reason}"
        commit = gitlog.commit(self.path, subject, evidence, decision)
        self.out(f"{self.stack}: {decision}: {edit.message} (commit {commit[:10]})")
        summary = f"{decision}: {edit.message} (commit {commit[:10]})\n{evidence}"
        try:
            self._deploy(commit, decision)
        except CannotDeploy as error:
            self._notify("failed", f"{summary}\n{error}")
            raise
        self._notify(_OUTCOMES.get(decision, "deployed"), summary)

    def _deploy(self, commit: str, decision: str) -> None:
        """Push (with --push) and deploy (with an applier) the commit just made."""
        if self.push:
            try:
                gitlog.push(self.path)
            except ReleaseError as error:
                raise CannotDeploy(f"committed {commit[:10]} ({decision}) but could not push it: {error}") from None
        if self.applier is None:
            self.out(f"{self.stack}: not deployed (run with --apply to deploy each step)")
        elif not self.applier(self.stack, self.project_dir):
            raise CannotDeploy(f"committed {commit[:10]} ({decision}) but could not deploy it")

    def _settings(self) -> StackSettings:
        from components.config.parse import parse_stack_config

        config, secret_keys = offline.stack_config(self.stack, self.project_dir)
        return parse_stack_config(config, self.stack, secret_keys)

    def _started_at(self, marker: Callable[[dict], object]) -> float:
        """When this analysis began, for its timeout: the loop's first decision on the release
        under analysis (the same `marker`: the canary's version, the active colour), so a
        restarted loop keeps its clock; else now. Not when the release itself was committed: a
        canary may have sat at a manual weight for days before the loop was asked to judge it."""
        history = git_history(self.path)()
        if not history:
            return self.clock()
        blocks, current = dict(history), marker(history[0][1])
        started = None
        for decision in gitlog.decisions(self.path):  # newest first
            if marker(blocks.get(decision.commit) or {}) != current:
                break
            started = decision.unix_time
        return float(started) if started is not None else self.clock()

    def _aborted(self, version: str) -> bool:
        """Whether analysis already aborted this canary version: it is not started again."""
        blocks = dict(git_history(self.path)())
        for decision in gitlog.decisions(self.path):
            block = blocks.get(decision.commit) or {}
            if (block.get("canary") or {}).get("version") != version:
                return False
            if decision.decision == "abort":
                self.out(
                    f"{self.stack}: canary {version} was aborted by analysis ({decision.subject}, commit "
                    f"{decision.commit[:10]}); `canary start` a new version, or `canary set` to retry by hand"
                )
                return True
            return False
        return False

    def _paused(self) -> int:
        self.out(f"{self.stack}: the release is paused (plexichat:release.paused); `release resume` to go on")
        return DONE

    def _ended_elsewhere(self) -> int:
        self.out(f"{self.stack}: the canary was promoted or aborted outside this loop: nothing left to do")
        return DONE

    def _report(self) -> None:
        report = markdown_report(self.stack, self.looks)
        self.out(report)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as handle:
                handle.write(report + "\n")
