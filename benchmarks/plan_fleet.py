"""Benchmark: `fluxfleet plan` over a generated fleet of N stacks, in one process.

Generates N stacks like the examples in stacks/ (cluster names made unique) into a temporary directory,
then runs the plan for 1 stack and for all N stacks, each as a fresh `fluxfleet plan` process (cold start
included, as a user or CI job sees it). Prints the figures; the last line is one JSON object with
n, seconds, stacks_per_second, peak_rss_mb, ratio.

    .venv/bin/python benchmarks/plan_fleet.py [N]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
# Runs inside the measured process: plan the directory, write the JSON report, report its own figures.
CHILD = """
import json, resource, sys, time
from pathlib import Path
from fluxfleet.plan import plan_fleet
from modules.spec import stack_files
from fluxfleet.report import render
start = time.perf_counter()
fleet = plan_fleet(stack_files(Path(sys.argv[1])))
report = render(fleet, "json")
seconds = time.perf_counter() - start
print(json.dumps({"ok": fleet.ok, "stacks": len(fleet.stacks), "plan_seconds": seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def generate(directory: Path, count: int) -> None:
    yaml = YAML()
    examples = sorted((ROOT / "stacks").glob("Pulumi.*.yaml"))
    for index in range(count):
        example = examples[index % len(examples)]
        document = yaml.load(example.read_text())
        cluster = document["config"]["fluxfleet:cluster"]
        cluster["name"] = f"{cluster['name']}-{index:04d}"
        stack = example.name.split(".")[1]
        with (directory / f"Pulumi.{stack}-{index:04d}.yaml").open("w") as handle:
            yaml.dump(document, handle)


def measure(count: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        generate(directory, count)
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(directory)], capture_output=True, text=True, cwd=ROOT, check=True
        )
        wall = time.perf_counter() - start
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    if not figures["ok"] or figures["stacks"] != count:
        raise SystemExit(f"plan of {count} generated stacks failed: {figures}")
    return {**figures, "wall_seconds": wall}


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    one = measure(1)
    fleet = measure(count)
    ratio = fleet["wall_seconds"] / one["wall_seconds"]
    marginal_ms = (fleet["plan_seconds"] - one["plan_seconds"]) / max(count - 1, 1) * 1000
    print(
        f"1 stack:    {one['wall_seconds']:.2f} s wall ({one['plan_seconds']:.2f} s planning), "
        f"peak {one['peak_rss_mb']:.0f} MB"
    )
    print(
        f"{count} stacks: {fleet['wall_seconds']:.2f} s wall ({fleet['plan_seconds']:.2f} s planning), "
        f"peak {fleet['peak_rss_mb']:.0f} MB"
    )
    print(
        f"{count / fleet['wall_seconds']:.1f} stacks/s; {marginal_ms:.0f} ms per additional stack; "
        f"ratio {count}-stack/1-stack wall time {ratio:.1f}"
    )
    print(
        json.dumps(
            {
                "n": count,
                "seconds": round(fleet["wall_seconds"], 3),
                "stacks_per_second": round(count / fleet["wall_seconds"], 2),
                "peak_rss_mb": round(fleet["peak_rss_mb"], 1),
                "ratio": round(ratio, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
