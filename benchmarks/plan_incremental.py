"""Benchmark: `fluxfleet plan` with its cache, when one profile value changes in a fleet of N stacks.

The fleet is plan_fleet.py's (`--profiles`: five-line stack files over the example profiles), with CHANGED of its
stores also using a small profile of their own (`canary`: their apps from another path). It is planned cold (an
empty cache), then the canary's path is changed and it is planned warm: only the stacks the change reaches are
planned again, the others come from the cache. Each plan is a fresh `fluxfleet plan --format json` process, as a CI
job runs it. The warm report must equal, byte for byte, that of a `--no-cache` plan of the changed fleet.

Prints the figures; the last line is one JSON object with stacks, changed, planned, from_cache, cold_seconds,
warm_seconds and identical.

    .venv/bin/python benchmarks/plan_incremental.py [N] [--changed C] [--jobs J]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from plan_fleet import FLUXFLEET, ROOT, generate

CANARY = "config:\n  fluxfleet:flux:\n    configurations:\n      gitops-demo:\n        kustomizations:\n"
BEFORE = CANARY + "          apps: {path: ./apps/staging}\n"
AFTER = CANARY + "          apps: {path: ./apps/production}\n"


def add_canaries(directory: Path, changed: int) -> None:
    """The first `changed` stores also use profile `canary` (after edge-store)."""
    (directory / "profiles" / "canary.yaml").write_text(BEFORE)
    stores = [path for path in sorted(directory.glob("Pulumi.*.yaml")) if "[edge-store]" in path.read_text()]
    for path in stores[:changed]:
        path.write_text(path.read_text().replace("[edge-store]", "[edge-store, canary]"))


def plan(directory: Path, report: Path, cache: Path, jobs: int | None, *options: str) -> tuple[float, str]:
    """One `fluxfleet plan` process: its wall time and its stderr."""
    command = [str(FLUXFLEET), "plan", "--stacks-dir", str(directory), "--format", "json", "--output", str(report)]
    command += [*(["--jobs", str(jobs)] if jobs else []), *options]
    start = time.perf_counter()
    process = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "FLUXFLEET_CACHE_DIR": str(cache)}
    )
    wall = time.perf_counter() - start
    if process.returncode not in (0, 1):
        raise SystemExit(f"plan failed (exit {process.returncode}): {process.stderr.strip()}")
    return wall, process.stderr


def counts(stderr: str) -> tuple[int, int]:
    """(planned, from the cache), as `plan` says them on stderr."""
    found = re.search(r"^planned (\d+) stack\(s\), (\d+) from the cache$", stderr, re.MULTILINE)
    if found is None:
        raise SystemExit(f"plan did not say what it took from the cache: {stderr.strip()}")
    return int(found[1]), int(found[2])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=1000)
    parser.add_argument("--changed", type=int, default=10, help="stacks the profile change reaches")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: fluxfleet's, one per core)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory, cache = Path(tmp) / "stacks", Path(tmp) / "cache"
        directory.mkdir()
        generate(directory, options.n, profiles=True)
        add_canaries(directory, options.changed)
        cold_seconds, stderr = plan(directory, Path(tmp) / "cold.json", cache, options.jobs)
        cold = counts(stderr)
        (directory / "profiles" / "canary.yaml").write_text(AFTER)
        warm_seconds, stderr = plan(directory, Path(tmp) / "warm.json", cache, options.jobs)
        planned, from_cache = counts(stderr)
        plan(directory, Path(tmp) / "fresh.json", cache, options.jobs, "--no-cache")
        identical = (Path(tmp) / "warm.json").read_bytes() == (Path(tmp) / "fresh.json").read_bytes()
        stacks = len(json.loads((Path(tmp) / "warm.json").read_text())["stacks"])
    print(f"{options.n} five-line stack files over profiles; {options.jobs or os.cpu_count()} job(s)")
    print(f"cold: {cold_seconds:.2f} s ({cold[0]} planned, {cold[1]} from the cache)")
    print(f"warm, one profile value changed in {options.changed} stacks: {warm_seconds:.2f} s")
    print(f"     {planned} planned, {from_cache} from the cache; report equal to --no-cache's: {identical}")
    result = {
        "stacks": stacks,
        "changed": options.changed,
        "planned": planned,
        "from_cache": from_cache,
        "cold_seconds": round(cold_seconds, 3),
        "warm_seconds": round(warm_seconds, 3),
        "identical": identical,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
