"""A project to decommission over the scripted `pulumi` (tests/tools/fake_pulumi) with a persistent backend: stack
files for AKS and Arc clusters, fleet.yaml naming them, and each stack's Pulumi state as the program leaves it
(modules/stack.py: provider registrations, the cluster, the Flux extension, a Flux configuration, each a child of
its component). Used by tests/fluxfleet/decommission and the decommission race in tests/tools/races.py."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from tests.tools.fake_pulumi.wrapper import pulumi_wrapper

AKS_TEXT = """config:
  azure-native:location: westeurope
  fluxfleet:cluster:
    kind: aks
    name: aks-{name}
    resourceGroup: rg-{name}
    protect: {protect}
    nodePools:
      - {{name: system, vmSize: Standard_D4s_v5, count: 2, mode: System}}
  fluxfleet:flux:
    configurations:
      platform:
        git:
          url: https://github.com/fluxcd/flux2-kustomize-helm-example
          tag: v1.0.0
        kustomizations:
          infra: {{path: ./infrastructure, prune: {prune}}}
          apps: {{path: ./apps/production, dependsOn: [infra], prune: {prune}}}
"""

ARC_TEXT = """config:
  fluxfleet:cluster:
    kind: arc
    name: arc-{name}
    resourceGroup: rg-stores
    subscriptionId: 00000000-0000-0000-0000-000000000000
    protect: {protect}
  fluxfleet:flux:
    configurations:
      platform:
        git:
          url: https://github.com/fluxcd/flux2-kustomize-helm-example
          tag: v1.0.0
        kustomizations:
          apps: {{path: ./apps/production, prune: {prune}}}
"""

FLEET_TEXT = """# The rollout plan.
gate:
  fluxCompliance: false
stages:
  - name: first
    stacks: [{first}]   # first of all
"""
REST_TEXT = """  - name: rest
    maxConcurrency: 2
    stacks: [{rest}]
"""

AKS = "azure-native:containerservice:ManagedCluster"
CONNECTED = "azure-native:kubernetes:ConnectedCluster"
EXTENSION = "azure-native:kubernetesconfiguration:Extension"
FLUX = "azure-native:kubernetesconfiguration:FluxConfiguration"
REGISTRATION = "pulumi-python:dynamic:Resource"


def urn(stack: str, type_: str, name: str, parent: str = "") -> str:
    return f"urn:pulumi:{stack}::fluxfleet::{parent + '$' if parent else ''}{type_}::{name}"


def state(stack: str, kind: str, protect: bool = False) -> dict:
    """The stack's `pulumi stack export` after its first update."""
    component = "fluxfleet:cluster:AksCluster" if kind == "aks" else "fluxfleet:cluster:ArcCluster"
    cluster = AKS if kind == "aks" else CONNECTED
    resources = [
        {"urn": urn(stack, "pulumi:pulumi:Stack", f"fluxfleet-{stack}"), "type": "pulumi:pulumi:Stack"},
        {"urn": urn(stack, "pulumi:providers:azure-native", "default"), "type": "pulumi:providers:azure-native"},
        {"urn": urn(stack, "fluxfleet:azure:ProviderRegistrations", "providers"), "type": "x"},
        {
            "urn": urn(stack, REGISTRATION, "providers-Microsoft.KubernetesConfiguration", "fluxfleet:azure:Provid"),
            "type": REGISTRATION,
            "custom": True,
        },
        {"urn": urn(stack, component, stack), "type": component},
        {
            "urn": urn(stack, cluster, stack, component),
            "type": cluster,
            "custom": True,
            **({"external": True} if kind == "arc" else {"protect": protect}),
        },
        {"urn": urn(stack, "fluxfleet:flux:Extension", "flux"), "type": "fluxfleet:flux:Extension"},
        {"urn": urn(stack, EXTENSION, "flux", "fluxfleet:flux:Extension"), "type": EXTENSION, "custom": True},
        {"urn": urn(stack, "fluxfleet:flux:Configuration", "platform"), "type": "fluxfleet:flux:Configuration"},
        {"urn": urn(stack, FLUX, "platform", "fluxfleet:flux:Configuration"), "type": FLUX, "custom": True},
    ]
    return {"version": 3, "deployment": {"resources": resources}}


@dataclass
class Project:
    root: Path
    kinds: dict[str, str]  # stack -> aks | arc, in order

    @property
    def stacks_dir(self) -> Path:
        return self.root / "stacks"

    @property
    def backend(self) -> Path:
        return self.root / "backend"

    @property
    def env(self) -> dict[str, str]:
        bin_dir = self.root / "bin"
        return {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "FAKE_PULUMI_SCENARIO": str(self.root / "scenario.json"),
            "FAKE_PULUMI_LOG": str(self.root / "calls.jsonl"),
        }

    def records(self, name: str) -> list[dict]:
        path = self.backend / name
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []

    def deleted(self) -> list[str]:
        """The URNs the destroys deleted from Azure, in order."""
        return [record["urn"] for record in self.records("deleted.jsonl")]

    def applies(self) -> list[dict]:
        return self.records("applies.jsonl")

    def left_in_state(self, stack: str) -> list[str] | None:
        if (self.backend / f"{stack}.removed").exists():
            return None
        path = self.backend / f"{stack}.state.json"
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else state(stack, self.kinds[stack])
        return [r["urn"] for r in data["deployment"]["resources"]]


def make_project(
    root: Path,
    kinds: dict[str, str],
    *,
    protect: frozenset[str] = frozenset(),
    prune: bool = True,
    destroy_seconds: float = 0.0,
    extra_stacks: tuple[str, ...] = (),
) -> Project:
    """`kinds`: stack -> aks | arc; the first stack is fleet.yaml's first stage, the rest (and `extra_stacks`, Arc
    stacks that stay) its second."""
    stacks_dir = root / "stacks"
    stacks_dir.mkdir(parents=True)
    for name, kind in {**kinds, **dict.fromkeys(extra_stacks, "arc")}.items():
        text = AKS_TEXT if kind == "aks" else ARC_TEXT
        flags = {"protect": str(name in protect).lower(), "prune": str(prune).lower()}
        (stacks_dir / f"Pulumi.{name}.yaml").write_text(text.format(name=name, **flags), encoding="utf-8")
    names = list(kinds)
    rest = ", ".join([*names[1:], *extra_stacks])
    fleet = FLEET_TEXT.format(first=names[0]) + (REST_TEXT.format(rest=rest) if rest else "")
    (stacks_dir / "fleet.yaml").write_text(fleet, encoding="utf-8")
    destroy = {"seconds": destroy_seconds}
    scenario = {
        "backend": "backend",
        "stacks": {
            name: {"export": state(name, kind, name in protect), "destroy": destroy}
            for name, kind in {**kinds, **dict.fromkeys(extra_stacks, "arc")}.items()
        },
    }
    (root / "scenario.json").write_text(json.dumps(scenario), encoding="utf-8")
    pulumi_wrapper(root / "bin")
    return Project(root, dict(kinds))
