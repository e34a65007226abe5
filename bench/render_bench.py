"""Render benchmark (`make bench`): how close the program is to the cost of the engine itself.

Prints, for each stack, the median wall time of running the real `__main__.py` under the mock
engine next to floors measured in the same run:
  - import floor: a fresh interpreter importing pulumi, pulumi_kubernetes and pulumi_aws;
  - engine floor: the mock engine registering the same number of trivial resources;
  - payload floor: the mock engine registering the very resources the program registered, with
    the same inputs, from a flat loop (no typed SDK classes, no components' code, no Outputs
    between resources): what the SDK charges for the stack's content alone;
  - SDK import floor: a fresh interpreter importing exactly the SDK modules the program loads
    (nothing of ours), the part of an end-to-end render no program change can remove.
Targets (issue 2): program time within 1.5x the engine floor for its resource count; prod
rendered end to end (`python -m plexictl render`) in under 1.5 s; render time linear in the
number of workloads. This is a measurement, not a test: it never fails on a slow machine.
"""

from __future__ import annotations

import gc
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import types

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plexictl import engine  # noqa: E402

RUNS = 7


def median_seconds(fn, runs: int = RUNS) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def engine_floor(count: int) -> float:
    import pulumi

    def program():
        for i in range(count):
            pulumi.CustomResource("plexichat:bench:Trivial", f"trivial-{i}", {"index": i})

    return median_seconds(lambda: engine.run(program, "bench"))


def payload_floor(rendering: engine.Rendering) -> float:
    import pulumi

    def program():
        for index, resource in enumerate(rendering.resources):
            name = f"{resource.name}-{index}"
            if resource.custom:
                pulumi.CustomResource(resource.type, name, dict(resource.inputs))
            else:
                pulumi.ComponentResource(resource.type, name)

    return median_seconds(lambda: engine.run(program, "bench"))


def fresh_interpreter_seconds(code: str) -> float:
    """Median wall time of `python -c code` in a new process."""
    return median_seconds(lambda: subprocess.run([sys.executable, "-c", code], check=True), 5)


def import_floor() -> float:
    return fresh_interpreter_seconds("import pulumi, pulumi_kubernetes, pulumi_aws")


def sdk_import_floor() -> float:
    """A fresh interpreter importing the SDK modules a prod render loads, under the program's
    collector settings, and leaving without teardown (as `plexictl` does)."""
    engine.run_program("prod")
    loaded = sorted(
        name for name, module in list(sys.modules.items())
        if name.split(".")[0] in ("pulumi", "pulumi_aws", "pulumi_kubernetes")
        and type(module) is types.ModuleType  # lazily registered SDK modules never ran: skip them
    )
    return fresh_interpreter_seconds(
        f"import gc, importlib, os; gc.set_threshold(*{gc.get_threshold()!r})\n"
        f"for name in {loaded!r}: importlib.import_module(name)\n"
        "os._exit(0)"
    )


def end_to_end(stack: str) -> float:
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "plexictl", "render", "--stack", stack, "--out", out]
        return median_seconds(
            lambda: subprocess.run(command, cwd=ROOT, check=True, capture_output=True), 5
        )


def scaled_config(workloads: int) -> tuple[dict[str, str], list[str]]:
    """The dev stack with one web workload and `workloads - 1` workers."""
    config, secret_keys = engine.stack_config("dev")
    base = json.loads(config["plexichat:workloads"])
    scaled = {"web": base["web"]}
    for i in range(1, workloads):
        scaled[f"worker{i}"] = base["worker"]
    config["plexichat:workloads"] = json.dumps(scaled)
    return config, secret_keys


def main() -> None:
    print(f"import floor (pulumi + pulumi_kubernetes + pulumi_aws, fresh process): {import_floor():.3f} s")
    print()
    print(f"{'stack':<10} {'resources':>9} {'program s':>10} {'floor s':>8} {'ratio':>6}"
          f" {'payload s':>10} {'ratio':>6}  target: ratio to the engine floor <= 1.5")
    for stack in ("dev", "staging", "prod"):
        engine.run_program(stack)  # warm imports
        rendering = engine.run_program(stack)
        count = len(rendering.resources)
        program = median_seconds(lambda: engine.run_program(stack))
        floor, payload = engine_floor(count), payload_floor(rendering)
        print(f"{stack:<10} {count:>9} {program:>10.3f} {floor:>8.3f} {program / floor:>6.2f}"
              f" {payload:>10.3f} {program / payload:>6.2f}")
    print()
    prod, sdk_imports = end_to_end("prod"), sdk_import_floor()
    print(f"prod end to end (python -m plexictl render): {prod:.3f} s  (target < 1.5 s)")
    print(f"  of which the SDK modules it loads, imported alone: {sdk_imports:.3f} s;"
          f" the rest (interpreter, our code, the run, files): {prod - sdk_imports:.3f} s")
    print()
    print(f"{'workloads':>9} {'resources':>9} {'program s':>10} {'floor s':>8} {'ratio':>6}")
    sizes, times = (10, 20, 30, 40, 50), []
    for n in sizes:
        config, secret_keys = scaled_config(n)
        run = lambda: engine.run_program("dev", config=config, secret_keys=secret_keys)  # noqa: E731
        count = len(run().resources)
        program = median_seconds(run, 5)
        floor = engine_floor(count)
        times.append(program)
        print(f"{n:>9} {count:>9} {program:>10.3f} {floor:>8.3f} {program / floor:>6.2f}")
    # Linear growth: time = fixed part (data tier, edge: paid once) + n x the cost of a workload.
    # A least-squares line through every size, and how far any size strays from it.
    slope, intercept = statistics.linear_regression(sizes, times)
    r_squared = statistics.correlation(sizes, times) ** 2
    worst = max(abs(t - (intercept + slope * n)) / t for n, t in zip(sizes, times))
    print(f"\nlinear fit: {intercept:.3f} s + {1000 * slope:.1f} ms per workload;"
          f" R^2 {r_squared:.3f}, largest deviation from the line {100 * worst:.1f}%")


if __name__ == "__main__":
    main()
