"""What `fluxfleet status` reports: per stack its stage, its cluster's state, the Flux extension, and per Flux
configuration its compliance and the revision it runs against the one the stack pins. Every renderer (text, JSON,
Markdown, HTML) reads these and nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Health(StrEnum):
    healthy = "healthy"  # provisioned, connected, every configuration Compliant at its pin
    progressing = "progressing"  # an operation or a reconciliation under way: look again later
    unhealthy = "unhealthy"  # Failed, Non-Compliant, offline, not found: someone should look
    unknown = "unknown"  # could not be read (a denied subscription, Azure failing)

    @property
    def rank(self) -> int:
        """Worst first, for sorting and for a stack's health from its parts."""
        return {"unhealthy": 0, "unknown": 1, "progressing": 2, "healthy": 3}[self.value]


def worst(healths: list[Health]) -> Health:
    return min(healths, key=lambda health: health.rank) if healths else Health.healthy


@dataclass(frozen=True)
class ConfigurationStatus:
    name: str
    health: Health
    compliance: str  # Compliant | Non-Compliant | Pending | Suspended | Unknown | missing (not on the cluster)
    provisioning: str  # Succeeded | Failed | Creating | ...
    revision: str | None  # what it runs: sourceSyncedCommitId as Azure reports it
    pinned: str | None  # what the stack pins: "tag v1.0.0", "commit 0ba6f0d", "branch main", "semver >=1.0"
    message: str | None = None  # why it is not healthy: the failing Flux object and its message
    updated_at: datetime | None = None  # statusUpdatedAt


@dataclass(frozen=True)
class StackStatus:
    stack: str
    file: str
    stage: str | None  # None: in no stage of fleet.yaml (or no fleet.yaml)
    kind: str  # aks | arc
    cluster: str
    resource_group: str
    subscription_id: str | None
    health: Health
    summary: str  # one line: why the stack has the health it has
    cluster_state: str  # AKS: provisioning state; Arc: connectivity status; "not found"; "unknown"
    kubernetes_version: str | None = None
    extension_state: str | None = None  # the microsoft.flux extension's provisioning state; None: not installed
    extension_version: str | None = None  # the version installed
    last_seen: datetime | None = None  # Arc: last connectivity time
    configurations: tuple[ConfigurationStatus, ...] = ()
    odd_revision: bool = False  # runs a revision other than most stacks of its stage for the same configuration


@dataclass
class FleetStatus:
    stacks: list[StackStatus]
    read_at: datetime
    denied: tuple[str, ...] = ()  # subscriptions that could not be read: one line each
    errors: list[str] = field(default_factory=list)  # reads that failed: one line each

    @property
    def healthy(self) -> bool:
        return all(stack.health is Health.healthy for stack in self.stacks)

    @property
    def exit_code(self) -> int:
        """1 when part of the fleet could not be read, else 3 when a stack is not healthy, else 0."""
        if self.errors or self.denied or any(stack.health is Health.unknown for stack in self.stacks):
            return 1
        return 0 if self.healthy else 3
