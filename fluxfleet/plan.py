"""`fluxfleet plan`: every stack's program run offline under Pulumi's mock engine, in one process.

Each stack file is validated by `modules.spec` and its spec handed to the very program `pulumi up` runs
(`modules.stack.build_stack`), with the offline Key Vault reader; what the program registers is recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fluxfleet.mock_engine import RecordedResource, run_program
from modules.keyvault import OfflineKeyVault, Secrets, SecretValueReader
from modules.spec import STACK_FILE, SpecError, SpecIssue, StackSpec, kustomization_path_issues, load_stack_file
from modules.stack import build_stack


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

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class FleetPlan:
    stacks: list[StackPlan]

    @property
    def ok(self) -> bool:
        return all(stack.ok for stack in self.stacks)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 2


def stack_files(stacks_dir: Path, names: Sequence[str] = ()) -> list[Path]:
    """The stack files to plan: the named stacks, or every `Pulumi.<stack>.yaml` in the directory."""
    if names:
        return [stacks_dir / f"Pulumi.{name}.yaml" for name in names]
    return sorted(path for path in stacks_dir.glob("Pulumi.*.y*ml") if STACK_FILE.match(path.name))


def plan_stack(
    path: Path,
    display: str | None = None,
    key_vault: SecretValueReader | None = None,
    checkouts: Mapping[str, Path] | None = None,
) -> StackPlan:
    """Validate one stack file and run its program under mocks. With `checkouts` (repository URL -> local
    directory), kustomization paths are checked against the source too."""
    file = display or str(path)
    stack_name = STACK_FILE.match(path.name)
    plan = StackPlan(stack_name["stack"] if stack_name else path.name, file)
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
        plan.errors.append(SpecIssue(file, "-", f"the program failed: {reason}"))
        return plan
    plan.graphs = kustomization_graphs(stack.spec)
    return plan


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
) -> FleetPlan:
    """Plan each stack in this process. `key_vault` defaults to the offline reader, which opens no connection."""
    return FleetPlan([plan_stack(path, _display(path, relative_to), key_vault, checkouts) for path in paths])


def _display(path: Path, base: Path | None) -> str:
    try:
        return str(path.resolve().relative_to((base or Path.cwd()).resolve()))
    except ValueError:
        return str(path)
