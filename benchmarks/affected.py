"""Benchmark: `fluxfleet affected` when one profile value changes in a fleet of N stacks.

The fleet is plan_incremental.py's (five-line stack files over the example profiles, CHANGED of its stores also
using the small profile `canary`), with a fleet.yaml whose stages select stacks by profile, committed in a fresh git
repository; then the canary's apps path is changed and committed. `fluxfleet affected --base HEAD~1 --head HEAD
--format json` runs as a fresh process, as a pull request's job runs it: it must list exactly the canary's stacks.

Prints the figures; the last line is one JSON object with stacks, affected, expected and seconds.

    .venv/bin/python benchmarks/affected.py [N] [--changed C]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

from plan_fleet import FLUXFLEET, generate
from plan_incremental import AFTER, add_canaries

FLEET = """stages:
  - name: aks
    profiles: [aks-platform]
    maxConcurrency: 10
  - name: stores
    profiles: [edge-store]
    maxConcurrency: 50
    maxFailures: 10
"""


def git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=1000)
    parser.add_argument("--changed", type=int, default=10, help="stacks the profile change reaches")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        directory = root / "stacks"
        directory.mkdir()
        generate(directory, options.n, profiles=True)
        add_canaries(directory, options.changed)
        (directory / "fleet.yaml").write_text(FLEET)
        git(root, "init", "-q")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "fleet")
        canaries = sorted(path.name[len("Pulumi.") : -len(".yaml")] for path in directory.glob("Pulumi.*.yaml"))
        expected = [name for name in canaries if "canary" in (directory / f"Pulumi.{name}.yaml").read_text()]
        (directory / "profiles" / "canary.yaml").write_text(AFTER)
        git(root, "commit", "-q", "-am", "canary: apps from production")
        command = [str(FLUXFLEET), "affected", "--base", "HEAD~1", "--head", "HEAD", "--format", "json"]
        start = time.perf_counter()
        process = subprocess.run(command, cwd=root, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if process.returncode != 0:
            raise SystemExit(f"affected failed (exit {process.returncode}): {process.stderr.strip()}")
        report = json.loads(process.stdout)
    listed = [item["stack"] for item in report["stacks"]]
    print(f"{options.n} five-line stack files over profiles, fleet.yaml stages by profile")
    print(f"one profile value changed, used by {len(expected)} stacks: {len(listed)} affected in {seconds:.2f} s")
    result = {"stacks": options.n, "affected": listed, "expected": expected, "seconds": round(seconds, 3)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
