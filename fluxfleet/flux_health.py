"""Whether Flux on a cluster is healthy for what a stack declares: every Flux configuration provisioned, `Compliant`,
and synced to the pinned tag or commit. The rollout gate, `status` and `drift` judge alike through this module."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from fluxfleet.azure.status import FluxConfigurationStatus
from modules.spec import ConfigurationSpec, StackSpec


class Verdict(StrEnum):
    healthy = "healthy"
    waiting = "waiting"
    unhealthy = "unhealthy"


@dataclass(frozen=True)
class Assessment:
    verdict: Verdict
    message: str


def assess(spec: StackSpec, statuses: list[FluxConfigurationStatus], since: datetime) -> Assessment:
    """One look at the cluster's Flux configurations against what the stack declares."""
    by_name = {status.name: status for status in statuses}
    waiting = []
    for name, configuration in spec.flux.configurations.items():
        status = by_name.get(name)
        verdict, message = configuration_verdict(configuration, status, since)
        if verdict is Verdict.unhealthy:
            return Assessment(verdict, f"{name}: {message}")
        if verdict is Verdict.waiting:
            waiting.append(f"{name}: {message}")
    if waiting:
        return Assessment(Verdict.waiting, "; ".join(waiting))
    return Assessment(Verdict.healthy, f"{len(spec.flux.configurations)} Flux configuration(s) Compliant")


def configuration_verdict(
    configuration: ConfigurationSpec, status: FluxConfigurationStatus | None, since: datetime | None = None
) -> tuple[Verdict, str]:
    """One configuration as the stack declares it against what Azure reports. With `since`, a status reported
    before then says nothing yet (an update began since)."""
    if status is None:
        return Verdict.waiting, "not reported yet"
    state = status.provisioning_state.lower()
    if state == "failed":
        return Verdict.unhealthy, f"provisioning Failed: {status.error_message or 'no detail from Azure'}"
    if state != "succeeded":
        return Verdict.waiting, f"provisioning {status.provisioning_state}"
    if configuration.suspend:
        return Verdict.healthy, "suspended"
    if since is not None and status.status_updated_at is not None and status.status_updated_at < since:
        return Verdict.waiting, f"{status.compliance_state} as of before the update"
    if status.compliant:
        mismatch = pin_mismatch(configuration, status)
        return (Verdict.waiting, mismatch) if mismatch else (Verdict.healthy, "Compliant")
    if status.compliance_state.lower() == "non-compliant":
        return Verdict.unhealthy, "Non-Compliant: " + first_problem(status)
    return Verdict.waiting, status.compliance_state


def pin_mismatch(configuration: ConfigurationSpec, status: FluxConfigurationStatus) -> str | None:
    """Why the synced revision is not the pinned one yet, or None (branches and semver ranges pin nothing)."""
    git = configuration.git
    synced = status.source_synced_commit_id or "nothing"
    if git is None:
        return None
    if git.commit and not (status.synced_sha or "").startswith(git.commit):
        return f"synced {synced}, not commit {git.commit}"
    if git.tag and status.synced_ref != git.tag:
        return f"synced {synced}, not tag {git.tag}"
    return None


def first_problem(status: FluxConfigurationStatus) -> str:
    for item in status.objects:
        if item.compliance_state.lower() != "compliant":
            return f"{item.kind} {item.name}: {item.message or item.compliance_state}"
    return status.error_message or "no detail from Azure"
