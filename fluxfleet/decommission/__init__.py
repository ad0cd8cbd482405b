"""`fluxfleet decommission`: what retiring a stack's cluster takes, step by step, and what stays.

Each stack goes through STEPS in order:
  configurations  its Flux configurations are deleted (with prune on, Flux deletes what it applied from them)
  extension       then its Flux extension
  destroy         then the rest of its state: an AKS cluster is deleted; an Arc cluster stays connected (the program
                  only reads it, `get`: Pulumi drops it from the state and never deletes it)
  stack-rm        `pulumi stack rm`: the stack and its history leave the backend
  stack-file      its stack file is deleted
  fleet           its name leaves fleet.yaml's stages

The first three are `pulumi destroy` runs, the first two with `--target` the URNs of the configurations' (then the
extension's) resources, read from the stack's state. Why targeted destroys, not an update of a program without
them: a destroy deletes exactly the targets and nothing else (an update would also apply whatever else differs
between the stack file and the cluster, on a cluster being retired), it needs no change of the stack file first,
and Pulumi records it in the stack's history with its message, which is how a step a killed run left in doubt is
settled (as the rollout settles an update). The order is Flux's own: configurations before the extension that
reconciles them (the extension's deletion would otherwise leave their finalizers), both before the cluster.

This module plans (offline: the dry run); fluxfleet/decommission/run.py journals and runs.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from modules.spec import Stack

STEPS = ("configurations", "extension", "destroy", "stack-rm", "stack-file", "fleet")
PULUMI_STEPS = frozenset({"configurations", "extension", "destroy"})  # a `pulumi destroy` each
# The component each targeted step destroys the resources of (a URN names its parents' types: `...::P$T::name`).
COMPONENTS = {"configurations": "fluxfleet:flux:Configuration", "extension": "fluxfleet:flux:Extension"}


@dataclass(frozen=True)
class ConfigurationPlan:
    name: str
    pruned: tuple[str, ...]  # its kustomizations with prune on

    @property
    def line(self) -> str:
        if self.pruned:
            return (
                f"Flux configuration {self.name}: prune is on (kustomizations {', '.join(self.pruned)}): deleting it "
                "deletes everything Flux applied from it on the cluster"
            )
        return f"Flux configuration {self.name}: prune is off: what Flux applied from it stays on the cluster"


@dataclass(frozen=True)
class StackPlan:
    """What decommissioning one stack deletes, in order, and what it keeps."""

    stack: str
    file: str  # the stack file, as messages show it
    kind: str  # aks | arc
    cluster: str  # name (resource group)
    protected: bool
    configurations: tuple[ConfigurationPlan, ...]
    fleet_entries: tuple[tuple[str, str], ...]  # (stage, entry) of fleet.yaml that leave with the stack
    fleet_kept: tuple[tuple[str, str], ...]  # (stage, entry: a glob, or a profile) that still cover other stacks

    @property
    def prunes(self) -> bool:
        return any(configuration.pruned for configuration in self.configurations)

    @property
    def refusal(self) -> str | None:
        if not self.protected:
            return None
        apply = " and apply it (`pulumi up`: the cluster's protect flag is in the state)" if self.kind == "aks" else ""
        return (
            f"{self.file}: fluxfleet:cluster.protect is true (the default): refused; set `protect: false`{apply} "
            f"to decommission {self.stack}"
        )

    def steps(self) -> list[tuple[str, str]]:
        """(step, what it deletes) in order."""
        names = ", ".join(c.name for c in self.configurations) or "none declared"
        destroy = (
            f"pulumi destroy: the AKS cluster {self.cluster} and everything else the stack's state lists"
            if self.kind == "aks"
            else "pulumi destroy: what else fluxfleet created for the stack (the Arc cluster only leaves the state)"
        )
        fleet = (
            "fleet.yaml: " + "; ".join(f"stage {stage}: {entry}" for stage, entry in self.fleet_entries)
            if self.fleet_entries
            else "fleet.yaml: no stage names it (nothing to remove)"
        )
        return [
            ("configurations", f"pulumi destroy --target: the Flux configurations ({names})"),
            ("extension", "pulumi destroy --target: the Flux extension"),
            ("destroy", destroy),
            ("stack-rm", f"pulumi stack rm: the Pulumi stack {self.stack} and its history"),
            ("stack-file", f"the stack file {self.file}"),
            ("fleet", fleet),
        ]

    def kept(self) -> list[str]:
        kept = []
        if self.kind == "arc":
            kept.append(f"the Arc-connected cluster {self.cluster}: it stays connected (adopted, never created)")
        kept += [f"fleet.yaml stage {stage}: {entry}" for stage, entry in self.fleet_kept]
        return kept


def plan_stack(stack: Stack, file: str, fleet_text: dict | None, others: list[str]) -> StackPlan:
    """The plan of one stack; `fleet_text` is fleet.yaml as data (its stages' `stacks` entries as written), `others`
    the names of the stacks that remain."""
    spec = stack.spec
    cluster = spec.cluster
    configurations = tuple(
        ConfigurationPlan(name, tuple(k for k, spec_ in sorted(c.kustomizations.items()) if spec_.prune))
        for name, c in sorted(spec.flux.configurations.items())
    )
    leaving, kept = fleet_entries(fleet_text or {}, stack.name, others, stack.profiles)
    return StackPlan(
        stack.name,
        file,
        cluster.kind,
        f"{cluster.name} ({cluster.resource_group})",
        bool(cluster.protect),
        configurations,
        tuple(leaving),
        tuple(kept),
    )


def fleet_entries(
    data: dict, name: str, others: list[str], profiles: tuple[str, ...] = ()
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(entries of fleet.yaml's stages that leave with the stack, entries that cover it and stay): its name leaves;
    a glob leaves when it matches no other stack (fleet.yaml refuses a glob that matches none); a stage that takes
    it by one of its `profiles` stays as it is."""
    leaving, kept = [], []
    for stage in data.get("stages") or []:
        if not isinstance(stage, dict):
            continue
        stage_name = str(stage.get("name", "?"))
        for profile in stage.get("profiles") or []:
            if str(profile) in profiles:
                kept.append((stage_name, f"profile {profile} (the stage takes stacks by profile)"))
        for entry in stage.get("stacks") or []:
            entry = str(entry)
            if entry == name:
                leaving.append((stage_name, entry))
            elif fnmatch.fnmatchcase(name, entry):
                if any(fnmatch.fnmatchcase(other, entry) for other in others):
                    kept.append((stage_name, f"{entry} (matches other stacks too)"))
                else:
                    leaving.append((stage_name, entry))
    return leaving, kept


def without_stack(text: str, display: str, name: str, others: list[str]) -> str | None:
    """fleet.yaml's text with the stack's entries gone (ruamel's round trip: the rest as written); a stage left with
    no stacks and no profiles goes too. None: nothing to change."""
    import io

    from ruamel.yaml.error import YAMLError

    from modules.spec import SpecError, SpecIssue, bounded
    from modules.spec.files import yaml_round_trip

    yaml = yaml_round_trip(text)
    try:
        data = yaml.load(text)
    except (YAMLError, ValueError, TypeError, RecursionError) as error:  # changed since it was read
        raise SpecError([SpecIssue(display, "-", f"not valid YAML: {bounded(str(error), 200)}")]) from None
    if not isinstance(data, dict) or not isinstance(data.get("stages"), list):
        return None
    leaving, _ = fleet_entries(data or {}, name, others)
    if not leaving:
        return None
    gone = {entry for _, entry in leaving}
    stages = data.get("stages")
    for index in reversed(range(len(stages))):
        stage = stages[index]
        if not isinstance(stage, dict) or not stage.get("stacks"):
            continue
        entries = stage["stacks"]
        for position in reversed(range(len(entries))):
            if str(entries[position]) in gone:
                del entries[position]
        if not entries:
            if stage.get("profiles"):
                del stage["stacks"]
            else:
                del stages[index]
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def render_plan(plans: list[StackPlan]) -> str:
    lines = []
    for plan in plans:
        lines.append(f"{plan.stack} ({plan.kind} cluster {plan.cluster}): would delete, in order:")
        for index, (step, what) in enumerate(plan.steps(), 1):
            lines.append(f"  {index}. {step}: {what}")
            if step == "configurations":
                lines += [f"     {configuration.line}" for configuration in plan.configurations]
        kept = plan.kept()
        lines.append("  keeps: " + ("; ".join(kept) if kept else "nothing"))
    return "\n".join(lines) + "\n"
