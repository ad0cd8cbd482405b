"""A fleet over Azure clouds: which cloud each subscription is in, and the readers that send each read to its cloud.

Every read of the Azure layer names its subscription (a Key Vault read, its reference, which carries the stack's
cloud), and a subscription is in one cloud, so a read goes to the reader of its subscription's cloud. A fleet in one
cloud is read by that cloud's `ArmReader` (`ArmReader.for_cloud`: the same settings and client options) and a
`ResourceGraphReader` beside it; a fleet over several clouds by a `CloudReader` over one of each per cloud in use.
What a cloud is (its endpoints, audience and authority) is in modules/clouds.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fluxfleet.azure.status import (
    AzureError,
    AzureReader,
    ConnectedClusterStatus,
    ExtensionStatus,
    FeatureState,
    FluxConfigurationStatus,
    ManagedClusterStatus,
    UpgradeProfile,
    ProviderState,
    SecretMetadata,
)
from fluxfleet.clock import Clock, SystemClock
from modules.clouds import DEFAULT_CLOUD
from modules.cluster_ref import ClusterRef
from modules.spec import KeyVaultRef, SpecError, Stack, load_stack_file


@dataclass(frozen=True)
class SubscriptionClouds:
    """The cloud of each subscription of a fleet (lower case), as its stacks say; `default` for any other."""

    clouds: Mapping[str, frozenset[str]] = field(default_factory=dict)
    default: str = DEFAULT_CLOUD
    in_use: tuple[str, ...] = (DEFAULT_CLOUD,)  # the clouds of the fleet's stacks (the default for none)

    @classmethod
    def of(cls, stacks: Iterable[tuple[str | None, str]]) -> SubscriptionClouds:
        """From (subscription or None, cloud) of each stack. The default is the fleet's cloud when it has one."""
        clouds: dict[str, set[str]] = {}
        in_use = set()
        for subscription, cloud in stacks:
            in_use.add(cloud)
            if subscription:
                clouds.setdefault(subscription.lower(), set()).add(cloud)
        default = next(iter(in_use)) if len(in_use) == 1 else DEFAULT_CLOUD
        return cls({s: frozenset(c) for s, c in clouds.items()}, default, tuple(sorted(in_use)) or (default,))

    def of_subscription(self, subscription_id: str) -> str:
        """Its cloud; AzureError when stacks put it in two (a subscription is in one cloud: a `cluster.cloud` or a
        `cluster.subscriptionId` is wrong)."""
        clouds = self.clouds.get(subscription_id.lower(), frozenset({self.default}))
        if len(clouds) > 1:
            raise AzureError(
                f"subscription {subscription_id} is in {' and in '.join(sorted(clouds))} by the stacks that name it: "
                "a subscription is in one cloud; correct their cluster.cloud or cluster.subscriptionId"
            )
        return next(iter(clouds))


def stack_clouds(
    paths: Sequence[Path], display: Callable[[Path], str], subscription_of: Callable[[Stack], str | None]
) -> SubscriptionClouds:
    """The clouds of the valid stacks of `paths` (an invalid one is left to the command, which reports it)."""
    return SubscriptionClouds.of(stack_places(paths, display, subscription_of).values())


def stack_places(
    paths: Sequence[Path], display: Callable[[Path], str], subscription_of: Callable[[Stack], str | None]
) -> dict[str, tuple[str | None, str]]:
    """Each valid stack of `paths`: its subscription (None when nothing says which) and its cloud. An invalid one is
    left to the command, which reports it."""
    found = {}
    for path in paths:
        try:
            stack = load_stack_file(path, display(path))
        except SpecError:
            continue
        found[stack.name] = (subscription_of(stack), stack.spec.cluster.cloud)
    return found


def clouds_of_stacks(stacks: Iterable[Stack], default_subscription: str | None) -> SubscriptionClouds:
    """The clouds of loaded stacks, a stack without cluster.subscriptionId in `default_subscription`."""
    return SubscriptionClouds.of(
        (stack.spec.cluster.subscription_id or default_subscription, stack.spec.cluster.cloud) for stack in stacks
    )


class CloudReader:
    """An `AzureReader` over one reader per cloud: each read goes to the reader of its subscription's cloud (a Key
    Vault read, to its reference's)."""

    def __init__(self, readers: Mapping[str, AzureReader], clouds: SubscriptionClouds):
        self.readers = dict(readers)
        self.clouds = clouds

    def _in(self, cloud: str) -> AzureReader:
        try:
            return self.readers[cloud]
        except KeyError:
            raise AzureError(f"no stack of this fleet is in {cloud}: nothing is read there") from None

    def _of(self, subscription_id: str) -> AzureReader:
        return self._in(self.clouds.of_subscription(subscription_id))

    def signed_in_identity(self) -> str:
        """Who signs in to each cloud; AzureError when one of them gives no token."""
        return "; ".join(f"{reader.signed_in_identity()} in {cloud}" for cloud, reader in sorted(self.readers.items()))

    def provider(self, subscription_id: str, namespace: str) -> ProviderState:
        return self._of(subscription_id).provider(subscription_id, namespace)

    def register_provider(self, subscription_id: str, namespace: str, timeout: float, **options: Any) -> ProviderState:
        return self._of(subscription_id).register_provider(subscription_id, namespace, timeout, **options)

    def feature(self, subscription_id: str, feature: str) -> FeatureState:
        return self._of(subscription_id).feature(subscription_id, feature)

    def resource_group_exists(self, subscription_id: str, name: str) -> bool:
        return self._of(subscription_id).resource_group_exists(subscription_id, name)

    def managed_cluster(self, subscription_id: str, resource_group: str, name: str) -> ManagedClusterStatus | None:
        return self._of(subscription_id).managed_cluster(subscription_id, resource_group, name)

    def connected_cluster(self, subscription_id: str, resource_group: str, name: str) -> ConnectedClusterStatus | None:
        return self._of(subscription_id).connected_cluster(subscription_id, resource_group, name)

    def upgrade_profile(self, subscription_id: str, resource_group: str, name: str) -> UpgradeProfile | None:
        return self._of(subscription_id).upgrade_profile(subscription_id, resource_group, name)

    def extensions(self, subscription_id: str, cluster: ClusterRef) -> list[ExtensionStatus]:
        return self._of(subscription_id).extensions(subscription_id, cluster)

    def flux_configurations(self, subscription_id: str, cluster: ClusterRef) -> list[FluxConfigurationStatus]:
        return self._of(subscription_id).flux_configurations(subscription_id, cluster)

    def source_control_configurations(self, subscription_id: str, cluster: ClusterRef) -> list[str]:
        return self._of(subscription_id).source_control_configurations(subscription_id, cluster)

    def secret_metadata(self, ref: KeyVaultRef) -> SecretMetadata:
        return self._in(ref.cloud).secret_metadata(ref)


def in_clouds(arm: Any, clouds: SubscriptionClouds) -> Any:
    """The reader of a fleet in `clouds`, from `arm` (an ArmReader of any cloud): `arm` itself when the fleet is in
    its cloud, the ArmReader of the fleet's one cloud, else a CloudReader over one per cloud in use."""
    own = getattr(arm, "cloud", DEFAULT_CLOUD)
    in_use = clouds.in_use
    if in_use == (own,):
        return arm
    if len(in_use) == 1:
        return arm.for_cloud(in_use[0])
    return CloudReader({cloud: arm.for_cloud(cloud) for cloud in in_use}, clouds)


def graph_beside(arm: Any, clock: Clock | None = None) -> Any:
    """The ResourceGraphReader of `arm`'s cloud, with its credential and client options."""
    from fluxfleet.azure import resource_graph

    return resource_graph.ResourceGraphReader(
        getattr(arm, "credential", None),
        cloud=getattr(arm, "cloud", DEFAULT_CLOUD),
        clock=clock,
        **getattr(arm, "client_options", {}),
    )


def fleet_reads(arm: Any, clock: Clock | None = None, *, fall_back: bool = True) -> Any:
    """The fleet read (`FleetReads`) beside `arm`: a FleetGraphReader of its cloud (reading through `arm` what
    Resource Graph does not know yet, unless not `fall_back`), or one per cloud of a CloudReader."""
    from fluxfleet.azure import fleet_graph

    if isinstance(arm, CloudReader):
        reads = {cloud: fleet_reads(reader, clock, fall_back=fall_back) for cloud, reader in arm.readers.items()}
        return FleetReadsByCloud(reads, arm.clouds, clock)
    return fleet_graph.FleetGraphReader(graph_beside(arm, clock), arm if fall_back else None, clock)


class FleetReadsByCloud:
    """`FleetReads` over one fleet read per cloud: each cloud's targets read there, the snapshots made one."""

    def __init__(self, reads: Mapping[str, Any], clouds: SubscriptionClouds, clock: Clock | None = None):
        self.reads = dict(reads)
        self.clouds = clouds
        self._clock = clock or SystemClock()

    def read(self, targets: Sequence[Any]) -> Any:
        from fluxfleet.azure.fleet_graph import FleetSnapshot

        by_cloud: dict[str, list[Any]] = {}
        failed: dict[Any, str] = {}
        for target in targets:
            try:
                cloud = self.clouds.of_subscription(target.subscription_id)
            except AzureError as error:
                failed[target] = str(error)
                continue
            if cloud not in self.reads:
                failed[target] = f"no stack of this fleet is in {cloud}: nothing is read there"
                continue
            by_cloud.setdefault(cloud, []).append(target)
        snapshots = [self.reads[cloud].read(ts) for cloud, ts in sorted(by_cloud.items())]
        return FleetSnapshot(
            clusters={target: read for s in snapshots for target, read in s.clusters.items()},
            denied=tuple(sorted((d for s in snapshots for d in s.denied), key=lambda d: d.subscription_id)),
            failed={**failed, **{target: line for s in snapshots for target, line in s.failed.items()}},
            requests=sum(s.requests for s in snapshots),
            read_at=min(s.read_at for s in snapshots) if snapshots else self._clock.now(),
        )
