"""Release commands: `canary start|set|next|promote|abort`, `switch`, `deploy`, `rollback`.

Each command is a small, reviewable edit of `plexichat:release` in `Pulumi.<stack>.yaml` — the
same edit an operator could make by hand or with `pulumi config set --path` — so the release
state lives in git, not in a controller's memory:

1. load the stack file with ruamel.yaml's round-trip mode (comments, quoting, key order and
   flow-style lists survive; untouched lines stay byte-for-byte identical),
2. change the release block in place,
3. validate the whole new stack config with the program's own settings models
   (`parse_stack_config`); an invalid request raises the program's RunError and the file is not
   written,
4. render the stack before and after and report the desired-state diff the edit causes,
5. write the file, and print the equivalent `pulumi config` commands.

Decisions, after what Flagger and Argo Rollouts do on promotion and abort:
- `canary promote`: the canary version becomes the stable version and the canary track is
  removed: the stack becomes `rolling` at the canary's version (a canary with no canary is not a
  valid release). The step plan and header go with the canary block; `canary start --steps`
  sets a plan again.
- `canary abort`: all traffic back to stable, canary removed (`rolling` at the stable version).
- `canary start` from `rolling`: the running version becomes `stable`; from `canary`: the
  canary's version is replaced and its weight restarts (plan and header are kept). The weight
  defaults to the plan's first step, or 0 (header-only) without a plan.
- `rollback`: blue-green flips `active` back; a canary is aborted; rolling restores the previous
  live version found in the stack file's git history.
"""

from __future__ import annotations

import copy
import io
import pathlib
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from plexictl import diff, engine

RELEASE_KEY = "plexichat:release"


class ReleaseError(Exception):
    """The request does not apply to the stack's current release (wrong strategy, no plan...)."""


class NothingToDo(ReleaseError):
    """The request would leave the release block as it is: nothing to write, review or apply."""


@dataclass
class Edit:
    stack: str
    path: pathlib.Path
    message: str
    before: dict[str, Any]
    after: dict[str, Any]
    old_text: str
    new_text: str
    diff: diff.StackDiff | None = None

    def pulumi_commands(self) -> list[str]:
        """The same edit as plain `pulumi config` commands (what the CLI would write)."""
        key = RELEASE_KEY.partition(":")[2]
        commands = []
        for change in diff.field_changes(self.before, self.after, key):
            if change.after is diff.ABSENT:
                commands.append(f"pulumi config rm --path {shlex.quote(change.path)} -s {self.stack}")
                continue
            for path, value in _leaves(change.path, change.after):
                commands.append(_config_set(path, value, self.stack))
        return commands


def _leaves(path: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(diff.key_path(path, str(k)), v)]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(f"{path}[{i}]", v)]
    return [(path, value)]


def _config_set(path: str, value: Any, stack: str) -> str:
    # With --path, the CLI stores "true"/"false" as booleans and integers as numbers; a string
    # that looks like one must say it is a string.
    text = str(value).lower() if isinstance(value, bool) else str(value)
    typed = isinstance(value, str) and (text in ("true", "false") or text.lstrip("-").isdigit())
    return (f"pulumi config set --path {shlex.quote(path)} {shlex.quote(text)}"
            f"{' --type string' if typed else ''} -s {stack}")


# ---------------------------------------------------------------------------------------------
# Editing the stack file


def _yaml() -> YAML:
    round_trip = YAML()
    round_trip.preserve_quotes = True
    round_trip.indent(mapping=2, sequence=4, offset=2)  # the stack files' style
    round_trip.width = 4096  # never re-wrap a long line
    return round_trip


def _plain(value: Any) -> Any:
    """Round-trip nodes (quoted strings, ints with their formatting) as plain Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def _set_keys(block: CommentedMap, wanted: dict[str, Any]) -> None:
    """Make `block` hold exactly `wanted`, in that order, touching only keys that change."""
    trailing = _take_trailing_comment(block)
    for key in [k for k in block if k not in wanted]:
        del block[key]
    for index, (key, value) in enumerate(wanted.items()):
        if key not in block:
            block.insert(index, key, value)
        elif _plain(block[key]) != _plain(value):
            block[key] = value
    if trailing is not None:
        _put_trailing_comment(block, trailing)


# ruamel keeps the comment lines that follow a mapping (e.g. above the next stack key) on the
# deepest last value inside it; when that value is deleted they would vanish with it.
def _deepest_last(node: CommentedMap) -> tuple[CommentedMap, str]:
    key = list(node)[-1]
    value = node[key]
    if isinstance(value, CommentedMap) and value:
        return _deepest_last(value)
    return node, key


def _take_trailing_comment(block: CommentedMap):
    holder, key = _deepest_last(block)
    slot = holder.ca.items.get(key)
    token = slot[2] if slot and len(slot) > 2 else None
    if token is None or "\n" not in token.value:
        return None
    inline, lines = token.value.split("\n", 1)
    if not lines.strip():
        return None
    slot[2] = copy.copy(token) if inline else None
    if inline:
        slot[2].value = inline + "\n"
    token.value = "\n" + lines
    return token


def _put_trailing_comment(block: CommentedMap, token) -> None:
    holder, key = _deepest_last(block)
    slot = holder.ca.items.setdefault(key, [None, None, None, None])
    if slot[2] is None:
        slot[2] = token
    else:
        slot[2].value = slot[2].value.rstrip("\n") + token.value


def _flow_list(values: list[int]) -> CommentedSeq:
    seq = CommentedSeq(values)
    seq.fa.set_flow_style()  # `steps: [10, 25, 50, 100]`, as people write it
    return seq


# ---------------------------------------------------------------------------------------------
# The release changes. Each takes the release block (a CommentedMap), changes it in place and
# returns a one-line description for the operator.


def live_version(release: dict[str, Any]) -> str | None:
    """The version that receives the live (unmatched) traffic's majority: what a rollback restores."""
    strategy = release.get("strategy")
    if strategy == "rolling":
        return release.get("version")
    if strategy == "canary":
        return release.get("stable")
    if strategy == "blueGreen":
        return release.get(release.get("active"))
    return None


def _require(release: CommentedMap, *strategies: str, hint: str) -> None:
    if release.get("strategy") not in strategies:
        raise ReleaseError(
            f"the stack's release strategy is {release.get('strategy')!r}; this command needs "
            f"{' or '.join(strategies)}. {hint}"
        )


def canary_start(release: CommentedMap, version: str, weight: int | None = None,
                 steps: list[int] | None = None) -> str:
    _require(release, "rolling", "canary", hint="Blue-green stacks release with `deploy` and `switch`.")
    if release["strategy"] == "rolling":
        stable = release["version"]
        canary = CommentedMap()
        canary["version"] = version
        canary["weight"] = weight if weight is not None else (steps[0] if steps else 0)
        if steps:
            canary["steps"] = _flow_list(steps)
        _set_keys(release, {"strategy": "canary", "stable": stable, "canary": canary})
        return f"canary {version} started at {canary['weight']}% next to stable {stable}" + _unreachable(canary)
    canary = release["canary"]
    if steps:
        canary["steps"] = _flow_list(steps)
    plan = list(canary.get("steps") or [])
    new_weight = weight if weight is not None else (plan[0] if plan else 0)
    previous = canary["version"]
    canary["version"] = version
    _set_weight(canary, new_weight)
    return f"canary version {previous} -> {version}, weight restarts at {new_weight}%" + _unreachable(canary)


def _unreachable(canary: CommentedMap) -> str:
    """A warning when no request can reach the canary yet (weight 0 and no header route)."""
    if canary.get("weight") or canary.get("header"):
        return ""
    return ("; note: no request reaches it yet (weight 0, no header route): `canary set WEIGHT` "
            "or `canary start --steps`")


def _set_weight(canary: CommentedMap, weight: int) -> None:
    if "weight" in canary:
        canary["weight"] = weight
    else:
        canary.insert(1, "weight", weight)


def canary_set(release: CommentedMap, weight: int) -> str:
    _require(release, "canary", hint="Start one with `canary start VERSION`.")
    previous = release["canary"].get("weight", 0)
    _set_weight(release["canary"], weight)
    return f"canary weight {previous}% -> {weight}%"


def canary_next(release: CommentedMap) -> str:
    _require(release, "canary", hint="Start one with `canary start VERSION`.")
    canary = release["canary"]
    plan = list(canary.get("steps") or [])
    if not plan:
        raise ReleaseError(
            "the canary has no step plan (plexichat:release.canary.steps); use `canary set WEIGHT` "
            "or add a plan such as steps: [10, 25, 50, 100]"
        )
    current = canary.get("weight", 0)
    later = [step for step in plan if step > current]
    if not later:
        raise ReleaseError(
            f"the canary is already at the last step ({current}%) of {plan}; "
            "promote it with `canary promote`"
        )
    _set_weight(canary, later[0])
    return f"canary weight {current}% -> {later[0]}% (step {plan.index(later[0]) + 1} of {len(plan)})"


def canary_promote(release: CommentedMap) -> str:
    _require(release, "canary", hint="There is no canary to promote.")
    version, stable = release["canary"]["version"], release["stable"]
    _set_keys(release, {"strategy": "rolling", "version": version})
    return f"canary {version} promoted: it replaces stable {stable}, canary track removed"


def canary_abort(release: CommentedMap) -> str:
    _require(release, "canary", hint="There is no canary to abort.")
    version, stable = release["canary"]["version"], release["stable"]
    _set_keys(release, {"strategy": "rolling", "version": stable})
    return f"canary {version} aborted: all traffic back to stable {stable}, canary track removed"


def switch(release: CommentedMap) -> str:
    _require(release, "blueGreen", hint="Only blue-green stacks have colours to switch.")
    previous = release["active"]
    release["active"] = "green" if previous == "blue" else "blue"
    return (f"active colour {previous} -> {release['active']}: live traffic now goes to "
            f"{release[release['active']]} (was {release[previous]})")


def deploy(release: CommentedMap, version: str) -> str:
    _require(release, "blueGreen", "rolling", hint="Canary stacks release with `canary start VERSION`.")
    if release["strategy"] == "rolling":
        previous = release["version"]
        release["version"] = version
        return f"version {previous} -> {version} (rolling update)"
    inactive = "green" if release["active"] == "blue" else "blue"
    previous = release[inactive]
    release[inactive] = version
    return (f"{version} deployed on the inactive colour {inactive} (was {previous}); "
            f"smoke-test it on the preview route, then `switch`")


def rollback(release: CommentedMap, history: Callable[[], list[tuple[str, dict]]]) -> str:
    """Undo the last release edit: restore the release block as it was before it.

    With git history this restores exactly what the last edit changed (a `deploy` onto the idle
    colour is undone without a flip; a weight step goes back one step). A state the stack was
    rolled back *from* is never restored again, so a second rollback goes further back instead
    of re-deploying the release that was just abandoned. Without history: blue-green flips
    back, a canary is aborted.
    """
    current = _plain(release)
    try:
        target = _rollback_target(current, history())
        history_error = None
    except ReleaseError as error:
        target, history_error = None, error
    if target is not None:
        commit, block = target
        changes = "; ".join(_differences(current, block))
        for key in [k for k in release if k not in block]:
            del release[key]
        for key, value in block.items():
            if release.get(key) != value:
                release[key] = value
        return f"rollback: {changes} (as at commit {commit[:10]})"
    strategy = release.get("strategy")
    if strategy == "blueGreen":
        return "rollback: " + switch(release)
    if strategy == "canary":
        return "rollback: " + canary_abort(release)
    if history_error is not None:
        raise history_error
    raise ReleaseError(
        f"no earlier version than {release.get('version')} in the git history of the stack "
        "file; use `deploy VERSION` with the version to go back to"
    )


def _rollback_target(current: dict, history: list[tuple[str, dict]]) -> tuple[str, dict] | None:
    """The newest earlier release block, skipping states the stack was rolled back from (they
    are newer than an earlier occurrence of the current state)."""
    blocks = [_plain(block) for _, block in history]
    for index, (commit, _) in enumerate(history):
        block = blocks[index]
        if block != current and current not in blocks[index + 1:]:
            return commit, block
    return None


def _differences(before: Any, after: Any, path: str = "") -> list[str]:
    """`version v1.7.0 -> v1.6.0`-style lines for what a rollback changes."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [line for key in [*before, *(k for k in after if k not in before)]
                for line in _differences(before.get(key), after.get(key), f"{path}.{key}".lstrip("."))]
    if before == after:
        return []
    return [f"{path} {'(none)' if before is None else before} -> {'(none)' if after is None else after}"]


def git_history(path: pathlib.Path) -> Callable[[], list[tuple[str, dict]]]:
    """The release block of `path` at each commit that touched it, newest first."""
    def releases() -> list[tuple[str, dict]]:
        def git(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(["git", *args], cwd=path.parent, capture_output=True, text=True)

        log = git("log", "--format=%H", "--", path.name)
        if log.returncode != 0:
            raise ReleaseError(f"cannot read the git history of {path.name}: {log.stderr.strip()}")
        found = []
        for commit in log.stdout.split():
            shown = git("show", f"{commit}:./{path.name}")
            if shown.returncode == 0:
                config = (yaml.safe_load(shown.stdout) or {}).get("config") or {}
                if isinstance(config.get(RELEASE_KEY), dict):
                    found.append((commit, config[RELEASE_KEY]))
        return found

    return releases


# ---------------------------------------------------------------------------------------------
# Running a command on a stack file


def edit_stack(
    stack: str,
    path: pathlib.Path,
    change: Callable[[CommentedMap], str],
    *,
    root: pathlib.Path = engine.ROOT,
    write: bool = True,
    render: bool = True,
) -> Edit:
    """Apply `change` to the release block of `path`; validate, diff, and write it.

    Raises ReleaseError (request does not apply) or the program's pulumi.RunError (the result is
    invalid); in both cases the file is untouched.
    """
    from components.settings import parse_stack_config

    old_text = path.read_text()
    round_trip = _yaml()
    document = round_trip.load(old_text)
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict) or not isinstance(config.get(RELEASE_KEY), dict):
        raise ReleaseError(f"{path.name} has no {RELEASE_KEY} block to edit")
    release = config[RELEASE_KEY]
    before = _plain(release)
    message = change(release)
    if _plain(release) == before:
        raise NothingToDo(f"nothing to do: the release is already as requested ({message})")
    buffer = io.StringIO()
    round_trip.dump(document, buffer)
    new_text = buffer.getvalue()

    old_config = engine.stack_config(stack, root, stack_file=yaml.safe_load(old_text))
    new_config = engine.stack_config(stack, root, stack_file=yaml.safe_load(new_text))
    config, secret_keys = new_config
    settings = parse_stack_config(config, stack, secret_keys)  # raises the program's own RunError
    message += _flip_capacity_note(before, _plain(release), settings)
    edit = Edit(stack, path, message, before, _plain(release), old_text, new_text)
    if render:
        after = engine.run_program(stack, root=root, config=new_config[0], secret_keys=new_config[1])
        try:
            before_rendering = engine.run_program(
                stack, root=root, config=old_config[0], secret_keys=old_config[1])
        except pulumi.RunError:
            before_rendering = None  # the edit repairs a broken file: show what it now builds
        edit.diff = diff.diff(before_rendering, after, stack)
        if before_rendering is None:
            edit.diff.note = f"{path.name} was invalid before this edit; everything shows as added"
    if write and new_text != old_text:
        path.write_text(new_text)
    return edit


def _flip_capacity_note(before: dict, after: dict, settings: Any) -> str:
    """A warning when a flip (switch, or a rollback that flips back) moves live traffic onto a
    colour that nothing has sized for it: without requestsPerSecondPerPod it idled at minReplicas."""
    if not (before.get("strategy") == after.get("strategy") == "blueGreen"
            and before.get("active") != after.get("active")):
        return ""
    web = settings.workloads["web"]  # the settings guarantee the web workload's name
    if web.requests_per_second_per_pod:
        return ""
    return (f"; note: {after['active']} has been idling at minReplicas ({web.min_replicas}) and now "
            "takes all live traffic: under heavy load raise workloads.web.minReplicas in this "
            "change, or set workloads.web.requestsPerSecondPerPod so both colours stay sized")


NOT_APPLIED = 3
"""Exit code of `--apply` without the Pulumi CLI: the edit is written, nothing was deployed."""


def apply(stack: str, project_dir: pathlib.Path) -> int:
    """`pulumi up` for the stack through the Automation API, if the Pulumi CLI is installed."""
    command = f"pulumi up --stack {stack} --cwd {shlex.quote(str(project_dir))}"
    if shutil.which("pulumi") is None:
        print(f"--apply: the Pulumi CLI is not installed here, so nothing was deployed. "
              f"Run this where it is (after committing the edit):\n  {command}")
        return NOT_APPLIED
    from pulumi import automation

    # select, not create: applying to a stack that does not exist in the logged-in backend would
    # create every resource afresh next to the real ones.
    try:
        workspace_stack = automation.select_stack(stack_name=stack, work_dir=str(project_dir))
        # The same mandatory policy pack as every CI preview and deployment: the emergency
        # path is not a way around the rules.
        result = workspace_stack.up(
            on_output=print, show_secrets=False, policy_packs=[str(project_dir / "policy")]
        )
    except automation.CommandError as error:
        print(f"error: pulumi up failed for stack {stack}: {error}")
        return 1
    print(f"pulumi up: {result.summary.result}; {result.summary.resource_changes}")
    return 0
