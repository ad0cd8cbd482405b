"""The cluster (`cluster`): an AKS cluster fluxfleet creates or an Arc cluster it adopts, and an AKS cluster's node
pools. The models, the formats of node labels, taints, subnets and surges, and the rules across their keys: AKS-only
keys, network settings, pool sizes and modes, Windows pools."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, PlainValidator, StringConstraints
from pydantic.alias_generators import to_camel

from modules.clouds import DEFAULT_CLOUD, CloudName
from modules.spec.errors import Loc, shown
from modules.spec.fields import (
    DNS_SUBDOMAIN,
    GUID,
    LINE_MAX,
    Cidr,
    Guid,
    Line,
    Location,
    MaybeEmptyLine,
    SpecModel,
    pattern,
)
from modules.spec.findings import duplicate_issues
from modules.spec.maintenance import AUTO_UPGRADE_SCHEDULE, NODE_OS_UPGRADE_SCHEDULE, NotAnAksWindow, aks_window
from modules.spec.windows import WindowSpec


# --------------------------------------------------------------------------------------------- models


# Node pools: Kubernetes label and taint syntax (a key is an optional DNS-subdomain prefix of at most 253 characters
# and `/`, then a name of 1-63 letters, digits, '-', '_', '.' that starts and ends with a letter or digit).
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_AKS_LABEL_PREFIX = "kubernetes.azure.com"  # AKS sets these labels itself and refuses them in a pool's nodeLabels
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_SUBNET_ID = re.compile(
    rf"/subscriptions/{GUID.pattern}/resourceGroups/[-\w.()]{{1,90}}/providers/Microsoft\.Network"
    r"/virtualNetworks/[-\w.]{2,64}/subnets/[-\w.]{1,80}",
    re.IGNORECASE | re.ASCII,
)
_MAX_SURGE = re.compile(r"([1-9][0-9]{0,3})(%?)")
WINDOWS_POOL_NAME_MAX = 6  # AKS names a Windows node after its pool, and a Windows computer name is short
LINUX_OS_SKUS = ("Ubuntu", "Ubuntu2204", "AzureLinux", "AzureLinux3")
WINDOWS_OS_SKUS = ("Windows2019", "Windows2022")


def _label_key_problem(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash and (len(prefix) > 253 or not DNS_SUBDOMAIN.fullmatch(prefix)):
        return f"{shown(key)}: the prefix before '/' is not a DNS subdomain (lower case, at most 253 characters)"
    if len(name) > 63 or not _LABEL_NAME.fullmatch(name):
        return (
            f"{shown(key)} is not a Kubernetes label key ([prefix/]name, the name 1-63 letters, digits, '-', '_' "
            "or '.', starting and ending with a letter or digit)"
        )
    return None


def _node_label_key(key: str) -> str:
    if problem := _label_key_problem(key):
        raise ValueError(problem)
    if key.rpartition("/")[0] == _AKS_LABEL_PREFIX:
        raise ValueError(f"{shown(key)}: the {_AKS_LABEL_PREFIX}/ prefix is reserved for the labels AKS sets")
    return key


def _label_value_problem(value: str) -> str | None:
    if value and (len(value) > 63 or not _LABEL_NAME.fullmatch(value)):
        return (
            f"{shown(value)} is not a Kubernetes label value (at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit; or empty)"
        )
    return None


def _node_label_value(value: str) -> str:
    if problem := _label_value_problem(value):
        raise ValueError(problem)
    return value


def _node_taint(value: str) -> str:
    key, equals, rest = value.partition("=")
    taint_value, colon, effect = rest.rpartition(":")
    if not equals or not colon:
        raise ValueError(f"{shown(value)} is not a taint: write key=value:Effect (such as dedicated=gpu:NoSchedule)")
    if problem := _label_key_problem(key) or _label_value_problem(taint_value):
        raise ValueError(f"taint {shown(value)}: {problem}")
    if effect not in TAINT_EFFECTS:
        raise ValueError(f"taint {shown(value)}: the effect must be one of {', '.join(TAINT_EFFECTS)}")
    return value


def _subnet_id(value: str) -> str:
    if not _SUBNET_ID.fullmatch(value):
        raise ValueError(
            f"{shown(value)} is not a subnet resource id (/subscriptions/SUBSCRIPTION/resourceGroups/GROUP/providers/"
            "Microsoft.Network/virtualNetworks/VNET/subnets/SUBNET)"
        )
    return value


def _max_surge(value: Any) -> str:
    """`upgradeSettings.maxSurge` as ARM takes it (a string): a node count (5, "5") or a percentage ("33%")."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    match = _MAX_SURGE.fullmatch(text) if isinstance(text, str) else None
    if match is None or (match[2] and int(match[1]) > 100):
        raise ValueError(f"{shown(value)} is not a surge: a number of nodes (1 or more) or a percentage such as 33%")
    return text


NodeLabelKey = Annotated[str, AfterValidator(_node_label_key)]
NodeLabelValue = Annotated[str, AfterValidator(_node_label_value)]
NodeTaint = Annotated[str, StringConstraints(max_length=LINE_MAX), AfterValidator(_node_taint)]
SubnetId = Annotated[str, StringConstraints(max_length=LINE_MAX), AfterValidator(_subnet_id)]
MaxSurge = Annotated[str, PlainValidator(_max_surge)]


KubernetesVersion = Annotated[str, pattern(r"\d+\.\d+(\.\d+)?", "a Kubernetes version such as 1.35")]


class NodePool(SpecModel):
    """One AKS node pool. The first System pool is created with the cluster (AKS needs one at creation) and the
    cluster owns it; every other pool is an AgentPool resource of its own (modules/aks_cluster.py)."""

    name: Annotated[str, pattern(r"[a-z][a-z0-9]{0,11}", "an AKS node pool name (a-z then a-z0-9, 1-12 characters)")]
    vm_size: Line
    count: Annotated[int, Field(ge=0, le=1000)] | None = None
    min_count: Annotated[int, Field(ge=0, le=1000)] | None = None
    max_count: Annotated[int, Field(ge=1, le=1000)] | None = None
    mode: Literal["System", "User"] = "User"
    zones: list[Literal["1", "2", "3"]] | None = None
    os_type: Literal["Linux", "Windows"] = "Linux"
    os_sku: Annotated[Literal[LINUX_OS_SKUS + WINDOWS_OS_SKUS] | None, Field(alias="osSKU")] = None  # type: ignore[valid-type]
    max_pods: Annotated[int, Field(ge=10, le=250)] | None = None
    node_labels: dict[NodeLabelKey, NodeLabelValue] | None = None
    node_taints: list[NodeTaint] | None = None
    vnet_subnet_id: SubnetId | None = None
    max_surge: MaxSurge | None = None  # upgradeSettings.maxSurge
    # The pool's own Kubernetes version; unset, it follows the control plane (cluster.kubernetesVersion)
    orchestrator_version: KubernetesVersion | None = None

    @property
    def autoscaled(self) -> bool:
        return self.min_count is not None


# The values of autoUpgradeProfile (the AKS swagger's ManagedClusterAutoUpgradeProfile, tests/fixtures/arm-examples).
UPGRADE_CHANNELS = ("none", "patch", "stable", "rapid", "node-image")
NODE_OS_CHANNELS = ("None", "Unmanaged", "NodeImage", "SecurityPatch")
DEFAULT_UPGRADE_CHANNEL = "patch"  # the program's: patches within the version the spec names
SCHEDULED_NODE_OS_CHANNELS = ("NodeImage", "SecurityPatch")  # the channels whose upgrades AKS starts and times
UpgradeChannel = Literal[UPGRADE_CHANNELS]  # type: ignore[valid-type]
NodeOSChannel = Literal[NODE_OS_CHANNELS]  # type: ignore[valid-type]


class UpgradeSpec(SpecModel):
    """`cluster.upgrade`: how AKS upgrades the cluster by itself, and when (its maintenance windows)."""

    channel: UpgradeChannel | None = None  # autoUpgradeProfile.upgradeChannel
    node_os_channel: Annotated[NodeOSChannel | None, Field(alias="nodeOSChannel")] = None
    windows: list[WindowSpec] | None = None  # maintenanceConfigurations, one window (AKS takes one schedule each)


class ClusterSpec(SpecModel):
    kind: Literal["aks", "arc"]
    name: Annotated[
        str,
        pattern(r"[a-zA-Z0-9]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?", "a cluster name (1-63 letters, digits, '-', '_')"),
    ]
    resource_group: Annotated[
        str, pattern(r"[-\w.()]{0,89}[-\w()]", "a resource group name (1-90 characters, not ending in '.')")
    ]
    location: Location | None = None
    subscription_id: Guid | None = None
    cloud: CloudName = DEFAULT_CLOUD  # as `az cloud list` names it; azure-native:environment must say the same
    # AKS only:
    kubernetes_version: KubernetesVersion | None = None
    node_pools: list[NodePool] | None = None
    dns_prefix: (
        Annotated[
            str, pattern(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,52}[a-zA-Z0-9])?", "a DNS prefix (1-54 letters, digits, '-')")
        ]
        | None
    ) = None
    aad_admin_group_object_ids: list[Guid] | None = None
    network_plugin: Literal["azure", "kubenet", "none"] | None = None
    network_policy: Literal["azure", "calico", "cilium"] | None = None
    auto_upgrade_channel: UpgradeChannel | None = None  # the older spelling of upgrade.channel
    upgrade: UpgradeSpec | None = None
    authorized_ip_ranges: list[Cidr] | None = None
    private_cluster: bool | None = None
    tags: dict[Line, MaybeEmptyLine] | None = None
    disable_local_accounts: bool | None = None
    protect: bool = True  # a cluster is never deleted or replaced by accident

    @property
    def is_aks(self) -> bool:
        return self.kind == "aks"

    @property
    def upgrade_channel(self) -> str:
        """autoUpgradeProfile.upgradeChannel: `upgrade.channel` (or `autoUpgradeChannel`), else patch."""
        chosen = self.upgrade.channel if self.upgrade else None
        return chosen or self.auto_upgrade_channel or DEFAULT_UPGRADE_CHANNEL

    @property
    def node_os_upgrade_channel(self) -> str | None:
        """autoUpgradeProfile.nodeOSUpgradeChannel: `upgrade.nodeOSChannel`; None: not sent (AKS keeps its own)."""
        return self.upgrade.node_os_channel if self.upgrade else None

    @property
    def maintenance_schedules(self) -> list[str]:
        """The maintenance configurations `upgrade.windows` sets: the auto-upgrade schedule unless the channel is
        none, the node OS schedule for a node OS channel whose upgrades AKS starts."""
        if not (self.upgrade and self.upgrade.windows):
            return []
        return [
            *([AUTO_UPGRADE_SCHEDULE] if self.upgrade_channel != "none" else []),
            *([NODE_OS_UPGRADE_SCHEDULE] if self.node_os_upgrade_channel in SCHEDULED_NODE_OS_CHANNELS else []),
        ]


# --------------------------------------------------------------------------------------------- cross-field rules


_AKS_ONLY = (
    "kubernetes_version",
    "node_pools",
    "dns_prefix",
    "aad_admin_group_object_ids",
    "network_plugin",
    "network_policy",
    "auto_upgrade_channel",
    "upgrade",
    "authorized_ip_ranges",
    "private_cluster",
    "tags",
    "disable_local_accounts",
)


def cluster_issues(cluster: ClusterSpec) -> Iterator[tuple[Loc, str]]:
    base: Loc = ("cluster",)
    if not cluster.is_aks:
        for field in _AKS_ONLY:
            if field == "upgrade" and cluster.upgrade is not None:
                yield (*base, "upgrade"), "only for kind 'aks': an Arc cluster's upgrades are not Azure's to schedule"
            elif getattr(cluster, field) is not None:
                yield (*base, to_camel(field)), "only for kind 'aks': an Arc cluster is adopted as it is"
        return
    yield from upgrade_issues(cluster)
    if cluster.location is None:
        yield (*base, "location"), "an AKS cluster needs a location: set it here or in azure-native:location"
    if cluster.network_policy == "cilium" and cluster.network_plugin not in (None, "azure"):
        yield (*base, "networkPolicy"), "cilium needs networkPlugin: azure"
    if cluster.private_cluster and cluster.authorized_ip_ranges:
        yield (*base, "authorizedIpRanges"), "a private cluster has no public API server to restrict: drop one"
    if not cluster.node_pools:
        yield (*base, "nodePools"), "an AKS cluster needs at least one node pool"
        return
    if not any(pool.mode == "System" for pool in cluster.node_pools):
        yield (*base, "nodePools"), "at least one node pool needs mode: System"
    seen: set[str] = set()
    for index, pool in enumerate(cluster.node_pools):
        loc = (*base, "nodePools", index)
        if pool.name in seen:
            yield (*loc, "name"), f"duplicate node pool name {shown(pool.name)}"
        seen.add(pool.name)
        if pool.count is not None and (pool.min_count is not None or pool.max_count is not None):
            yield loc, "set either count or minCount/maxCount (autoscaling), not both"
        elif pool.count is None and (pool.min_count is None or pool.max_count is None):
            yield loc, "set count, or both minCount and maxCount for autoscaling"
        elif pool.autoscaled and pool.min_count > pool.max_count:  # type: ignore[operator]
            yield (*loc, "minCount"), f"minCount {pool.min_count} is greater than maxCount {pool.max_count}"
        if pool.mode == "System" and ((pool.count == 0) or pool.min_count == 0):
            yield loc, "a System node pool needs at least one node"
        yield from _node_pool_os_issues(loc, pool, cluster)
        if problem := pool_skew_problem(pool.orchestrator_version, cluster.kubernetes_version):
            yield (*loc, "orchestratorVersion"), problem
        yield from duplicate_issues((*loc, "nodeTaints"), pool.node_taints or [])


def _node_pool_os_issues(loc: Loc, pool: NodePool, cluster: ClusterSpec) -> Iterator[tuple[Loc, str]]:
    """Windows pools as AKS takes them: Windows SKUs on Windows pools only, short names, never the System pool."""
    if pool.os_sku in WINDOWS_OS_SKUS and pool.os_type != "Windows":
        yield (*loc, "osSKU"), f"{pool.os_sku} is a Windows SKU: it needs osType: Windows"
    if pool.os_sku in LINUX_OS_SKUS and pool.os_type == "Windows":
        yield (*loc, "osSKU"), f"{pool.os_sku} is a Linux SKU: a Windows pool takes {' or '.join(WINDOWS_OS_SKUS)}"
    if pool.os_type != "Windows":
        return
    if pool.mode == "System":
        yield (*loc, "osType"), "a System node pool runs Linux (AKS runs its system pods there): add a User pool"
    if len(pool.name) > WINDOWS_POOL_NAME_MAX:
        yield (*loc, "name"), f"a Windows node pool name has at most {WINDOWS_POOL_NAME_MAX} characters"
    if cluster.network_plugin not in (None, "azure"):
        yield (*loc, "osType"), f"a Windows node pool needs networkPlugin: azure, not {cluster.network_plugin}"


def upgrade_issues(cluster: ClusterSpec) -> Iterator[tuple[Loc, str]]:
    """`cluster.upgrade` as AKS takes it: one channel key, a node OS channel the upgrade channel allows, and one
    window AKS can express as each maintenance configuration it sets."""
    base: Loc = ("cluster", "upgrade")
    upgrade = cluster.upgrade
    if upgrade is None:
        return
    if upgrade.channel and cluster.auto_upgrade_channel:
        yield (*base, "channel"), "autoUpgradeChannel says the same: keep one (upgrade.channel)"
    if cluster.upgrade_channel == "node-image" and upgrade.node_os_channel not in (None, "NodeImage"):
        # AKS: the node-image channel upgrades the node image itself, and takes only the NodeImage node OS channel.
        yield (*base, "nodeOSChannel"), "channel node-image upgrades the node image: AKS takes NodeImage with it"
    if not upgrade.windows:
        return
    if upgrade.node_os_channel is None:
        # AKS reimages every node when the node OS channel changes, and a cluster created before API 2023-06-01 may
        # be on another than today's default (NodeImage): the stack says which one its windows time.
        yield (
            (*base, "nodeOSChannel"),
            (
                "name the node OS channel the windows time: NodeImage (AKS's default since API 2023-06-01), "
                "SecurityPatch, Unmanaged or None (a change of channel reimages every node)"
            ),
        )
        return
    if len(upgrade.windows) > 1:
        yield (*base, "windows"), "AKS takes one schedule per maintenance configuration: give one window"
        return
    schedules = cluster.maintenance_schedules
    if not schedules:
        yield (
            (*base, "windows"),
            (
                f"the windows time nothing: channel is none and nodeOSChannel {cluster.node_os_upgrade_channel} has no "
                "upgrades AKS starts (NodeImage and SecurityPatch do)"
            ),
        )
    seen: set[str] = set()
    for schedule in schedules:
        try:
            aks_window(upgrade.windows[0], schedule)
        except NotAnAksWindow as refused:
            if str(refused) not in seen:
                seen.add(str(refused))
                yield (*base, "windows", 0, refused.key), str(refused)


# The skew AKS allows a node pool of its control plane, from the `orchestratorVersion` description of
# ManagedClusterAgentPoolProfileProperties in Azure/azure-rest-api-specs (specification/containerservice/
# resource-manager/Microsoft.ContainerService/aks/stable/*/managedClusters.json, as the azure-native SDK repeats it):
# "The node pool version must have the same major version as the control plane. The node pool minor version must be
# within two minor versions of the control plane version. The node pool version cannot be greater than the control
# plane version." (https://learn.microsoft.com/azure/aks/use-multiple-node-pools#upgrade-a-node-pool)
POOL_MINORS_BEHIND = 2


def is_version(running: str | None, pinned: str) -> bool:
    """Whether a version Azure reports (1.36.2) is the pinned one (1.36: any patch of it; 1.36.2: that one)."""
    parts = pinned.split(".")
    return running is not None and running.split(".")[: len(parts)] == parts


def minor_of(version: str) -> tuple[int, int]:
    """(1, 36) of a Kubernetes version as the spec takes it (1.36, 1.36.2)."""
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def pool_skew_problem(pool: str | None, control_plane: str | None) -> str | None:
    """Why a pool's own orchestratorVersion cannot run under the control plane's version, or None (either unset: a
    pool without one follows the control plane)."""
    if pool is None or control_plane is None:
        return None
    (pool_major, pool_minor), (major, minor) = minor_of(pool), minor_of(control_plane)
    if pool_major != major or pool_minor > minor or minor - pool_minor > POOL_MINORS_BEHIND:
        return (
            f"{pool} is outside the skew AKS allows under control plane {control_plane}: a pool runs the same major "
            f"version, at most {POOL_MINORS_BEHIND} minor versions older and never newer (upgrade the pool, or drop "
            "orchestratorVersion so that it follows the control plane)"
        )
    patches = pool.count(".") == 2 and control_plane.count(".") == 2
    if patches and tuple(map(int, pool.split("."))) > tuple(map(int, control_plane.split("."))):
        return f"{pool} is newer than control plane {control_plane}: a pool never runs ahead of it"
    return None
