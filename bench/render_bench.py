"""Render benchmark (`make bench`): how close the program and the commands are to their floors.

Prints, for each stack, the median wall time of running the real `__main__.py` under the mock
engine next to floors measured in the same run:
  - import floor: a fresh interpreter importing pulumi, pulumi_kubernetes and pulumi_aws;
  - engine floor: the mock engine registering the same number of trivial resources;
  - payload floor: the mock engine registering the very resources the program registered, with
    the same inputs, from a flat loop (no typed SDK classes, no components' code, no Outputs
    between resources): what the SDK charges for the stack's content alone;
  - SDK import floor: a fresh interpreter importing exactly the SDK modules the program loads
    (nothing of ours), the part of an end-to-end render no program change can remove.
Then the commands as an operator runs them, on a scratch copy of the project at the tests' pinned
releases, each as a ratio to one `plexictl render --stack prod` measured in the same rounds.
Targets (issue 2): program time within 1.5x the engine floor for its resource count; render time
linear in the number of workloads. Targets (issue 11): `diff --all-stacks` within 1.5x one render,
a release command (`canary set --dry-run`) within 1.2x, and the prod render end to end within
1.3x its floor (SDK import floor + payload floor).
This is a measurement, not a test: it never fails on a slow machine.

`python bench/render_bench.py commands` measures the commands only.
"""

from __future__ import annotations

import functools
import gc
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plexictl import offline  # noqa: E402

RUNS = 7
COMMAND_ROUNDS = 5


def median_seconds(fn: Callable[[], object], runs: int = RUNS) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def engine_floor(count: int) -> float:
    import pulumi

    def program() -> None:
        for i in range(count):
            pulumi.CustomResource("plexichat:bench:Trivial", f"trivial-{i}", {"index": i})

    return median_seconds(lambda: offline.run(program, "bench"))


def payload_floor(rendering: offline.Rendering) -> float:
    import pulumi

    def program() -> None:
        for index, resource in enumerate(rendering.resources):
            name = f"{resource.name}-{index}"
            if resource.custom:
                pulumi.CustomResource(resource.type, name, dict(resource.inputs))
            else:
                pulumi.ComponentResource(resource.type, name)

    return median_seconds(lambda: offline.run(program, "bench"))


def fresh_interpreter_seconds(code: str) -> float:
    """Median wall time of `python -c code` in a new process."""
    return median_seconds(lambda: subprocess.run([sys.executable, "-c", code], check=True), 5)


def import_floor() -> float:
    return fresh_interpreter_seconds("import pulumi, pulumi_kubernetes, pulumi_aws")


def sdk_import_floor() -> float:
    """A fresh interpreter importing the SDK modules a prod render loads, under the program's
    collector settings, and leaving without teardown (as `plexictl` does)."""
    offline.run_program("prod")
    loaded = sorted(
        name
        for name, module in list(sys.modules.items())
        if name.split(".")[0] in ("pulumi", "pulumi_aws", "pulumi_kubernetes")
        and type(module) is types.ModuleType  # lazily registered SDK modules never ran: skip them
    )
    return fresh_interpreter_seconds(
        f"import gc, importlib, os; gc.set_threshold(*{gc.get_threshold()!r})\n"
        f"for name in {loaded!r}: importlib.import_module(name)\n"
        "os._exit(0)"
    )


def scaled_config(workloads: int) -> tuple[dict[str, str], list[str]]:
    """The dev stack with one web workload and `workloads - 1` workers."""
    config, secret_keys = offline.stack_config("dev")
    base = json.loads(config["plexichat:workloads"])
    scaled = {"web": base["web"]}
    for i in range(1, workloads):
        scaled[f"worker{i}"] = base["worker"]
    config["plexichat:workloads"] = json.dumps(scaled)
    return config, secret_keys


def stacks_against_floors() -> float:
    """The per-stack table; returns prod's payload floor."""
    print(
        f"{'stack':<10} {'resources':>9} {'program s':>10} {'floor s':>8} {'ratio':>6}"
        f" {'payload s':>10} {'ratio':>6}  target: ratio to the engine floor <= 1.5"
    )
    payload = 0.0
    for stack in ("dev", "staging", "prod"):
        offline.run_program(stack)  # warm imports
        rendering = offline.run_program(stack)
        count = len(rendering.resources)
        program = median_seconds(functools.partial(offline.run_program, stack))
        floor, payload = engine_floor(count), payload_floor(rendering)
        print(
            f"{stack:<10} {count:>9} {program:>10.3f} {floor:>8.3f} {program / floor:>6.2f}"
            f" {payload:>10.3f} {program / payload:>6.2f}"
        )
    return payload


def linear_growth() -> None:
    print(f"{'workloads':>9} {'resources':>9} {'program s':>10} {'floor s':>8} {'ratio':>6}")
    sizes, times = (10, 20, 30, 40, 50), []
    for n in sizes:
        config, secret_keys = scaled_config(n)

        def run(config: dict[str, str] = config, secret_keys: list[str] = secret_keys) -> offline.Rendering:
            return offline.run_program("dev", config=config, secret_keys=secret_keys)

        count = len(run().resources)
        program = median_seconds(run, 5)
        floor = engine_floor(count)
        times.append(program)
        print(f"{n:>9} {count:>9} {program:>10.3f} {floor:>8.3f} {program / floor:>6.2f}")
    # Linear growth: time = fixed part (data tier, edge: paid once) + n x the cost of a workload.
    # A least-squares line through every size, and how far any size strays from it.
    slope, intercept = statistics.linear_regression(sizes, times)
    r_squared = statistics.correlation(sizes, times) ** 2
    worst = max(abs(t - (intercept + slope * n)) / t for n, t in zip(sizes, times, strict=True))
    print(
        f"\nlinear fit: {intercept:.3f} s + {1000 * slope:.1f} ms per workload;"
        f" R^2 {r_squared:.3f}, largest deviation from the line {100 * worst:.1f}%"
    )


COMMANDS = {
    # name: (arguments after `plexictl --project-dir <copy>`, target as a ratio to the render)
    "render --stack prod": (["render", "--stack", "prod", "--out", "{out}"], None),
    # Base and head of every stack; a DR standby also renders the primary it references.
    f"diff --all-stacks ({2 * len(offline.stack_names())} renders)": (["diff", "--all-stacks", "--base", "HEAD"], 1.5),
    "canary set --dry-run (2 renders)": (["canary", "set", "25", "--stack", "prod", "--dry-run"], 1.2),
}


def commands() -> float:
    """Each command end to end, interleaved round by round so that a noisy neighbour slows all of
    them alike; the median per command. Returns the render's."""
    from tests.release_state import project_copy  # the pinned releases: the same work every day

    with tempfile.TemporaryDirectory() as scratch:
        project = project_copy(pathlib.Path(scratch), git=True)
        with (project / "__main__.py").open("a") as program:  # a program change: the diff renders all six
            program.write("# an edit\n")
        samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for _ in range(COMMAND_ROUNDS):
            for name, (arguments, _) in COMMANDS.items():
                command = [sys.executable, "-m", "plexictl", "--project-dir", str(project)]
                command += [a.replace("{out}", f"{scratch}/out") for a in arguments]
                start = time.perf_counter()
                subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
                samples[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(times) for name, times in samples.items()}
    render = medians["render --stack prod"]
    print(f"commands end to end (median of {COMMAND_ROUNDS}, interleaved), as a ratio to one render:")
    for name, (_, target) in COMMANDS.items():
        ratio = f"{medians[name] / render:>5.2f}x   target <= {target}x" if target else ""
        print(f"  {name:<34} {medians[name]:>6.3f} s  {ratio}")
    return render


def render_against_its_floor(render: float, payload: float) -> None:
    sdk_imports = sdk_import_floor()
    floor = sdk_imports + payload
    print(
        f"  prod render vs its floor: SDK import floor {sdk_imports:.3f} s + payload floor {payload:.3f} s"
        f" = {floor:.3f} s; {render / floor:.2f}x   target <= 1.3x"
    )


def main() -> None:
    if sys.argv[1:] == ["commands"]:
        render = commands()
        offline.run_program("prod")
        render_against_its_floor(render, payload_floor(offline.run_program("prod")))
        return
    print(f"import floor (pulumi + pulumi_kubernetes + pulumi_aws, fresh process): {import_floor():.3f} s")
    print()
    payload = stacks_against_floors()
    print()
    render_against_its_floor(commands(), payload)
    print()
    linear_growth()


if __name__ == "__main__":
    main()
