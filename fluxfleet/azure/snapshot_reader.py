"""`SnapshotReader`: an `AzureReader` whose cluster, extension and Flux configuration reads are answered from one
fleet read (Resource Graph) taken before a command's per-stack checks, so that `drift` and `preflight` of a
thousand stacks cost a few queries instead of thousands of GETs. Every other read, and a cluster the fleet read
does not hold, goes to ARM (`arm`).

Freshness: Resource Graph lags ARM by seconds to minutes. A Flux configuration list in which anything is not
Compliant and Succeeded would fail a job, and so would an extension not Succeeded: each is read again through ARM,
and ARM's answer is the one given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from fluxfleet.azure.fleet_graph import ClusterSnapshot, ClusterTarget, FleetReads, FleetSnapshot
from fluxfleet.azure.status import (
    AzureError,
    AzureReader,
    ConnectedClusterStatus,
    ExtensionStatus,
    FluxConfigurationStatus,
    ManagedClusterStatus,
)
from modules.cluster_ref import ClusterRef
from modules.spec import SpecError, Stack, load_stack_file


class SnapshotReader:
    def __init__(self, snapshot: FleetSnapshot, arm: AzureReader):
        self.snapshot = snapshot
        self.arm = arm
        self._by_place = {_place(t.subscription_id, t.resource_group, t.name): t for t in snapshot.clusters}
        self._failed = {_place(t.subscription_id, t.resource_group, t.name): m for t, m in snapshot.failed.items()}
        self._denied = {d.subscription_id.lower(): d.reason for d in snapshot.denied}

    def __getattr__(self, name: str) -> Any:  # providers, features, resource groups, Key Vault: ARM's
        return getattr(self.arm, name)

    def _read(self, subscription_id: str, resource_group: str, name: str) -> ClusterSnapshot | None:
        """The fleet read's answer for a cluster; None to ask ARM. AzureError when its subscription or read failed."""
        place = _place(subscription_id, resource_group, name)
        if subscription_id.lower() in self._denied:
            raise AzureError(f"subscription {subscription_id} cannot be read: {self._denied[subscription_id.lower()]}")
        if place in self._failed:
            raise AzureError(self._failed[place])
        target = self._by_place.get(place)
        return self.snapshot.clusters[target] if target is not None else None

    def managed_cluster(self, subscription_id: str, resource_group: str, name: str) -> ManagedClusterStatus | None:
        read = self._read(subscription_id, resource_group, name)
        if read is None:
            return self.arm.managed_cluster(subscription_id, resource_group, name)
        return read.managed if read.found else None

    def connected_cluster(self, subscription_id: str, resource_group: str, name: str) -> ConnectedClusterStatus | None:
        read = self._read(subscription_id, resource_group, name)
        if read is None:
            return self.arm.connected_cluster(subscription_id, resource_group, name)
        return read.connected if read.found else None

    def extensions(self, subscription_id: str, cluster: ClusterRef) -> list[ExtensionStatus]:
        read = self._read(subscription_id, cluster.resource_group, str(cluster.name))
        if read is None or not read.found or not all(e.succeeded for e in read.extensions):
            # ARM has the current state, and what the batch leaves out: since when an extension is Creating
            return self.arm.extensions(subscription_id, cluster)
        return list(read.extensions)

    def flux_configurations(self, subscription_id: str, cluster: ClusterRef) -> list[FluxConfigurationStatus]:
        read = self._read(subscription_id, cluster.resource_group, str(cluster.name))
        if read is None or not read.found or not _all_well(read.flux_configurations):
            return self.arm.flux_configurations(subscription_id, cluster)  # the current state decides a failure
        return list(read.flux_configurations)


def read_fleet(fleet: FleetReads, arm: AzureReader, targets: Sequence[ClusterTarget]) -> AzureReader:
    """One fleet read of `targets`, as an AzureReader for per-stack checks. When Resource Graph cannot be read at
    all, the checks read ARM as before (and say what is wrong in their own results)."""
    if not targets:
        return arm
    try:
        return SnapshotReader(fleet.read(targets), arm)  # type: ignore[return-value]
    except AzureError:
        return arm


def fleet_reader_of_stacks(
    paths: Sequence[Path],
    display: Callable[[Path], str],
    subscription_of: Callable[[Stack], str | None],
    arm: Any,
    *,
    fall_back: bool = True,
) -> AzureReader:
    """The reader `drift` and `preflight` check a fleet through: the clusters of every valid stack of `paths` read at
    once through Resource Graph (with `arm`'s credential, options and cloud), everything else through `arm`. An
    invalid stack is left to the checks, which report it as before. Without `fall_back`, a cluster Resource Graph
    does not know is read by the checks themselves, in their order. Over a CloudReader (a fleet in several clouds),
    one such read per cloud, of the clusters in that cloud."""
    from fluxfleet.azure.clouds import CloudReader, fleet_reads

    targets: dict[str, set[ClusterTarget]] = {}  # by cloud
    for path in paths:
        try:
            stack = load_stack_file(path, display(path))
        except SpecError:
            continue
        if subscription := subscription_of(stack):
            cluster = stack.spec.cluster
            target = ClusterTarget(subscription.lower(), cluster.resource_group, cluster.name, cluster.kind)
            targets.setdefault(cluster.cloud, set()).add(target)

    def snapshot(reader: Any, cloud_targets: Iterable[ClusterTarget]) -> AzureReader:
        ordered = sorted(cloud_targets, key=ClusterTarget.order)
        return read_fleet(fleet_reads(reader, fall_back=fall_back), reader, ordered)

    if isinstance(arm, CloudReader):
        readers = {cloud: snapshot(reader, targets.get(cloud, ())) for cloud, reader in arm.readers.items()}
        return CloudReader(readers, arm.clouds)  # type: ignore[return-value]
    return snapshot(arm, [target for cloud_targets in targets.values() for target in cloud_targets])


def _all_well(configurations: Sequence[FluxConfigurationStatus]) -> bool:
    return all(c.compliant and c.provisioning_state.lower() == "succeeded" for c in configurations)


def _place(subscription_id: str, resource_group: str, name: str) -> tuple[str, str, str]:
    return subscription_id.lower(), resource_group.lower(), name.lower()
