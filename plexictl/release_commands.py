"""Release commands: `canary start|set|next|promote|abort`, `switch`, `deploy`, `rollback`.

Each command is a small, reviewable edit of `plexichat:release` in `Pulumi.<stack>.yaml` — the
same edit an operator could make by hand or with `pulumi config set --path` — so the release
state lives in git, not in a controller's memory:

1. read the stack file (a YAML error or a key given twice is refused, naming file and line),
   and refuse a command whose input keys are invalid now (`@reads`),
2. load it with ruamel.yaml's round-trip mode (comments, quoting, key order and flow-style
   lists survive; untouched lines stay byte-for-byte identical) and change the release block,
3. validate the whole new stack config with the program's own settings models
   (`parse_stack_config`); an invalid request raises the program's RunError and the file is not
   written,
4. render the stack before and after and report the desired-state diff the edit causes,
5. write the file, and print the equivalent `pulumi config` commands.

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
- `rollback`: puts back the release that was live before the current one (see `rollback`).
"""

from __future__ import annotations

import copy
import io
import pathlib
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from components.config import versions
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
# returns a one-line description for the operator. `@reads` names the release keys a change
# reads: `edit_stack` refuses to run it while one of them is invalid, with the settings' own
# message, instead of failing halfway on (say) `active: purple`. Keys a change only writes may be
# invalid: the edit repairs them and the result is validated as a whole.

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
        return release.get(release.get("active"))
    return None


_HOW_IT_RELEASES = {
    "rolling": "a rolling stack releases with `deploy VERSION`, or starts a canary with "
               "`canary start VERSION`",
    "canary": "a canary stack moves with `canary set|next|promote|abort`, or replaces the canary "
              "with `canary start VERSION`",
    "blueGreen": "a blue-green stack releases with `deploy VERSION` (onto the idle colour), "
                 "then `switch`",
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
def canary_start(release: CommentedMap, version: str, weight: int | None = None,
                 steps: list[int] | None = None, header: dict[str, str] | None = None,
                 no_header: bool = False, history: History | None = None) -> str:
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
        last = _last_canary(history) if history and not (steps and (header or no_header)) else {}
        steps = steps or last.get("steps")
        if not header and not no_header and last.get("header"):
            header = last["header"]
            notes.append(f"header route {_header_text(header)} as in the last canary "
                         "(--no-header to start without)")
        canary["weight"] = weight if weight is not None else (steps[0] if steps else 0)
        if steps:
            canary["steps"] = _flow_list(steps)
        if header and not no_header:
            canary["header"] = CommentedMap(header)
        _set_keys(release, {"strategy": "canary", "stable": stable, "canary": canary})
        message = f"canary {version} started at {canary['weight']}% next to stable {stable}"
    else:
        canary = release["canary"]
        if steps:
            canary["steps"] = _flow_list(steps)
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
        notes.append("no request reaches it yet (weight 0, no header route): `canary set "
                     "WEIGHT`, or start with --steps or --header")
    return message + "".join(f"; {note}" for note in notes)


def _last_canary(history: History) -> dict[str, Any]:
    """The canary block of the newest commit that had one (its plan and header), or {}."""
    try:
        releases = history()
    except ReleaseError:
        return {}
    for _, block in releases:
        if block.get("strategy") == "canary" and isinstance(block.get("canary"), dict):
            return {k: _plain(v) for k, v in block["canary"].items() if k in ("steps", "header")}
    return {}


def _set_weight(canary: CommentedMap, weight: int) -> None:
    if "weight" in canary:
        canary["weight"] = weight
    else:
        canary.insert(1, "weight", weight)


def _canary_block(release: CommentedMap) -> CommentedMap:
    canary = release.get("canary")
    if not isinstance(canary, dict):
        raise ReleaseError(f"{RELEASE_KEY}.canary: required for strategy canary (a mapping with "
                           "the canary's version and weight), but not set")
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
            f"the canary is already at the last step ({current}%) of {plan}; "
            "promote it with `canary promote`"
        )
    _set_weight(canary, later[0])
    return f"canary weight {current}% -> {later[0]}% (step {plan.index(later[0]) + 1} of {len(plan)})"


def _kept_for_next_canary(canary: dict[str, Any]) -> str:
    kept = [f"header route {_header_text(canary['header'])}" if canary.get("header") else "",
            f"plan {list(canary['steps'])}" if canary.get("steps") else ""]
    kept = [k for k in kept if k]
    if not kept:
        return ""
    return (f"; the {' and '.join(kept)} come back with the next `canary start` (from git "
            "history; --no-header or --steps to change)")


@reads("strategy", "stable", "canary.version")
def canary_promote(release: CommentedMap) -> str:
    _require(release, "canary", command="canary promote")
    canary = _canary_block(release)
    version, stable = canary["version"], release["stable"]
    kept = _kept_for_next_canary(canary)
    _set_keys(release, {"strategy": "rolling", "version": version})
    return f"canary {version} promoted: it replaces stable {stable}, canary track removed" + kept


@reads("strategy", "stable", "canary.version")
def canary_abort(release: CommentedMap) -> str:
    _require(release, "canary", command="canary abort")
    canary = _canary_block(release)
    version, stable = canary["version"], release["stable"]
    kept = _kept_for_next_canary(canary)
    _set_keys(release, {"strategy": "rolling", "version": stable})
    return (f"canary {version} aborted: all traffic back to stable {stable}, canary track removed"
            + kept)


def _other(colour: str) -> str:
    return "green" if colour == "blue" else "blue"


@reads("strategy", "active", "blue", "green")
def switch(release: CommentedMap) -> str:
    _require(release, "blueGreen", command="switch")
    previous = release["active"]
    release["active"] = _other(previous)
    return (f"active colour {previous} -> {release['active']}: live traffic now goes to "
            f"{release[release['active']]} (was {release[previous]})")


@reads("strategy", "active")
def deploy(release: CommentedMap, version: str) -> str:
    _require(release, "blueGreen", "rolling", command="deploy")
    if release["strategy"] == "rolling":
        previous = release.get("version")
        release["version"] = version
        return f"version {previous} -> {version} (rolling update)"
    inactive = _other(release["active"])
    previous = release.get(inactive)
    release[inactive] = version
    return (f"{version} deployed on the inactive colour {inactive} (was {previous}); "
            f"smoke-test it on the preview route, then `switch`")


@reads("strategy", "version", "stable", "canary.version", "canary.weight", "active", "blue", "green")
def rollback(release: CommentedMap, history: History) -> str:
    """Put back the release that was live before the current one (docs: the rollback rule).

    - A canary (any weight): abort, all traffic back to stable; git history is not needed.
    - Rolling: `version` becomes the previously live version.
    - Blue-green: the idle colour gets the previously live version (if it does not hold it
      already) and becomes active; the current version stays on the now idle colour.

    "Previously live" comes from the stack file's git history, read as a stack of releases:
    each version that goes live is pushed, except that going back to an *older* version already
    on the stack is a rollback to it, which drops everything above it. The target is the entry
    below the current one. So a second rollback goes further back instead of returning to the
    release just abandoned, while a fix released after a rollback is rolled back normally.
    """
    strategy = release["strategy"]
    if strategy == "canary":
        return "rollback: " + canary_abort(release)
    current = settled_version(_plain(release))
    found = _previously_live(current, history())
    if found is None:
        raise ReleaseError(
            f"nothing to roll back to: {current} is the only version live in the git history of "
            "the stack file (commit each release edit so rollback can find the one before); "
            f"to go back to a version you know, use `deploy VERSION`"
            + (" and `switch`" if strategy == "blueGreen" else "")
        )
    commit, target = found
    since = f"{target} went live at commit {commit[:10]}"
    if strategy == "rolling":
        release["version"] = target
        return f"rollback: {target} goes live again in place of {current} (rolling update; {since})"
    idle = _other(release["active"])
    moved = ""
    if release[idle] != target:
        moved = f"{idle} gets {target} (was {release[idle]}), then "
        release[idle] = target
    release["active"] = idle
    return (f"rollback: {moved}{idle} becomes active: live traffic {current} -> {target}; "
            f"{current} stays on the idle colour {_other(idle)} ({since})")


def _previously_live(current: str | None, history: list[tuple[str, dict]]) -> tuple[str, str] | None:
    """(commit, version) of the version live before `current`, by the rule in `rollback`."""
    live: list[tuple[str, str]] = []  # (commit it went live at, version), oldest first
    for commit, block in reversed(history):
        version = settled_version(_plain(block))
        if version is None or (live and live[-1][1] == version):
            continue
        earlier = [i for i, (_, v) in enumerate(live) if v == version]
        if earlier and _older(version, live[-1][1]):
            del live[earlier[-1] + 1:]  # back to it: what went live after it was rolled back
        else:
            live.append((commit, version))
    if current is not None and (not live or live[-1][1] != current):
        live.append(("(working tree)", current))  # an uncommitted edit
    if len(live) < 2:
        return None
    return live[-2]


def _older(version: str, than: str) -> bool:
    """Whether `version` is an earlier release than `than`; a bare digest has no order, so going
    back to one already live counts as going back."""
    try:
        return versions.newer(than, version)
    except versions.UnorderedVersion:
        return True


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
            if shown.returncode != 0:
                continue
            try:
                config = engine.read_stack_file(path, shown.stdout).get("config") or {}
            except engine.StackFileError:
                continue  # a broken revision was never live: nothing to go back to
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
    from components.config.parse import ConfigError, parse_stack_config

    old_text = path.read_text()
    old_data = engine.read_stack_file(path, old_text)  # names the file and line of a YAML error
    if not isinstance(old_data.get("config", {}).get(RELEASE_KEY), dict):
        raise ReleaseError(f"{path.name} has no {RELEASE_KEY} block to edit")
    old_config = engine.stack_config(stack, root, stack_file=old_data)
    try:
        parse_stack_config(old_config[0], stack, old_config[1])
    except ConfigError as error:
        _refuse_on_what_it_reads(change, error.problems, path)
    round_trip = _yaml()
    document = round_trip.load(old_text)
    release = document["config"][RELEASE_KEY]
    before = _plain(release)
    message = change(release)
    if _plain(release) == before:
        raise NothingToDo(f"nothing to do: the release is already as requested ({message})")
    buffer = io.StringIO()
    round_trip.dump(document, buffer)
    new_text = buffer.getvalue()

    new_config = engine.stack_config(stack, root, stack_file=engine.read_stack_file(path, new_text))
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


def _refuse_on_what_it_reads(change: Callable[[CommentedMap], str],
                             problems: list[tuple[str, str]], path: pathlib.Path) -> None:
    """ReleaseError when a release key the change reads (`@reads`) is invalid now."""
    command = getattr(change, "func", change)  # a functools.partial carrying the arguments
    keys = [f"{RELEASE_KEY}.{key}" for key in getattr(command, "reads", ())]
    blocking = [(key, message) for key, message in problems
                if any(key == k or k.startswith(key + ".") or key.startswith(k + ".") for k in keys)]
    if blocking:
        raise ReleaseError(
            f"{path.name} is invalid where this command reads it; fix it first:\n"
            + "\n".join(f"  - {key}: {message}" for key, message in blocking))


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


def pulumi_up_command(stack: str, project_dir: pathlib.Path) -> list[str]:
    """The CLI equivalent of `apply`: the same stack, project and mandatory policy pack."""
    return ["pulumi", "up", "--stack", stack, "--cwd", str(project_dir),
            "--policy-pack", str(project_dir / "policy")]


def apply(stack: str, project_dir: pathlib.Path) -> int:
    """`pulumi up` for the stack through the Automation API, if the Pulumi CLI is installed."""
    if shutil.which("pulumi") is None:
        print(f"--apply: the Pulumi CLI is not installed here, so nothing was deployed. "
              f"Run this where it is (after committing the edit):\n"
              f"  {shlex.join(pulumi_up_command(stack, project_dir))}")
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
        print(f"error: pulumi up failed for stack {stack}: {error}", file=sys.stderr)
        return NOT_APPLIED
    print(f"pulumi up: {result.summary.result}; {result.summary.resource_changes}")
    return 0
