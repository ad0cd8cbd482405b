"""`fluxfleet plan`: every stack's program run offline under Pulumi's mock engine.

Each stack file is validated by `modules.spec` (its profiles merged in) and its spec handed to the very program
`pulumi up` runs (`modules.stack.build_stack`), with the offline Key Vault reader; what the program registers is
recorded. A large fleet is planned in worker processes, each reading a profile once for all the stacks it plans; the
report is the same, in the same order, as a plan in one process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fluxfleet.plan.cache import PlanCache
from fluxfleet.plan.sources import source_issues
from fluxfleet.mock_engine import RecordedResource, run_program
from fluxfleet.redact import mask_secrets
from modules.keyvault import OfflineKeyVault, Secrets, SecretValueReader
from modules.spec import (
    FLEET_FILE,
    ISSUE_PART_MAX,
    SpecError,
    SpecIssue,
    Stack,
    StackSpec,
    bounded,
    ClusterSpec,
    Origins,
    ProfileLibrary,
    read_stack_config,
    report_name,
    shared_clusters,
)
from modules.spec.credentials import masked
from modules.spec.fleet import arc_notes
from modules.spec.load import cluster_kinds
from modules.flux_configuration_v2025 import TYPE as V2025_TYPE
from modules.stack import build_stack
from policies.rules import Level, Resource, Violation, evaluate


@dataclass(frozen=True)
class KustomizationStep:
    name: str
    path: str | None
    depends_on: tuple[str, ...]


@dataclass(frozen=True)
class FluxResource:
    """Which resource declares a Flux configuration, and why."""

    api: str  # the fluxConfigurations API version it is declared at
    type: str  # the Pulumi type token
    because: tuple[str, ...]  # what 2023-05-01 cannot express (empty: azure-native's resource)
    adopts: bool = False  # adoptLiveConfiguration: true

    @property
    def label(self) -> str:
        if not self.because:
            return f"API {self.api} (azure-native)"
        return f"API {self.api} (fluxfleet's resource: {', '.join(self.because)})"


@dataclass(frozen=True)
class SourceRef:
    ref: str  # tag v1.4.0, branch main, ...
    file: str  # where it was written


@dataclass
class StackPlan:
    stack: str
    file: str
    errors: list[SpecIssue] = field(default_factory=list)  # each names the file that wrote the value: maybe a profile
    resources: list[RecordedResource] = field(default_factory=list)
    # configuration name -> its kustomizations in dependency order
    graphs: dict[str, list[KustomizationStep]] = field(default_factory=dict)
    # configuration name -> the git ref it runs and the file that says so (the stack, a profile, or fleet.yaml's pin)
    refs: dict[str, SourceRef] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    # configuration name -> the resource that declares it (azure-native at 2023-05-01, or fluxfleet's at 2025-04-01)
    flux_resources: dict[str, FluxResource] = field(default_factory=dict)
    origins: Origins | None = None  # which file wrote each config value (None: the stack file wrote all)
    cluster: ClusterSpec | None = None  # the cluster it names, when its spec is valid
    cluster_config: Any = None  # the `cluster` value it merges to, valid or not (the one-cluster-one-stack check)
    notes: list[str] = field(default_factory=list)  # worth knowing, no error: a source file `--source` skipped, ...
    policies_run: bool = False  # the rules check what the program registers: not run on a stack it cannot run

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def ok(self) -> bool:
        """Valid and compliant: what ✔, `ok` and the exit code say."""
        return self.valid and self.compliant

    @property
    def own_errors(self) -> list[SpecIssue]:
        """The errors in the stack file itself; the others are in its profiles (FleetPlan.shared_errors)."""
        return [error for error in self.errors if error.file == self.file]

    def file_of(self, violation: Violation) -> str:
        """The file that wrote the config value a violation is about: the stack file or one of its profiles."""
        keys = spec_keys(violation)
        if not keys or self.origins is None:
            return self.file
        return self.origins.file_of((str(keys[0]).partition(":")[2], *keys[1:]))

    @property
    def own_violations(self) -> list[Violation]:
        return [violation for violation in self.violations if self.file_of(violation) == self.file]

    @property
    def compliant(self) -> bool:
        return not any(v.level == "mandatory" for v in self.violations)


@dataclass(frozen=True)
class Shared:
    """A finding written in a profile, reported once with every stack it reaches."""

    file: str
    finding: SpecIssue | Violation
    stacks: tuple[str, ...]


@dataclass
class FleetPlan:
    stacks: list[StackPlan]
    warnings: list[str] = field(default_factory=list)  # worth fixing, no error: a stack in no stage of fleet.yaml

    @property
    def valid(self) -> bool:
        return all(stack.valid for stack in self.stacks)

    @property
    def compliant(self) -> bool:
        return all(stack.compliant for stack in self.stacks)

    @property
    def ok(self) -> bool:
        return self.valid and self.compliant

    def shared_errors(self) -> list[Shared]:
        """The errors written in profiles, each once, in the order first met."""
        found: dict[SpecIssue, list[str]] = {}
        for stack in self.stacks:
            for error in stack.errors:
                if error.file != stack.file:
                    found.setdefault(error, []).append(stack.stack)
        return [Shared(error.file, error, tuple(stacks)) for error, stacks in found.items()]

    def shared_violations(self) -> list[Shared]:
        """The policy violations of values written in profiles, each once (the first stack's resource shown)."""
        found: dict[tuple[str, ...], tuple[str, Violation, list[str]]] = {}
        for stack in self.stacks:
            for violation in stack.violations:
                file = stack.file_of(violation)
                if file != stack.file:
                    key = (file, violation.policy, violation.level, violation.type, violation.path, violation.message)
                    found.setdefault(key, (file, violation, []))[2].append(stack.stack)
        return [Shared(file, violation, tuple(stacks)) for file, violation, stacks in found.values()]

    @property
    def notes(self) -> list[str]:
        """The stacks' notes, each once (stacks sharing a source share its notes)."""
        return list(dict.fromkeys(note for stack in self.stacks for note in stack.notes))

    @property
    def exit_code(self) -> int:
        """2 for invalid input, else 1 for a mandatory policy violation, else 0."""
        return 2 if not self.valid else 0 if self.compliant else 1


def plan_stack(
    path: Path,
    display: str | None = None,
    key_vault: SecretValueReader | None = None,
    checkouts: Mapping[str, Path] | None = None,
    policy_levels: Mapping[str, Level] | None = None,
    library: ProfileLibrary | None = None,
) -> StackPlan:
    """Validate one stack file, run its program under mocks and evaluate the policy rules on what it registered.
    With `checkouts` (repository URL -> local directory), each source is checked at its ref too (sources.py).
    `library`: the profiles, shared by the stacks of a directory (default: read for this stack)."""
    file = display or str(path)
    plan = StackPlan(report_name(path), file)
    try:
        config = read_stack_config(path, file, library)
        plan.origins = config.origins
        plan.cluster_config = config.raw.get("cluster")
        stack = config.spec()
    except SpecError as error:
        plan.errors = error.issues
        return plan
    plan.cluster = stack.spec.cluster
    plan.errors, plan.notes = source_issues(stack, checkouts or {})  # each repository at the ref the stack runs
    try:
        plan.resources = run_program(
            stack.name, lambda: build_stack(stack.spec, Secrets(key_vault or OfflineKeyVault()))
        )
    except Exception as error:  # noqa: BLE001 - a program failure is this stack's error, not the fleet's
        reason = mask_secrets(str(error).splitlines()[0]) if str(error) else type(error).__name__
        plan.errors.append(SpecIssue(file, "-", f"the program failed: {bounded(reason, ISSUE_PART_MAX)}"))
        return plan
    plan.graphs = kustomization_graphs(stack.spec)
    plan.refs = source_refs(stack)
    plan.flux_resources = flux_resources(stack.spec)
    plan.violations = evaluate([policy_view(r) for r in plan.resources], policy_levels)
    plan.policies_run = True
    # The inputs are shown (`--format json`): a plaintext credential in them is `[secret]` once the rules have seen it.
    plan.resources = [replace(record, inputs=masked(record.inputs)) for record in plan.resources]
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


AGENT_POOL = "azure-native:containerservice:AgentPool"
AZURE_NATIVE_FLUX_CONFIGURATION = "azure-native:kubernetesconfiguration:FluxConfiguration"


def flux_resources(spec: StackSpec) -> dict[str, FluxResource]:
    """Which resource declares each Flux configuration: azure-native's (API 2023-05-01) while that API can express
    it, else fluxfleet's (2025-04-01; modules/flux_configuration_v2025.py)."""
    return {
        name: FluxResource(
            configuration.flux_api,
            V2025_TYPE if configuration.newer_api_needs else AZURE_NATIVE_FLUX_CONFIGURATION,
            tuple(configuration.newer_api_needs),
            configuration.adopt_live_configuration,
        )
        for name, configuration in spec.flux.configurations.items()
    }


def migration_commands(stack: StackPlan) -> list[str]:
    """For each configuration that adopts a live one (adoptLiveConfiguration: true), the `pulumi state delete` that
    forgets azure-native's resource of the same name without deleting it in Azure: run once, before the update that
    moves the configuration to API 2025-04-01 (else the update deletes the old one, and with it what Flux applied)."""
    commands = []
    for record in stack.resources:
        choice = stack.flux_resources.get(record.name)
        if record.type != V2025_TYPE or choice is None or not choice.adopts:
            continue
        old_urn = record.urn.replace(f"${V2025_TYPE}::", f"${AZURE_NATIVE_FLUX_CONFIGURATION}::")
        commands.append(f"pulumi state delete -s {stack.stack} '{old_urn}'")
    return commands


def pool_import_commands(stack: StackPlan) -> list[str]:
    """For each node pool the program declares as an AgentPool, the `pulumi import` that adopts it once into a stack
    whose cluster was created while every pool was inline in `agentPoolProfiles`: without it, `pulumi up` would try
    to create a pool that exists (azure-native refuses: "cannot create already existing resource"). The cluster
    keeps its URN either way; a new stack, or a pool added since, needs no import."""
    subscription = (stack.cluster.subscription_id if stack.cluster else None) or "$(az account show --query id -o tsv)"
    names = {record.urn: record.name for record in stack.resources}
    commands = []
    for record in stack.resources:
        if record.type != AGENT_POOL or record.read or record.parent not in names:
            continue
        # The component's URN as the engine writes it (the mock engine's puts the root stack in its type chain):
        # the pool's own URN, one type and the name shorter.
        head, project, types, _ = record.urn.split("::", 3)
        parent_urn = f"{head}::{project}::{types.rpartition('$')[0]}::{names[record.parent]}"
        inputs = record.inputs
        pool_id = (
            f"/subscriptions/{subscription}/resourceGroups/{inputs.get('resourceGroupName')}/providers"
            f"/Microsoft.ContainerService/managedClusters/{inputs.get('resourceName')}/agentPools/"
            f"{inputs.get('agentPoolName')}"
        )
        commands.append(
            f'pulumi import -s {stack.stack} {AGENT_POOL} {record.name} "{pool_id}" '
            f"--parent 'cluster={parent_urn}' --protect=false --generate-code=false"
        )
    return commands


# Where a resource's property comes from in the stack file: the program's mapping, read backwards.
_SPEC_KEYS = {
    "kubernetesconfiguration:FluxConfiguration": {
        "gitRepository": "git",
        "bucket": "bucket",
        "azureBlob": "azureBlob",
        "ociRepository": "oci",
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
        "autoUpgradeProfile": "upgrade",  # cluster.upgrade (its channels and windows), as the spec spells it now
        "tags": "tags",
    },
}

_UPGRADE_KEYS = {"upgradeChannel": "channel", "nodeOSUpgradeChannel": "nodeOSChannel"}


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
        elif mapped == "upgrade" and rest and (channel := _UPGRADE_KEYS.get(rest[0])):
            keys.append(channel)
    return keys


def source_refs(stack: Stack) -> dict[str, SourceRef]:
    """Each git configuration's ref, with the file that wrote it: `plan` shows where a revision comes from."""
    refs = {}
    for name, configuration in stack.spec.flux.configurations.items():
        for kind in ("git", "oci"):  # an OCI artifact's tag, semver range or digest too
            source = getattr(configuration, kind)
            if source is not None and source.ref is not None:
                key = source.ref.split(" ", 1)[0]  # the key the ref is written with: tag, commit, semver, branch
                refs[name] = SourceRef(source.ref, stack.file_of(("flux", "configurations", name, kind, key)))
    return refs


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


STACKS_PER_WORKER = 8  # below this a worker process costs more (its start) than it saves
CHUNK = 16  # stacks handed to a worker at a time: fewer round trips, and progress still moves


@dataclass
class _Planner:
    """What every stack of one plan is planned with; one per process, with the profiles of each stacks directory
    read once."""

    key_vault: SecretValueReader | None
    checkouts: Mapping[str, Path]
    policy_levels: Mapping[str, Level] | None
    libraries: dict[Path, ProfileLibrary] = field(default_factory=dict)
    cache: PlanCache | None = None  # with it, each stack is looked up, and kept, where it is planned

    def plan(self, task: tuple[Path, str]) -> StackPlan:
        path, display = task
        library = _library(self.libraries, path, display)
        return plan_stack(path, display, self.key_vault, self.checkouts, self.policy_levels, library)

    def plan_cached(self, task: tuple[Path, str]) -> tuple[StackPlan, bool]:
        """The stack's plan from the cache when its key has one (True), else planned and kept there (False)."""
        assert self.cache is not None
        path, display = task
        key = self.cache.stack_key(path, display, _library(self.libraries, path, display))
        if key is not None and isinstance(found := self.cache.load(key), StackPlan):
            return found, True
        stack = self.plan(task)
        if key is not None:
            self.cache.store(key, stack)  # before the checks across stacks add their errors
        return stack, False


def _library(libraries: dict[Path, ProfileLibrary], path: Path, display: str) -> ProfileLibrary:
    """The profiles of a stack file's directory, read once for all its stacks."""
    if path.parent not in libraries:
        libraries[path.parent] = ProfileLibrary(path.parent, str(Path(display).parent))
    return libraries[path.parent]


_worker: _Planner | None = None  # the planner of a worker process


def _start_worker(planner: _Planner) -> None:
    global _worker
    _worker = planner


def _plan_in_worker(task: tuple[Path, str]) -> StackPlan:
    assert _worker is not None
    return _worker.plan(task)


def _plan_cached_in_worker(task: tuple[Path, str]) -> tuple[StackPlan, bool]:
    assert _worker is not None
    return _worker.plan_cached(task)


def plan_fleet(
    paths: Iterable[Path],
    relative_to: Path | None = None,
    key_vault: SecretValueReader | None = None,
    checkouts: Mapping[str, Path] | None = None,
    policy_levels: Mapping[str, Level] | None = None,
    jobs: int = 1,
    on_planned: Callable[[StackPlan], None] | None = None,
    cache: PlanCache | None = None,
) -> FleetPlan:
    """Plan every stack. `key_vault` defaults to the offline reader, which opens no connection. With `jobs` > 1 the
    stacks are planned in up to that many worker processes; the plan is the same as in one. `on_planned` is called
    with each stack's plan as it is done, in order. With `cache`, a stack whose inputs are unchanged is taken from it
    (never with `checkouts` or another `key_vault`: what they read is not in its key); the checks across stacks run
    on every stack all the same. A cache that holds nothing for this program yet is keyed and filled by the workers
    as they plan, so that a first plan costs what a plan without the cache does."""
    display = display_paths(relative_to)
    tasks = [(path, display(path)) for path in paths]
    planner = _Planner(key_vault, dict(checkouts or {}), policy_levels)
    workers = min(jobs, len(tasks) // STACKS_PER_WORKER)
    results: Iterator[tuple[StackPlan, bool]]
    if cache is None or not cache.usable or checkouts or key_vault is not None:
        results = ((stack, False) for stack in _planned(planner, tasks, workers))
    elif workers > 1 and not cache.warm(*tasks[0]):
        # A cache with nothing for this program yet: every stack parsed, keyed, planned and kept by the workers, in
        # parallel (keyed here first, one after the other, a thousand stacks would wait seconds for their keys).
        results = _planned_in_workers(replace(planner, cache=cache), tasks, workers)
    else:
        results = _looked_up_first(planner, cache, tasks, jobs)
    stacks = []
    for stack, hit in results:
        stacks.append(stack)
        if cache is not None:
            cache.hits += hit
        if on_planned:
            on_planned(stack)
    if cache is not None:
        cache.evict()
    return _across_stacks(stacks, tasks, display, relative_to)


def _looked_up_first(
    planner: _Planner, cache: PlanCache, tasks: list[tuple[Path, str]], jobs: int
) -> Iterator[tuple[StackPlan, bool]]:
    """Each stack's plan, in order, with whether it came from the cache: every stack keyed and looked up here
    first, then the others planned (in workers when there are enough of them) and kept."""
    keys: dict[int, str] = {}
    cached: dict[int, StackPlan] = {}
    libraries: dict[Path, ProfileLibrary] = {}  # this process's: the workers read their own
    for index, (path, shown) in enumerate(tasks):
        if not cache.usable:
            break
        key = cache.stack_key(path, shown, _library(libraries, path, shown))
        if key is not None:
            keys[index] = key
            if isinstance(found := cache.load(key), StackPlan):
                cached[index] = found
    to_plan = [task for index, task in enumerate(tasks) if index not in cached]
    planned = _planned(planner, to_plan, min(jobs, len(to_plan) // STACKS_PER_WORKER))
    for index in range(len(tasks)):
        if index in cached:
            yield cached[index], True
            continue
        stack = next(planned)
        if index in keys:
            cache.store(keys[index], stack)  # before the checks across stacks add their errors
        yield stack, False


def _across_stacks(
    stacks: list[StackPlan], tasks: list[tuple[Path, str]], display: Callable[[Path], str], relative_to: Path | None
) -> FleetPlan:
    """The checks across stacks, on every stack however it was planned: one cluster, one stack, of every stack file
    beside them; the stacks in no stage."""
    known = {path: s.cluster_config for (path, _), s in zip(tasks, stacks, strict=True) if s.cluster_config is not None}
    shared = shared_clusters([path for path, _ in tasks], display, known)
    for stack in stacks:
        if stack.stack in shared:
            stack.errors.append(shared[stack.stack])
    return FleetPlan(stacks, unstaged_warnings([path for path, _ in tasks], relative_to))


def unstaged_warnings(paths: list[Path], relative_to: Path | None = None) -> list[str]:
    """Each stack of `paths` in no stage of the fleet.yaml beside it, as `rollout` reads and warns (none without a
    fleet.yaml); a fleet.yaml that cannot be read, said once per problem."""
    warnings = []
    for directory in dict.fromkeys(path.parent for path in paths):
        fleet_path = directory / FLEET_FILE
        if not os.path.lexists(fleet_path):
            continue
        from fluxfleet.rollout.orchestrator import load_inputs  # the rollout's own reading of fleet.yaml (imported
        # only when there is one: it imports the rollout, half a second a plan of a fleet without stages need not pay)

        try:
            fleet, _ = load_inputs(directory, fleet_path, lambda path: display_path(path, relative_to))
        except SpecError as error:
            warnings += [f"which stacks are in no stage is unknown: {issue}" for issue in error.issues]
            continue
        planned = {report_name(path) for path in paths if path.parent == directory}
        warnings += [fleet.unstaged_warning(name) for name in fleet.unstaged if name in planned]
        kinds = cluster_kinds(directory, lambda path: display_path(path, relative_to))
        warnings += arc_notes(fleet, kinds, planned)
    return warnings


def _planned(planner: _Planner, tasks: list[tuple[Path, str]], workers: int) -> Iterator[StackPlan]:
    if workers < 2:
        yield from map(planner.plan, tasks)
        return
    yield from _in_workers(planner, tasks, workers, _plan_in_worker, planner.plan)


def _planned_in_workers(
    planner: _Planner, tasks: list[tuple[Path, str]], workers: int
) -> Iterator[tuple[StackPlan, bool]]:
    yield from _in_workers(planner, tasks, workers, _plan_cached_in_worker, planner.plan_cached)


def _in_workers(planner: _Planner, tasks: list[tuple[Path, str]], workers: int, work, here) -> Iterator[Any]:
    """`work(task)` of each task in `workers` processes, in order; `here(task)` in this process for what they
    cannot do."""
    # forkserver: each worker starts from a process that has imported the program once, never from this one's
    # threads. (No max_tasks_per_child: Python 3.11's pool can hang when it replaces a worker.)
    try:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        pool = ProcessPoolExecutor(workers, context, initializer=_start_worker, initargs=(planner,))
        planned = pool.map(work, tasks, chunksize=CHUNK)  # submits every chunk: a start failure is here
    except (OSError, NotImplementedError, ValueError):  # no worker processes here (no /dev/shm, a sandbox)
        yield from map(here, tasks)
        return
    with pool:
        done = 0
        try:
            for stack in planned:
                done += 1
                yield stack
        except BrokenProcessPool:  # a worker was killed: the stacks not planned yet are planned here
            yield from map(here, tasks[done:])


def display_paths(base: Path | None = None) -> Callable[[Path], str]:
    """display_path with each directory resolved once: a fleet's thousand stack files share one."""
    relatives: dict[Path, Path | None] = {}

    def display(path: Path) -> str:
        if path.parent not in relatives:
            try:
                relatives[path.parent] = path.parent.resolve().relative_to((base or Path.cwd()).resolve())
            except (ValueError, OSError, RuntimeError):
                relatives[path.parent] = None
        relative = relatives[path.parent]
        return str(path) if relative is None else str(relative / path.name)

    return display


def display_path(path: Path, base: Path | None = None) -> str:
    """A stack file as reports name it: relative to the working directory when it is under it."""
    try:  # the directory resolved, not the file: a symlinked stack file keeps its name (and a symlink loop is no error)
        return str((path.parent.resolve() / path.name).relative_to((base or Path.cwd()).resolve()))
    except (ValueError, OSError, RuntimeError):
        return str(path)
