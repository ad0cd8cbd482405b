"""What `fluxfleet status` reports: per stack its stage, its cluster's state, the Flux extension, and per Flux
configuration its compliance and the revision it runs against the one the stack pins. Every renderer (text, JSON,
Markdown, HTML) reads these and nothing else, and lists the stacks in the order FleetStatus holds them: by stage, in
fleet.yaml's order."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Health(StrEnum):
    healthy = "healthy"  # provisioned, connected, every configuration Compliant at its pin
    progressing = "progressing"  # an operation or a reconciliation under way: look again later
    unhealthy = "unhealthy"  # Failed, Non-Compliant, offline, not found: someone should look
    unread = "unread"  # not read (a denied subscription, Azure failing, no subscription): nothing is known of it

    @property
    def rank(self) -> int:
        """Worst first, for sorting and for a stack's health from its parts."""
        return {"unhealthy": 0, "unread": 1, "progressing": 2, "healthy": 3}[self.value]


def worst(healths: list[Health]) -> Health:
    return min(healths, key=lambda health: health.rank) if healths else Health.healthy


def stage_revision(runs: Counter[str]) -> str:
    """A stage's revision of one configuration, from how many of its stacks run each: the one most run; a tie goes
    to the greatest string, so that every run picks the same. A stack running another is on an odd revision."""
    return max(runs.items(), key=lambda item: (item[1], item[0]))[0]


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
    summary: str  # one line: why the stack has the health it has (unread: why it was not read)
    cluster_state: str  # AKS: provisioning state; Arc: connectivity status; "not found"; "unread"
    kubernetes_version: str | None = None
    extension_state: str | None = None  # the microsoft.flux extension's provisioning state; None: not installed (or
    # not read: see `read`)
    extension_version: str | None = None  # the version installed
    last_seen: datetime | None = None  # Arc: last connectivity time
    configurations: tuple[ConfigurationStatus, ...] = ()
    odd_revision: bool = False  # runs a revision other than most stacks of its stage for the same configuration

    @property
    def read(self) -> bool:
        """False when its cluster was not read: then no part of it (extension, configurations) is known."""
        return self.health is not Health.unread


@dataclass
class FleetStatus:
    stacks: list[StackStatus]
    read_at: datetime
    denied: tuple[str, ...] = ()  # subscriptions that could not be read: one line each
    errors: list[str] = field(default_factory=list)  # reads that failed: one line each
    stages: tuple[str, ...] = ()  # fleet.yaml's stages, in its order

    def __post_init__(self) -> None:
        """The stacks by stage: fleet.yaml's stages in its order, then stages it does not name by name, then the
        stacks in no stage; within a stage, in the order given. Every format lists them so."""
        rank = {stage: index for index, stage in enumerate(self.stages)}
        self.stacks = sorted(self.stacks, key=lambda s: (s.stage is None, rank.get(s.stage, len(rank)), s.stage or ""))

    @property
    def healthy(self) -> bool:
        return all(stack.health is Health.healthy for stack in self.stacks)

    @property
    def exit_code(self) -> int:
        """1 when part of the fleet could not be read, else 3 when a stack is not healthy, else 0."""
        if self.errors or self.denied or any(not stack.read for stack in self.stacks):
            return 1
        return 0 if self.healthy else 3
