"""Benchmark: the HTML status page of a generated fleet of 1,000 and 5,000 stacks, through the command's own path.

Each fleet is written as the profiles benchmark of `plan` writes one (five-line stack files over the example
profiles: nine Arc stores, edge-store, for each AKS cluster, aks-platform) with a fleet.yaml of three stages (a
canary of stores pinned to tag v1.5.0, the other stores pinned to v1.4.0, the AKS clusters on branch main). It is
read as `fluxfleet status` reads it (modules.spec's load_stacks and load_fleet), judged by status.build's
fleet_status against one scripted fleet read, and rendered by status.report's render(…, "html"). The read answers as a
fleet does on a bad day: every 50th store offline, every 37th Non-Compliant, every 23rd still on the revision
before its pin, every 101st cluster's read failed, the rest healthy.

Prints a line per size (stacks, bytes, seconds to judge and render; reading the files is not counted) and, last,
one JSON object: {"stacks": [1000, 5000], "bytes": [...], "seconds": [...]}. The issue's limits: 300 KB at 1,000
stacks, 1.5 MB at 5,000 (tests/fluxfleet/status/test_html.py holds the page to them).

    .venv/bin/python benchmarks/status_page.py [N ...]
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fluxfleet.azure.fleet_graph import ClusterSnapshot, ClusterTarget, FleetSnapshot  # noqa: E402
from fluxfleet.azure.status import (  # noqa: E402
    ConnectedClusterStatus,
    ExtensionStatus,
    FluxConfigurationStatus,
    FluxObjectStatus,
    ManagedClusterStatus,
)
from fluxfleet.status.build import fleet_status  # noqa: E402
from fluxfleet.status.model import FleetStatus  # noqa: E402
from fluxfleet.status.report import render  # noqa: E402
from modules.spec import load_fleet, load_stacks, stack_files  # noqa: E402

SIZES = (1000, 5000)
SUBSCRIPTION = "6f1c2e0a-3b4d-4c5e-8f90-1a2b3c4d5e6f"
READ_AT = "2026-11-29T03:00:00+00:00"
SHA = {"v1.5.0": "5a1e", "v1.4.0": "4b2f", "v1.3.0": "3c4d", "main": "0ba6"}  # the first digits of each commit
AKS_EVERY, CANARY_EVERY = 10, 50
OFFLINE_EVERY, NON_COMPLIANT_EVERY, BEHIND_EVERY, FAILED_EVERY = 50, 37, 23, 101
FLEET_YAML = """\
stages:
  - name: canary
    stacks: [{canary}]
    pins:
      gitops-demo: {{tag: v1.5.0}}
  - name: stores
    profiles: [edge-store]
    pins:
      gitops-demo: {{tag: v1.4.0}}
  - name: platform
    profiles: [aks-platform]
"""


def generate(directory: Path, count: int) -> None:
    """`count` stack files over the example profiles, and fleet.yaml's three stages."""
    shutil.copytree(ROOT / "stacks" / "profiles", directory / "profiles")
    canary = []
    for index in range(count):
        name = f"stack-{index:04d}"
        if index % AKS_EVERY == AKS_EVERY - 1:
            text = (
                "config:\n  azure-native:location: westeurope\n  fluxfleet:profiles: [aks-platform]\n"
                f"  fluxfleet:cluster: {{name: aks-{index:04d}, resourceGroup: rg-aks-{index:04d}, nodePools: "
                "[{name: system, vmSize: Standard_D4s_v5, count: 3, mode: System}]}\n"
                "  fluxfleet:flux: {configurations: {platform: {git: {httpsKey: {keyVault: kv-fleet, secret: pat}}}}}\n"
            )
        else:
            text = (
                "config:\n  azure-native:location: eastus\n  fluxfleet:profiles: [edge-store]\n"
                f"  fluxfleet:cluster: {{name: store-{index:04d}, resourceGroup: rg-stores}}\n"
            )
            canary += [name] if index % CANARY_EVERY == 0 else []
        (directory / f"Pulumi.{name}.yaml").write_text(text)
    (directory / "fleet.yaml").write_text(FLEET_YAML.format(canary=", ".join(canary)))


def every(number: int, period: int) -> bool:
    """One stack in `period`, the first a third of the way in (so that a small fleet has one of each too)."""
    return number % period == period // 3


def revision(ref: str) -> str:
    return f"{ref}/{SHA[ref]}{'0' * 36}"


def flux(name: str, synced: str, compliance: str = "Compliant") -> FluxConfigurationStatus:
    problem = "kustomize build failed: accumulating resources: 'apps/base' not found"
    return FluxConfigurationStatus(
        name=name,
        namespace="flux-system",
        scope="cluster",
        source_kind="GitRepository",
        suspend=False,
        provisioning_state="Succeeded",
        compliance_state=compliance,
        error_message=None,
        source_synced_commit_id=synced,
        source_updated_at=None,
        status_updated_at=None,
        objects=(FluxObjectStatus("Kustomization", f"{name}-apps", "flux-system", compliance, problem),),
    )


class ScriptedRead:
    """The fleet read `fluxfleet status` makes through Resource Graph, answered by a script: what a bad day looks
    like, the same for every run."""

    def __init__(self, pins: dict[str, str]):
        self.pins = pins  # cluster name -> the tag its stage pins (stores); AKS clusters track main

    def read(self, targets: list[ClusterTarget]) -> FleetSnapshot:
        extension = ExtensionStatus("flux", "microsoft.flux", "Succeeded", None, "1.15.1", "Stable", True, None, ())
        clusters, failed = {}, {}
        for target in targets:
            number = int(target.name.rsplit("-", 1)[1])
            if every(number, FAILED_EVERY):
                failed[target] = f"cluster {target.name}: Resource Graph answered 503 (Service Unavailable)"
                continue
            if target.kind == "aks":
                cluster = ManagedClusterStatus(target.name, "Succeeded", "SystemAssigned", "1.35", "1.35.1", True, True)
                clusters[target] = ClusterSnapshot(
                    target, True, "graph", managed=cluster, extensions=(extension,),
                    flux_configurations=(flux("platform", revision("main")),),
                )  # fmt: skip
                continue
            connectivity = "Offline" if every(number, OFFLINE_EVERY) else "Connected"
            connected = ConnectedClusterStatus(target.name, "Succeeded", connectivity, None, "1.30.4", "Succeeded", ())
            pinned = self.pins[target.name]
            synced = revision("v1.3.0") if every(number, BEHIND_EVERY) else revision(pinned)
            compliance = "Non-Compliant" if every(number, NON_COMPLIANT_EVERY) else "Compliant"
            clusters[target] = ClusterSnapshot(
                target, True, "graph", connected=connected, extensions=(extension,),
                flux_configurations=(flux("gitops-demo", synced, compliance),),
            )  # fmt: skip
        return FleetSnapshot(clusters, (), failed, 1, datetime.fromisoformat(READ_AT))


def fleet(directory: Path) -> tuple[list, ScriptedRead, dict[str, str], list[str]]:
    """The stacks, the read, each stack's stage and the stages, as `fluxfleet status` reads them."""
    stacks = load_stacks(stack_files(directory))
    plan = load_fleet(directory / "fleet.yaml", sorted(stack.name for stack in stacks))
    stage_of = {name: stage.name for stage in plan.stages for name in stage.stacks}
    pins = {}
    for stack in stacks:
        git = stack.spec.flux.configurations.get("gitops-demo")
        pins[stack.spec.cluster.name] = git.git.tag if git and git.git and git.git.tag else "main"
    return stacks, ScriptedRead(pins), stage_of, [stage.name for stage in plan.stages]


def page(count: int) -> tuple[FleetStatus, str, float]:
    """The fleet's status, its HTML page, and the seconds judging and rendering took."""
    with tempfile.TemporaryDirectory(prefix="status-page-") as temporary:
        directory = Path(temporary)
        generate(directory, count)
        stacks, reads, stage_of, stages = fleet(directory)
        started = time.perf_counter()
        status = fleet_status(stacks, reads, stage_of.get, SUBSCRIPTION, stages)
        html = render(status, "html")
        return status, html, time.perf_counter() - started


def main(sizes: list[int]) -> None:
    result: dict[str, list] = {"stacks": [], "bytes": [], "seconds": []}
    for count in sizes:
        status, html, seconds = page(count)
        size = len(html.encode())
        needs_a_look = sum(stack.health.value != "healthy" or stack.odd_revision for stack in status.stacks)
        print(f"{count} stacks ({needs_a_look} need a look): {size:,} bytes, {seconds:.2f} s", flush=True)
        result["stacks"].append(count)
        result["bytes"].append(size)
        result["seconds"].append(round(seconds, 3))
    print(json.dumps(result))


if __name__ == "__main__":
    main([int(argument) for argument in sys.argv[1:]] or list(SIZES))
