"""The release changes: `canary start|set|next|promote|abort`, `switch` and `deploy`.

Each takes the release block (a CommentedMap), changes it in place and returns a one-line
description for the operator. `@reads` names the release keys a change reads: `edit_stack` refuses
to run it while one of them is invalid, with the settings' own message, instead of failing halfway
on (say) `active: purple`. Keys a change only writes may be invalid: the edit repairs them and the
result is validated as a whole.

Decisions, after what Flagger and Argo Rollouts do on promotion and abort:
- `canary promote`: the canary version becomes the stable version and the canary track is
  removed: the stack becomes `rolling` at the canary's version (a canary with no canary is not a
  valid release).
- `canary abort`: all traffic back to stable, canary removed (`rolling` at the stable version).
- The step plan and header route leave with the canary block, and the next `canary start` on
  the rolling stack brings back those of the last canary in the stack file's git history
  (`--steps`, `--header`, `--no-header` change them); promote and abort say so.
- `canary start` from `canary`: the canary's version is replaced and its weight restarts (plan
  and header are kept). The weight defaults to the plan's first step, or 0 (header-only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ruamel.yaml.comments import CommentedMap

from plexictl.release.stack_file import RELEASE_KEY, flow_list, plain, set_keys


class ReleaseError(Exception):
    """The request does not apply to the stack's current release (wrong strategy, no plan...)."""


History = Callable[[], list[tuple[str, dict]]]
"""The release block at each commit of the stack file, newest first (see `git_history`)."""


def reads(*keys: str) -> Callable[[Callable[..., str]], Callable[..., str]]:
    def mark(change: Callable[..., str]) -> Callable[..., str]:
        change.reads = keys  # type: ignore[attr-defined]
        return change

    return mark


def settled_version(release: dict[str, Any]) -> str | None:
    """The version serving all live traffic that matches no header route: the rolling version,
    the active colour's, and a canary's stable until the canary takes 100%."""
    strategy = release.get("strategy")
    if strategy == "rolling":
        return release.get("version")
    if strategy == "canary":
        canary = release.get("canary") or {}
        return canary.get("version") if canary.get("weight") == 100 else release.get("stable")
    if strategy == "blueGreen":
        return release.get(str(release.get("active")))
    return None


_HOW_IT_RELEASES = {
    "rolling": "a rolling stack releases with `deploy VERSION`, or starts a canary with `canary start VERSION`",
    "canary": "a canary stack moves with `canary set|next|promote|abort`, or replaces the canary "
    "with `canary start VERSION`",
    "blueGreen": "a blue-green stack releases with `deploy VERSION` (onto the idle colour), then `switch`",
}


def _require(release: CommentedMap, *strategies: str, command: str) -> None:
    strategy = release.get("strategy")
    if strategy not in strategies:
        raise ReleaseError(
            f"`{command}` needs strategy {' or '.join(strategies)}, and this stack's is "
            f"{strategy}: {_HOW_IT_RELEASES[strategy]}"
        )


def _header_text(header: dict[str, Any] | None) -> str:
    return f"{header['name']}: {header['value']}" if header else "none"


@reads("strategy", "version", "canary.steps", "canary.header")
def canary_start(
    release: CommentedMap,
    version: str,
    weight: int | None = None,
    steps: list[int] | None = None,
    header: dict[str, str] | None = None,
    no_header: bool = False,
    history: History | None = None,
) -> str:
    """Run `version` as the canary. From rolling, the running version becomes stable and the
    plan and header of the last canary in the stack file's history come back, unless given
    (`steps`, `header`) or refused (`no_header`); from canary, the canary's version is replaced
    and its weight restarts at the plan's first step."""
    _require(release, "rolling", "canary", command="canary start")
    notes = []
    if release["strategy"] == "rolling":
        stable = release["version"]
        canary = CommentedMap()
        canary["version"] = version
        last = _last_canary(history) if history else {}
        steps = steps or last.get("steps")
        if not header and not no_header and last.get("header"):
            header = last["header"]
            notes.append(f"header route {_header_text(header)} as in the last canary (--no-header to start without)")
        canary["weight"] = weight if weight is not None else (steps[0] if steps else 0)
        if steps:
            canary["steps"] = flow_list(steps)
        if header and not no_header:
            canary["header"] = CommentedMap(header)
        if steps and last.get("analysis"):  # the metric gate walks the plan: it needs one
            canary["analysis"] = CommentedMap(last["analysis"])
            notes.append("analysis as in the last canary (`plexictl release run` gates each step)")
        set_keys(release, {"strategy": "canary", "stable": stable, "canary": canary})
        message = f"canary {version} started at {canary['weight']}% next to stable {stable}"
    else:
        canary = release["canary"]
        if steps:
            canary["steps"] = flow_list(steps)
        if no_header:
            canary.pop("header", None)
        elif header:
            canary["header"] = CommentedMap(header)
        plan = list(canary.get("steps") or [])
        new_weight = weight if weight is not None else (plan[0] if plan else 0)
        previous = canary["version"]
        canary["version"] = version
        _set_weight(canary, new_weight)
        message = f"canary version {previous} -> {version}, weight restarts at {new_weight}%"
    if canary.get("steps"):
        notes.append(f"plan {list(canary['steps'])}")
    if not canary.get("weight") and not canary.get("header"):
        notes.append(
            "no request reaches it yet (weight 0, no header route): `canary set "
            "WEIGHT`, or start with --steps or --header"
        )
    return message + "".join(f"; {note}" for note in notes)


def _last_canary(history: History) -> dict[str, Any]:
    """The canary block of the newest commit that had one (its plan, header and analysis), or {}."""
    try:
        releases = history()
    except ReleaseError:
        return {}
    for _, block in releases:
        if block.get("strategy") == "canary" and isinstance(block.get("canary"), dict):
            return {k: plain(v) for k, v in block["canary"].items() if k in ("steps", "header", "analysis")}
    return {}


def _set_weight(canary: CommentedMap, weight: int) -> None:
    if "weight" in canary:
        canary["weight"] = weight
    else:
        canary.insert(1, "weight", weight)


def _canary_block(release: CommentedMap) -> CommentedMap:
    canary = release.get("canary")
    if not isinstance(canary, CommentedMap):
        raise ReleaseError(
            f"{RELEASE_KEY}.canary: required for strategy canary (a mapping with "
            "the canary's version and weight), but not set"
        )
    return canary


@reads("strategy")
def canary_set(release: CommentedMap, weight: int) -> str:
    _require(release, "canary", command="canary set")
    canary = _canary_block(release)
    previous = canary.get("weight", 0)
    _set_weight(canary, weight)
    return f"canary weight {previous}% -> {weight}%"


@reads("strategy", "canary.weight", "canary.steps")
def canary_next(release: CommentedMap) -> str:
    _require(release, "canary", command="canary next")
    canary = _canary_block(release)
    plan = list(canary.get("steps") or [])
    if not plan:
        raise ReleaseError(
            f"the canary has no step plan ({RELEASE_KEY}.canary.steps); use `canary set WEIGHT` "
            "or add a plan such as steps: [10, 25, 50, 100]"
        )
    current = canary.get("weight", 0)
    later = [step for step in plan if step > current]
    if not later:
        raise ReleaseError(
            f"the canary is already at the last step ({current}%) of {plan}; promote it with `canary promote`"
        )
    _set_weight(canary, later[0])
    return f"canary weight {current}% -> {later[0]}% (step {plan.index(later[0]) + 1} of {len(plan)})"


def _kept_for_next_canary(canary: dict[str, Any]) -> str:
    kept = [
        f"header route {_header_text(canary['header'])}" if canary.get("header") else "",
        f"plan {list(canary['steps'])}" if canary.get("steps") else "",
        "analysis" if canary.get("analysis") else "",
    ]
    kept = [k for k in kept if k]
    if not kept:
        return ""
    return (
        f"; the {', '.join(kept)} come back with the next `canary start` (from git "
        "history; --no-header or --steps to change)"
    )


@reads("strategy", "stable", "canary.version")
def canary_promote(release: CommentedMap) -> str:
    _require(release, "canary", command="canary promote")
    canary = _canary_block(release)
    version, stable = canary["version"], release["stable"]
    kept = _kept_for_next_canary(canary)
    set_keys(release, {"strategy": "rolling", "version": version})
    return f"canary {version} promoted: it replaces stable {stable}, canary track removed" + kept


@reads("strategy", "stable", "canary.version")
def canary_abort(release: CommentedMap) -> str:
    _require(release, "canary", command="canary abort")
    canary = _canary_block(release)
    version, stable = canary["version"], release["stable"]
    kept = _kept_for_next_canary(canary)
    set_keys(release, {"strategy": "rolling", "version": stable})
    return f"canary {version} aborted: all traffic back to stable {stable}, canary track removed" + kept


@reads("strategy")
def set_paused(release: CommentedMap, paused: bool) -> str:
    """`release pause|resume`: the metric-gated loop stops before its next step while paused.
    The key is left out when false, as people write it."""
    was = bool(release.get("paused"))
    if paused:
        release["paused"] = True
    else:
        release.pop("paused", None)
    state = "paused: `plexictl release run` stops before its next step" if paused else "resumed"
    return state if was != paused else f"already {'paused' if paused else 'running'}"


def other_colour(colour: str) -> str:
    return "green" if colour == "blue" else "blue"


@reads("strategy", "active", "blue", "green")
def switch(release: CommentedMap) -> str:
    _require(release, "blueGreen", command="switch")
    previous = release["active"]
    release["active"] = other_colour(previous)
    return (
        f"active colour {previous} -> {release['active']}: live traffic now goes to "
        f"{release[release['active']]} (was {release[previous]})"
    )


@reads("strategy", "active")
def deploy(release: CommentedMap, version: str) -> str:
    _require(release, "blueGreen", "rolling", command="deploy")
    if release["strategy"] == "rolling":
        previous = release.get("version")
        release["version"] = version
        return f"version {previous} -> {version} (rolling update)"
    inactive = other_colour(release["active"])
    previous = release.get(inactive)
    release[inactive] = version
    return (
        f"{version} deployed on the inactive colour {inactive} (was {previous}); "
        f"smoke-test it on the preview route, then `switch`"
    )
