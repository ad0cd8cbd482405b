"""`fluxfleet drift`: what differs, for each stack, between git (the stack as declared), Azure and the cluster.

Three looks per stack, each on its own so that one failing does not hide the others:
- infrastructure: a `pulumi preview --refresh` through the stack runner; every resource it would change, with the
  property paths, except what is not drift: write-only secrets Azure never returns, and defaults Azure fills in for
  properties the program leaves unset;
- Flux: the configurations and the extension as Azure reports them: compliance, provisioning, the synced revision
  against the pinned one (on a branch: the source's newer head waiting past a grace period, see
  `flux_health.branch_lag`), configurations nobody declared;
- secret rotation: the Key Vault version each reference was deployed at (the stack's `secretVersions` output)
  against the version Key Vault now serves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from fluxfleet.azure.access import no_subscription
from fluxfleet.azure.status import AzureError, AzureReader, ExtensionStatus, FluxConfigurationStatus
from fluxfleet.clock import Clock, SystemClock
from fluxfleet.flux_health import branch_lag, first_problem, pin_mismatch
from fluxfleet.redact import mask_secrets
from fluxfleet.rollout.journal import RunRecord, RunStatus, StackState
from fluxfleet.upgrade_path import installed_flux, upgrade_path_problem
from fluxfleet.runner import OperationResult, PropertyChange, ResourceChange, RunnerError, StackRunner, property_path
from modules.cluster_ref import ClusterRef
from modules.flux_extension import EXTENSION_TYPE
from modules.spec import (
    SpecError,
    SpecIssue,
    Stack,
    key_vault_refs,
    load_stack_file,
    report_name,
    shared_clusters,
    same_extension_settings,
)
from policies.rules import (
    EXTENSION,
    FLUX_CONFIGURATION,
    FLUX_EXTENSION_MIN_VERSION,
    MANAGED_CLUSTER,
    WRITE_ONLY_SECRETS,
    Resource,
    minor_version,
)

ANY = object()  # in SERVER_DEFAULTS: whatever value Azure fills in

# Values Azure fills in for properties the program leaves unset: a refreshed state holds them, the program does
# not, and the difference is not drift. `*` stands for any one map key or list index.
SERVER_DEFAULTS: dict[str, dict[str, Any]] = {
    FLUX_CONFIGURATION: {
        "scope": "cluster",
        "namespace": "default",
        "suspend": False,
        "sourceKind": "GitRepository",
        "reconciliationWaitDuration": "PT10M",
        "waitForReconciliation": False,
        "gitRepository.provider": "Generic",
        "gitRepository.syncIntervalInSeconds": 600,
        "gitRepository.timeoutInSeconds": 600,
        "bucket.insecure": True,
        "bucket.syncIntervalInSeconds": 600,
        "bucket.timeoutInSeconds": 600,
        "azureBlob.syncIntervalInSeconds": 600,
        "azureBlob.timeoutInSeconds": 600,
        "kustomizations.*.name": ANY,  # Azure echoes the map key
        "kustomizations.*.path": "",
        "kustomizations.*.dependsOn": [],
        "kustomizations.*.syncIntervalInSeconds": 600,
        "kustomizations.*.timeoutInSeconds": 600,
        "kustomizations.*.prune": False,
        "kustomizations.*.force": False,
        "kustomizations.*.wait": True,
    },
    EXTENSION: {
        "releaseTrain": "Stable",
        "autoUpgradeMinorVersion": True,
        "configurationSettings": {},
        "scope.cluster.releaseNamespace": "flux-system",
    },
    MANAGED_CLUSTER: {
        "agentPoolProfiles.*.nodeImageVersion": ANY,  # AKS upgrades node images on its own schedule
        "agentPoolProfiles.*.currentOrchestratorVersion": ANY,
        "nodeResourceGroup": ANY,  # MC_<group>_<cluster>_<region> unless set
    },
}


class Severity(StrEnum):
    drift = "drift"
    note = "note"  # worth reading, not drift (a reconciliation in progress, a version never recorded)


@dataclass(frozen=True)
class Finding:
    kind: str  # infrastructure | flux | secret-rotation
    subject: str  # a resource, a Flux configuration, the extension, a Key Vault reference
    message: str
    severity: Severity = Severity.drift


class Status(StrEnum):
    in_sync = "in-sync"
    drifted = "drifted"
    error = "error"  # a look could not be taken (the findings of the others still stand)
    invalid = "invalid"  # the stack file itself is invalid


@dataclass
class StackDrift:
    stack: str
    file: str
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one line per look that failed
    spec_errors: list[SpecIssue] = field(default_factory=list)
    seconds: float = 0.0
    remediation: str | None = None  # with --remediate: what the update did

    @property
    def drifts(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity is Severity.drift]

    @property
    def status(self) -> Status:
        if self.spec_errors:
            return Status.invalid
        if self.errors:
            return Status.error
        return Status.drifted if self.drifts else Status.in_sync


@dataclass
class FleetDrift:
    stacks: list[StackDrift]

    @property
    def exit_code(self) -> int:
        """2 invalid input, else 1 a stack could not be checked, else 3 drift found, else 0."""
        statuses = {stack.status for stack in self.stacks}
        for status, code in ((Status.invalid, 2), (Status.error, 1), (Status.drifted, 3)):
            if status in statuses:
                return code
        return 0


# --------------------------------------------------------------------------------------------- infrastructure


def infrastructure_findings(preview: OperationResult) -> list[Finding]:
    findings = []
    for change in preview.changes:
        casing = _addon_key_casing(change)
        kept = [p for p in change.properties if p.path not in casing and not is_not_drift(change.type, p)]
        if change.properties and not kept and change.op not in ("create", "delete"):
            continue  # every difference is a write-only secret or an Azure default
        findings.append(Finding("infrastructure", f"{_short_type(change.type)} {change.name}", _describe(change, kept)))
    return findings


def is_not_drift(resource_type: str, change: PropertyChange) -> bool:
    """A difference that says nothing about the resource: a write-only secret Azure never returns (absent from
    the refreshed state), or an Azure default for a property the program does not set."""
    kind = Resource(resource_type, "", {}).kind
    parts = property_path(change.path)
    if change.old is None and any(_within(parts, property_path(path)) for path in WRITE_ONLY_SECRETS.get(kind, ())):
        return True
    if kind == EXTENSION and parts[:1] == ["configurationSettings"]:
        return _same_settings(parts[1:], change.old, change.new)
    if change.new is not None:
        return False
    for pattern, default in SERVER_DEFAULTS.get(kind, {}).items():
        if _matches(parts, pattern.split(".")) and (default is ANY or change.old == default):
            return True
    return False


def _same_settings(key: Sequence[str | int], old: Any, new: Any) -> bool:
    """Whether the extension's settings (the map, or the key `key` of it) as Azure holds them and as the program sends
    them mean the same: Azure holds strings, typed settings compare by value, an unset key matches the extension's
    documented default (modules.spec's EXTENSION_SETTINGS)."""
    if key:  # one key; a key with dots may arrive split: `configurationSettings.multiTenancy.enforce`
        name = ".".join(map(str, key))
        old, new = ({} if value is None else {name: value} for value in (old, new))
    if not isinstance(old or {}, Mapping) or not isinstance(new or {}, Mapping):
        return False
    return same_extension_settings(old or {}, new or {})


def _addon_key_casing(change: ResourceChange) -> set[str]:
    """Paths of add-ons that differ only in key casing: AKS answers `addonProfiles.azurepolicy` for the
    `azurePolicy` the program sends; a delete of one casing and an add of the other, with one value, are not drift."""
    if Resource(change.type, "", {}).kind != MANAGED_CLUSTER:
        return set()
    addons: dict[str, list[PropertyChange]] = {}
    for p in change.properties:
        parts = property_path(p.path)
        if len(parts) == 2 and parts[0] == "addonProfiles":
            addons.setdefault(str(parts[1]).lower(), []).append(p)
    paths = set()
    for same in addons.values():
        deleted = [p for p in same if p.kind == "delete"]
        added = [p for p in same if p.kind == "add"]
        if len(deleted) == 1 and len(added) == 1 and deleted[0].old == added[0].new:
            paths |= {deleted[0].path, added[0].path}
    return paths


def _within(parts: Sequence[str | int], prefix: Sequence[str | int]) -> bool:
    return list(parts[: len(prefix)]) == list(prefix)


def _matches(parts: Sequence[str | int], pattern: Sequence[str]) -> bool:
    return len(parts) == len(pattern) and all(
        p == "*" or str(part) == p for part, p in zip(parts, pattern, strict=True)
    )


def _describe(change: ResourceChange, kept: Iterable[PropertyChange]) -> str:
    verb = {
        "create": "missing from Azure: would be created",
        "delete": "in the state but not declared: would be deleted",
    }
    if change.op in verb:
        return verb[change.op]
    destructive = " (destructive: the resource would be replaced or deleted)" if change.destructive else ""
    details = [f"{p.path}: {_value(p.old)} → {_value(p.new)}" for p in kept] or [path for path in change.diffs]
    return f"would {change.op}{destructive}: " + ("; ".join(details) if details else "no property detail")


def _value(value: Any) -> str:
    text = "unset" if value is None else repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _short_type(resource_type: str) -> str:
    return Resource(resource_type, "", {}).kind


# --------------------------------------------------------------------------------------------- Flux


def flux_findings(
    stack: Stack,
    configurations: Sequence[FluxConfigurationStatus],
    extensions: Sequence[ExtensionStatus],
    clock: Clock | None = None,
) -> list[Finding]:
    """`clock` tells how long a branch's new head has waited (the system clock unless given)."""
    now = (clock or SystemClock()).now()
    findings = []
    flux = [e for e in extensions if e.extension_type.lower() == EXTENSION_TYPE]
    if not flux:
        findings.append(Finding("flux", "extension", f"no {EXTENSION_TYPE} extension on the cluster"))
    for extension in flux:
        findings += _extension_findings(extension)
    installed = installed_flux(flux)
    if installed is not None and (hop := upgrade_path_problem(flux, stack.spec)):  # what `rollout` refuses
        findings.append(Finding("flux", f"extension {installed.name}", f"the pinned version cannot be applied: {hop}"))
    reported = {status.name: status for status in configurations}
    for name, configuration in stack.spec.flux.configurations.items():
        status = reported.pop(name, None)
        if status is None:
            findings.append(Finding("flux", name, "declared but not on the cluster"))
            continue
        findings += _configuration_findings(name, configuration, status, now)
    for name in sorted(reported):
        findings.append(Finding("flux", name, "on the cluster but declared by no stack: created by hand?"))
    return findings


def _extension_findings(extension: ExtensionStatus) -> list[Finding]:
    subject = f"extension {extension.name}"
    state = extension.provisioning_state
    if extension.succeeded:
        findings = []
    elif state.lower() in ("creating", "updating", "deleting"):
        findings = [Finding("flux", subject, f"{state}: an operation is running", Severity.note)]
    else:
        findings = [Finding("flux", subject, f"{state}: " + ("; ".join(extension.messages) or "no detail from Azure"))]
    version = minor_version(extension.current_version)
    if version is not None and version < FLUX_EXTENSION_MIN_VERSION:
        oldest = ".".join(map(str, FLUX_EXTENSION_MIN_VERSION))
        findings.append(Finding("flux", subject, f"version {extension.current_version} is older than {oldest}"))
    return findings


def _configuration_findings(
    name: str, configuration: Any, status: FluxConfigurationStatus, now: datetime
) -> list[Finding]:
    state = status.provisioning_state.lower()
    if state == "failed":
        return [Finding("flux", name, f"provisioning Failed: {status.error_message or 'no detail from Azure'}")]
    if state != "succeeded":
        return [Finding("flux", name, f"provisioning {status.provisioning_state}", Severity.note)]
    if found := _source_findings(name, configuration, status):
        return found
    compliance = status.compliance_state.lower()
    if compliance == "non-compliant":
        return [Finding("flux", name, f"Non-Compliant: {first_problem(status)}")]
    if compliance == "compliant":
        mismatch = pin_mismatch(configuration, status)
        if mismatch:
            return [Finding("flux", name, f"stale revision: {mismatch}")]
        lag = branch_lag(configuration, status)
        if lag is None:
            return []
        heading, severity = _BRANCH_LAG[lag.stale(now)]
        return [Finding("flux", name, f"{heading}: {lag.describe(now)}", severity)]
    if compliance == "suspended" and configuration.suspend:
        return []
    return [Finding("flux", name, f"{status.compliance_state}", Severity.note)]


def _source_findings(name: str, configuration: Any, status: FluxConfigurationStatus) -> list[Finding]:
    """The cluster's configuration fetches another kind of source, or authenticates another way, than the stack
    declares (what a read at API 2025-04-01 says: an OCI source, a git provider)."""
    if status.source_kind and status.source_kind.lower() != configuration.source_kind.lower():
        message = f"source is {status.source_kind} on the cluster, {configuration.source_kind} in the stack"
        return [Finding("flux", name, message)]
    git = configuration.git
    declared = (git.provider or "Generic") if git is not None else None
    if declared and status.source_provider and status.source_provider.lower() != declared.lower():
        message = f"git provider is {status.source_provider} on the cluster, {declared} in the stack"
        return [Finding("flux", name, message)]
    return []


# A branch's new head not applied yet: drift past the grace period; within it, or since an unknown time, a note.
_BRANCH_LAG = {
    True: ("stale revision", Severity.drift),
    False: ("catching up", Severity.note),
    None: ("behind the branch head", Severity.note),
}


# --------------------------------------------------------------------------------------------- secret rotation


def rotation_findings(stack: Stack, deployed: Mapping[str, str], current: Callable[[Any], str]) -> list[Finding]:
    """`deployed`: the stack's `secretVersions` output; `current(ref)`: the version Key Vault serves now."""
    findings = []
    for path, ref in key_vault_refs(stack.spec):
        if ref.version:
            continue  # pinned: a new version in Key Vault is not meant to reach the cluster
        version = deployed.get(str(ref))
        if version is None:
            message = f"{path}: no deployed version recorded; the next update records it"
            findings.append(Finding("secret-rotation", str(ref), message, Severity.note))
            continue
        now = current(ref)
        if now != version:
            findings.append(
                Finding(
                    "secret-rotation",
                    str(ref),
                    f"rotation pending for {path}: deployed version {version[:8]}, Key Vault serves {now[:8]}; "
                    "an update delivers it",
                )
            )
    return findings


# --------------------------------------------------------------------------------------------- a stack, a fleet


def check_stack(
    path: Path,
    runner: StackRunner,
    reader: AzureReader,
    subscription_of: Callable[[Stack], str | None],
    display: str | None = None,
    clock: Clock | None = None,
) -> StackDrift:
    started = time.monotonic()
    file = display or str(path)
    result = StackDrift(report_name(path), file)
    try:
        stack = load_stack_file(path, file)
    except SpecError as error:
        result.spec_errors = error.issues
        return result
    looks = (
        ("infrastructure", lambda: infrastructure_findings(_preview(runner, stack.name))),
        ("flux", lambda: _flux(stack, reader, subscription_of(stack), clock)),
        (
            "secret-rotation",
            lambda: rotation_findings(
                stack,
                runner.outputs(stack.name).get("secretVersions") or {},
                lambda ref: reader.secret_metadata(ref).version,
            ),
        ),
    )
    # Findings quote property values a refresh read back from Azure, which nothing upstream has masked (the Azure
    # layer and the runner mask their own messages and errors): credentials in them are masked before any report.
    for look, take in looks:
        try:
            result.findings += [_masked(finding) for finding in take()]
        except (AzureError, RunnerError) as error:
            result.errors.append(f"{look}: {error}")
    result.seconds = time.monotonic() - started
    return result


def _masked(finding: Finding) -> Finding:
    return replace(finding, subject=mask_secrets(finding.subject), message=mask_secrets(finding.message))


def _preview(runner: StackRunner, stack: str) -> OperationResult:
    preview = runner.preview(stack, refresh=True)
    if not preview.ok:
        raise RunnerError(f"pulumi preview failed: {preview.error or 'no detail'}")
    return preview


def _flux(stack: Stack, reader: AzureReader, subscription_id: str | None, clock: Clock | None) -> list[Finding]:
    if subscription_id is None:
        raise AzureError(no_subscription([stack.name], option=True))
    cluster = ClusterRef.of(stack.spec.cluster)
    return flux_findings(
        stack, reader.flux_configurations(subscription_id, cluster), reader.extensions(subscription_id, cluster), clock
    )


def check_fleet(
    paths: Sequence[Path],
    runner: StackRunner,
    reader: AzureReader,
    subscription_of: Callable[[Stack], str | None],
    *,
    max_concurrency: int = 4,
    display: Callable[[Path], str] = str,
    clock: Clock | None = None,
) -> FleetDrift:
    """Every stack checked, up to `max_concurrency` at once; the report keeps the order of `paths`. A stack whose
    cluster another stack file names too is invalid input: not previewed."""
    shared = shared_clusters(paths, display)

    def check(path: Path) -> StackDrift:
        if (name := report_name(path)) in shared:
            return StackDrift(name, display(path), spec_errors=[shared[name]])
        return check_stack(path, runner, reader, subscription_of, display(path), clock)

    with ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="drift") as pool:
        stacks = list(pool.map(check, paths))
    return FleetDrift(stacks)


def remediation_targets(fleet: FleetDrift, staged: Iterable[str], fleet_file: str) -> frozenset[str]:
    """`--remediate`: the drifted stacks a remediation rollout takes, those in a stage of fleet.yaml (it goes stage
    by stage, as any rollout); a drifted stack in no stage is marked as not remediated, and why."""
    staged = set(staged)
    for stack in fleet.stacks:
        if stack.status is Status.drifted and stack.stack not in staged:
            stack.remediation = f"not remediated: in no stage of {fleet_file}"
    return frozenset(s.stack for s in fleet.stacks if s.status is Status.drifted and s.stack in staged)


def record_remediation(fleet: FleetDrift, record: RunRecord) -> None:
    """What the remediation rollout did to each stack it took, into the report, with the run to resume."""
    waiting = record.status is RunStatus.awaiting_approval
    for stack in fleet.stacks:
        entry = record.stacks.get(stack.stack)
        if entry is None:
            continue
        if entry.state is StackState.succeeded:
            stack.remediation = f"updated (run {record.run_id})"
        elif waiting and entry.state is StackState.pending:
            stack.remediation = (
                f"waits for approval of stage {entry.stage}: "
                f"fluxfleet rollout --resume {record.run_id} --approve {entry.stage}"
            )
        else:
            detail = f": {mask_secrets(entry.message)}" if entry.message else ""
            stack.remediation = f"{entry.state}{detail} (fluxfleet rollout --resume {record.run_id})"
