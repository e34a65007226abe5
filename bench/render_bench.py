"""Render benchmark (`make bench`): how close the program is to the cost of the engine itself.

Prints, for each stack, the median wall time of running the real `__main__.py` under the mock
engine next to two floors measured in the same run:
  - import floor: a fresh interpreter importing pulumi, pulumi_kubernetes and pulumi_aws;
  - engine floor: the mock engine registering the same number of trivial resources.
Targets (issue 2): program time within 1.5x the engine floor for its resource count; prod
rendered end to end (`python -m plexictl render`) in under 1.5 s; render time linear in the
number of workloads. This is a measurement, not a test: it never fails on a slow machine.
"""

from __future__ import annotations

import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

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


def import_floor() -> float:
    code = "import pulumi, pulumi_kubernetes, pulumi_aws"
    return median_seconds(lambda: subprocess.run([sys.executable, "-c", code], check=True), 5)


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
    print(f"{'stack':<10} {'resources':>9} {'program s':>10} {'floor s':>8} {'ratio':>6}  target <= 1.5")
    for stack in ("dev", "staging", "prod"):
        engine.run_program(stack)  # warm imports
        count = len(engine.run_program(stack).resources)
        program = median_seconds(lambda: engine.run_program(stack))
        floor = engine_floor(count)
        print(f"{stack:<10} {count:>9} {program:>10.3f} {floor:>8.3f} {program / floor:>6.2f}")
    print()
    prod = end_to_end("prod")
    print(f"prod end to end (python -m plexictl render): {prod:.3f} s  (target < 1.5 s)")
    print()
    print(f"{'workloads':>9} {'resources':>9} {'program s':>10} {'floor s':>8} {'ratio':>6}")
    sizes, times = (10, 25, 50), []
    for n in sizes:
        config, secret_keys = scaled_config(n)
        run = lambda: engine.run_program("dev", config=config, secret_keys=secret_keys)  # noqa: E731
        count = len(run().resources)
        program = median_seconds(run, 5)
        floor = engine_floor(count)
        times.append(program)
        print(f"{n:>9} {count:>9} {program:>10.3f} {floor:>8.3f} {program / floor:>6.2f}")
    # Linear growth: the cost of one more workload is the same at every size (the stack's fixed
    # part, data tier and edge, is paid once and cancels out of the slopes).
    slopes = [(t2 - t1) / (n2 - n1) for (n1, t1), (n2, t2) in zip(zip(sizes, times), list(zip(sizes, times))[1:])]
    print("\nmarginal cost per workload: " + ", ".join(
        f"{1000 * slope:.1f} ms ({a}->{b})" for slope, a, b in zip(slopes, sizes, sizes[1:])
    ) + f"; ratio {max(slopes) / min(slopes):.2f} (1.0 = linear)")


if __name__ == "__main__":
    main()
