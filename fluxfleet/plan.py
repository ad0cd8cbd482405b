"""`fluxfleet plan`: every stack's program run offline under Pulumi's mock engine, in one process.

Each stack file is validated by `modules.spec` and its spec handed to the very program `pulumi up` runs
(`modules.stack.build_stack`), with the offline Key Vault reader; what the program registers is recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fluxfleet.mock_engine import RecordedResource, run_program
from modules.keyvault import OfflineKeyVault, Secrets, SecretValueReader
from modules.spec import (
    ISSUE_PART_MAX,
    SpecError,
    SpecIssue,
    StackSpec,
    bounded,
    kustomization_path_issues,
    load_stack_file,
    report_name,
)
from modules.stack import build_stack
from policies.rules import Level, Resource, Violation, evaluate


@dataclass(frozen=True)
class KustomizationStep:
    name: str
    path: str | None
    depends_on: tuple[str, ...]


@dataclass
class StackPlan:
    stack: str
    file: str
    errors: list[SpecIssue] = field(default_factory=list)
    resources: list[RecordedResource] = field(default_factory=list)
    # configuration name -> its kustomizations in dependency order
    graphs: dict[str, list[KustomizationStep]] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def compliant(self) -> bool:
        return not any(v.level == "mandatory" for v in self.violations)


@dataclass
class FleetPlan:
    stacks: list[StackPlan]

    @property
    def ok(self) -> bool:
        return all(stack.ok for stack in self.stacks)

    @property
    def exit_code(self) -> int:
        """2 for invalid input, else 1 for a mandatory policy violation, else 0."""
        if not self.ok:
            return 2
        return 0 if all(stack.compliant for stack in self.stacks) else 1


def plan_stack(
    path: Path,
    display: str | None = None,
    key_vault: SecretValueReader | None = None,
    checkouts: Mapping[str, Path] | None = None,
    policy_levels: Mapping[str, Level] | None = None,
) -> StackPlan:
    """Validate one stack file, run its program under mocks and evaluate the policy rules on what it registered.
    With `checkouts` (repository URL -> local directory), kustomization paths are checked against the source too."""
    file = display or str(path)
    plan = StackPlan(report_name(path), file)
    try:
        stack = load_stack_file(path, file)
    except SpecError as error:
        plan.errors = error.issues
        return plan
    plan.errors = kustomization_path_issues(stack, checkouts or {})
    try:
        plan.resources = run_program(
            stack.name, lambda: build_stack(stack.spec, Secrets(key_vault or OfflineKeyVault()))
        )
    except Exception as error:  # noqa: BLE001 - a program failure is this stack's error, not the fleet's
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        plan.errors.append(SpecIssue(file, "-", f"the program failed: {bounded(reason, ISSUE_PART_MAX)}"))
        return plan
    plan.graphs = kustomization_graphs(stack.spec)
    plan.violations = evaluate([policy_view(r) for r in plan.resources], policy_levels)
    return plan


def policy_view(record: RecordedResource) -> Resource:
    """A recorded registration as the policy rules see it: here, unlike under CrossGuard, secrets are known."""
    return Resource(
        type=record.type,
        name=record.name,
        props=record.inputs,
        urn=record.urn,
        secrets=frozenset(record.secrets),
        depends_on=frozenset(record.options.get("dependsOn", ())),
    )


# Where a resource's property comes from in the stack file: the program's mapping, read backwards.
_SPEC_KEYS = {
    "kubernetesconfiguration:FluxConfiguration": {
        "gitRepository": "git",
        "bucket": "bucket",
        "azureBlob": "azureBlob",
        "kustomizations": "kustomizations",
        "namespace": "namespace",
    },
    "kubernetesconfiguration:Extension": {
        "configurationSettings": "settings",
        "version": "version",
        "releaseTrain": "releaseTrain",
        "autoUpgradeMinorVersion": "autoUpgradeMinorVersion",
    },
    "containerservice:ManagedCluster": {
        "kubernetesVersion": "kubernetesVersion",
        "networkProfile": "networkPolicy",
        "apiServerAccessProfile": "authorizedIpRanges",
        "autoUpgradeProfile": "autoUpgradeChannel",
        "tags": "tags",
    },
}


def spec_keys(violation: Violation) -> list[str | int]:
    """The stack-file keys a violation points at, as deep as the program's mapping is known."""
    kind = Resource(violation.type, violation.resource, {}).kind
    if kind == "kubernetesconfiguration:FluxConfiguration":
        keys: list[str | int] = ["fluxfleet:flux", "configurations", violation.resource]
    elif kind == "kubernetesconfiguration:Extension":
        keys = ["fluxfleet:flux", "extension"]
    elif kind == "containerservice:ManagedCluster":
        keys = ["fluxfleet:cluster"]
    else:
        return []
    first, *rest = violation.path.split(".") if violation.path else [""]
    if mapped := _SPEC_KEYS[kind].get(first):
        keys.append(mapped)
        if mapped in ("kustomizations", "settings") and rest:
            keys.append(rest[0])
    return keys


def kustomization_graphs(spec: StackSpec) -> dict[str, list[KustomizationStep]]:
    return {
        name: [
            KustomizationStep(
                k, configuration.kustomizations[k].path, tuple(configuration.kustomizations[k].depends_on)
            )
            for k in configuration.kustomization_order()
        ]
        for name, configuration in spec.flux.configurations.items()
    }


def plan_fleet(
    paths: Iterable[Path],
    relative_to: Path | None = None,
    key_vault: SecretValueReader | None = None,
    checkouts: Mapping[str, Path] | None = None,
    policy_levels: Mapping[str, Level] | None = None,
) -> FleetPlan:
    """Plan each stack in this process. `key_vault` defaults to the offline reader, which opens no connection."""
    return FleetPlan(
        [plan_stack(path, display_path(path, relative_to), key_vault, checkouts, policy_levels) for path in paths]
    )


def display_path(path: Path, base: Path | None = None) -> str:
    """A stack file as reports name it: relative to the working directory when it is under it."""
    try:  # the directory resolved, not the file: a symlinked stack file keeps its name (and a symlink loop is no error)
        return str((path.parent.resolve() / path.name).relative_to((base or Path.cwd()).resolve()))
    except (ValueError, OSError, RuntimeError):
        return str(path)
