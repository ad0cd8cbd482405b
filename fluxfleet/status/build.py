"""The fleet's status from one fleet read: each stack's cluster, Flux extension and Flux configurations judged
against what the stack declares (fluxfleet.flux_health, as the rollout gate judges), and the stacks whose cluster
runs a revision the rest of its stage does not.

Health of a stack is the worst of its parts:
- cluster: AKS `Succeeded` (a running operation: progressing; `Failed`: unhealthy); Arc `Connected` with no failed
  agent (`Connecting`: progressing; offline, expired or agents failed: unhealthy); not found: unhealthy;
- the `microsoft.flux` extension: `Succeeded` (`Creating`, `Updating`: progressing; absent or `Failed`: unhealthy);
- each declared Flux configuration: Compliant at its pin (reconciling: progressing; Failed or Non-Compliant, or
  missing from the cluster: unhealthy);
- a subscription that cannot be read, a read that failed, or no subscription to read: unread (never absent or
  unhealthy: nothing is known of it).

The stacks come out by stage, in fleet.yaml's order (`FleetStatus`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from fluxfleet.azure.access import no_subscription
from fluxfleet.azure.fleet_graph import ClusterSnapshot, ClusterTarget, FleetReads, FleetSnapshot
from fluxfleet.flux_health import Verdict, configuration_verdict
from fluxfleet.status.model import ConfigurationStatus, FleetStatus, Health, StackStatus, stage_revision, worst
from modules.spec import ConfigurationSpec, Stack

_HEALTH = {Verdict.healthy: Health.healthy, Verdict.waiting: Health.progressing, Verdict.unhealthy: Health.unhealthy}
_PROGRESSING = frozenset({"creating", "updating", "deleting", "accepted", "provisioning", "upgrading", "starting"})


def target_of(stack: Stack, default_subscription: str | None) -> ClusterTarget | None:
    """Where a stack's cluster is: None when neither the stack nor the command says which subscription."""
    subscription = stack.spec.cluster.subscription_id or default_subscription
    if subscription is None:
        return None
    cluster = stack.spec.cluster
    return ClusterTarget(subscription.lower(), cluster.resource_group, cluster.name, cluster.kind)


def fleet_status(
    stacks: Sequence[Stack],
    reads: FleetReads,
    stage_of: Callable[[str], str | None],
    default_subscription: str | None,
    stages: Sequence[str] = (),
) -> FleetStatus:
    """One read of every stack's cluster; the stacks by stage, `stages` (fleet.yaml's) in their order."""
    targets = {stack.name: target_of(stack, default_subscription) for stack in stacks}
    snapshot = reads.read(sorted({t for t in targets.values() if t is not None}, key=ClusterTarget.order))
    denied = {d.subscription_id.lower(): d.reason for d in snapshot.denied}
    statuses = [_stack_status(stack, stage_of(stack.name), targets[stack.name], snapshot, denied) for stack in stacks]
    return FleetStatus(
        stacks=_mark_odd_revisions(statuses),
        read_at=snapshot.read_at,
        denied=tuple(f"subscription {s}: {reason}" for s, reason in sorted(denied.items())),
        stages=tuple(stages),
    )


def _stack_status(
    stack: Stack,
    stage: str | None,
    target: ClusterTarget | None,
    snapshot: FleetSnapshot,
    denied: Mapping[str, str],
) -> StackStatus:
    cluster = stack.spec.cluster
    base = StackStatus(
        stack=stack.name,
        file=stack.file,
        stage=stage,
        kind=cluster.kind,
        cluster=cluster.name,
        resource_group=cluster.resource_group,
        subscription_id=target.subscription_id if target else None,
        health=Health.unread,
        summary="",
        cluster_state="unread",
    )
    if target is None:
        return replace(base, summary=no_subscription([stack.name], option=True))
    if target.subscription_id in denied:
        reason = denied[target.subscription_id]
        return replace(base, summary=f"subscription {target.subscription_id} cannot be read: {reason}")
    if target in snapshot.failed:
        return replace(base, summary=snapshot.failed[target])
    read = snapshot.clusters.get(target)
    if read is None or not read.found:
        where = f"{cluster.resource_group}/{cluster.name}"
        return replace(base, health=Health.unhealthy, cluster_state="not found", summary=f"cluster {where} not found")
    return _judged(stack, base, read)


def _judged(stack: Stack, base: StackStatus, read: ClusterSnapshot) -> StackStatus:
    parts: list[tuple[Health, str]] = []
    if read.managed is not None:
        state, version, last_seen = read.managed.provisioning_state, read.managed.current_kubernetes_version, None
        parts.append((_state_health(state), f"cluster {state}"))
    elif read.connected is not None:
        state, version = read.connected.connectivity_status, read.connected.kubernetes_version
        last_seen = read.connected.last_connectivity_time
        connectivity = state.lower()
        health = Health.healthy if connectivity == "connected" else Health.progressing
        if connectivity in ("offline", "expired", "agentnotinstalled"):
            health = Health.unhealthy
        parts.append((health, f"Arc cluster {state}"))
        if (read.connected.agent_state or "").lower() == "failed":
            errors = "; ".join(error.message for error in read.connected.agent_errors[:2]) or "no detail from Azure"
            parts.append((Health.unhealthy, f"Arc agents Failed: {errors}"))
    else:
        state, version, last_seen = "unknown", None, None
    extension = read.flux_extension
    if extension is None:
        parts.append((Health.unhealthy, "the microsoft.flux extension is not installed"))
    else:
        detail = f": {extension.messages[0]}" if extension.messages else ""
        installed = extension.provisioning_state
        parts.append((_state_health(installed), f"Flux extension {installed}{detail}"))
    configurations = tuple(
        _configuration_status(name, configuration, read)
        for name, configuration in stack.spec.flux.configurations.items()
    )
    parts += [(c.health, f"{c.name}: {c.message or c.compliance}") for c in configurations]
    health = worst([part[0] for part in parts])
    reasons = [reason for part_health, reason in parts if part_health is health]
    summary = reasons[0] if health is not Health.healthy else f"{len(configurations)} Flux configuration(s) Compliant"
    return replace(
        base,
        health=health,
        summary=summary,
        cluster_state=state,
        kubernetes_version=version,
        extension_state=extension.provisioning_state if extension else None,
        extension_version=(extension.current_version or extension.version) if extension else None,
        last_seen=last_seen,
        configurations=configurations,
    )


def _state_health(state: str) -> Health:
    lowered = state.lower()
    if lowered == "succeeded":
        return Health.healthy
    return Health.progressing if lowered in _PROGRESSING else Health.unhealthy


def _configuration_status(name: str, configuration: ConfigurationSpec, read: ClusterSnapshot) -> ConfigurationStatus:
    status = next((s for s in read.flux_configurations if s.name == name), None)
    pinned = configuration.git.ref if configuration.git else None
    if status is None:
        return ConfigurationStatus(name, Health.unhealthy, "missing", "-", None, pinned, "not on the cluster")
    verdict, message = configuration_verdict(configuration, status)
    return ConfigurationStatus(
        name=name,
        health=_HEALTH[verdict],
        compliance=status.compliance_state,
        provisioning=status.provisioning_state,
        revision=status.source_synced_commit_id,
        pinned=pinned,
        message=None if verdict is Verdict.healthy else message,
        updated_at=status.status_updated_at,
    )


def _mark_odd_revisions(stacks: list[StackStatus]) -> list[StackStatus]:
    """Within a stage, a configuration's revision that differs from the one most of the stage's clusters run."""
    runs: dict[tuple[str | None, str], Counter[str]] = {}
    for stack in stacks:
        for configuration in stack.configurations if stack.stage is not None else ():  # a stage's stacks only
            if configuration.revision:
                runs.setdefault((stack.stage, configuration.name), Counter())[configuration.revision] += 1
    marked = []
    for stack in stacks:
        odd = stack.stage is not None and any(
            configuration.revision is not None
            and len(runs[(stack.stage, configuration.name)]) > 1
            and configuration.revision != stage_revision(runs[(stack.stage, configuration.name)])
            for configuration in stack.configurations
        )
        marked.append(replace(stack, odd_revision=odd) if odd else stack)
    return marked
