"""Benchmark: `fluxfleet plan` over a generated fleet of N stacks.

Two fleets:
- default: N full stack files like the examples in stacks/ (each example copied whole, its profiles merged in by
  hand: tests/fixtures/stacks), cluster names made unique;
- `--profiles`: N five-line stack files over the example profiles, as the converted examples are: three stores
  (edge-store) for each AKS cluster (aks-platform).

Each plan is a fresh `fluxfleet plan --format json` process (cold start included, as a user or a CI job sees it),
with its default worker processes (one per core; `--jobs J` to choose). The peak RSS is that of the largest process
of the plan (the CLI or a worker), sampled from /proc. Prints the figures; the last line is one JSON object with
n, seconds, stacks_per_second, peak_rss_mb, ratio (wall time of N stacks over that of 1).

    .venv/bin/python benchmarks/plan_fleet.py [N] [--profiles] [--jobs J]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLUXFLEET = ROOT / ".venv" / "bin" / "fluxfleet"
STANDALONE = ROOT / "tests" / "fixtures" / "stacks"


def generate(directory: Path, count: int, profiles: bool) -> None:
    from ruamel.yaml import YAML

    if profiles:
        shutil.copytree(ROOT / "stacks" / "profiles", directory / "profiles")
        for index in range(count):
            if index % 4 == 3:
                text = (
                    "config:\n  azure-native:location: westeurope\n  fluxfleet:profiles: [aks-platform]\n"
                    f"  fluxfleet:cluster: {{name: aks-{index:04d}, resourceGroup: rg-aks-{index:04d}, nodePools: "
                    "[{name: system, vmSize: Standard_D4s_v5, count: 3, mode: System}]}\n"
                    "  fluxfleet:flux: {configurations: {platform: {git: "
                    "{httpsKey: {keyVault: kv-fleet, secret: pat}}}}}\n"
                )
            else:
                text = (
                    "config:\n  azure-native:location: eastus\n  fluxfleet:profiles: [edge-store]\n"
                    f"  fluxfleet:cluster: {{name: store-{index:04d}, resourceGroup: rg-stores}}\n"
                )
            (directory / f"Pulumi.stack-{index:04d}.yaml").write_text(text)
        return
    yaml = YAML()
    examples = sorted(STANDALONE.glob("Pulumi.*.yaml"))
    for index in range(count):
        example = examples[index % len(examples)]
        document = yaml.load(example.read_text())
        cluster = document["config"]["fluxfleet:cluster"]
        cluster["name"] = f"{cluster['name']}-{index:04d}"
        stack = example.name.split(".")[1]
        with (directory / f"Pulumi.{stack}-{index:04d}.yaml").open("w") as handle:
            yaml.dump(document, handle)


class PeakRss:
    """The largest peak resident set (VmHWM) among a process and its descendants, sampled from /proc."""

    def __init__(self, pid: int):
        self.pid, self.peak_kb, self._done = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.05):
            for pid in self._tree():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))

    def _tree(self) -> list[int]:
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                parents[int(entry)] = int(fields[1])
        tree, frontier = [self.pid], [self.pid]
        while frontier:
            children = [pid for pid, parent in parents.items() if parent in frontier]
            tree += children
            frontier = children
        return tree

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return self.peak_kb / 1024


def measure(count: int, profiles: bool, jobs: int | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "stacks"
        directory.mkdir()
        generate(directory, count, profiles)
        command = [str(FLUXFLEET), "plan", "--stacks-dir", str(directory), "--format", "json"]
        command += ["--output", str(Path(tmp) / "plan.json"), *(["--jobs", str(jobs)] if jobs else [])]
        start = time.perf_counter()
        cold = {**os.environ, "FLUXFLEET_CACHE_DIR": str(Path(tmp) / "cache")}  # a first plan: an empty cache
        process = subprocess.Popen(command, cwd=ROOT, env=cold, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak = PeakRss(process.pid)
        code = process.wait()
        wall = time.perf_counter() - start
        peak_mb = peak.stop()
        report = json.loads((Path(tmp) / "plan.json").read_text())
    if code not in (0, 1) or len(report["stacks"]) != count or not report["valid"]:
        raise SystemExit(f"plan of {count} generated stacks failed (exit {code})")
    return {"wall_seconds": wall, "peak_rss_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=200)
    parser.add_argument("--profiles", action="store_true", help="five-line stack files over profiles")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: fluxfleet's, one per core)")
    options = parser.parse_args()
    kind = "five-line stack files over profiles" if options.profiles else "full stack files"
    one = measure(1, options.profiles, options.jobs)
    fleet = measure(options.n, options.profiles, options.jobs)
    ratio = fleet["wall_seconds"] / one["wall_seconds"]
    print(f"{kind}; {options.jobs or os.cpu_count()} job(s); {os.cpu_count()} core(s)")
    print(f"1 stack:    {one['wall_seconds']:.2f} s wall, peak {one['peak_rss_mb']:.0f} MB")
    print(f"{options.n} stacks: {fleet['wall_seconds']:.2f} s wall, largest process peak {fleet['peak_rss_mb']:.0f} MB")
    print(f"{options.n / fleet['wall_seconds']:.1f} stacks/s; ratio {options.n}-stack/1-stack wall time {ratio:.1f}")
    print(
        json.dumps(
            {
                "n": options.n,
                "seconds": round(fleet["wall_seconds"], 3),
                "stacks_per_second": round(options.n / fleet["wall_seconds"], 2),
                "peak_rss_mb": round(fleet["peak_rss_mb"], 1),
                "ratio": round(ratio, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
