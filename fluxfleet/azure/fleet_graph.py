"""`FleetGraphReader`: the state of many clusters (the cluster, its extensions, its Flux configurations) from Azure
Resource Graph in a few queries, instead of three ARM reads per cluster.

The query. One row per cluster: the clusters of `resources`, joined (leftouter) with their extensions and Flux
configurations from `kubernetesconfigurationresources`, summarized per cluster id with `make_list`:

    resources
    | where type in~ ('microsoft.containerservice/managedclusters', 'microsoft.kubernetes/connectedclusters')
    | extend clusterId = tolower(id)
    | where clusterId in ('/subscriptions/…/managedclusters/aks-1', …)
    | project id, clusterId, name, type, subscriptionId, resourceGroup, identity, properties = pack(…)
    | join kind=leftouter (
        kubernetesconfigurationresources
        | where type in~ ('microsoft.kubernetesconfiguration/extensions', '…/fluxconfigurations')
        | parse tolower(id) with clusterId '/providers/microsoft.kubernetesconfiguration/' *
        | where clusterId in (…the same ids…)
        | extend properties = iff(type =~ '…/extensions', pack(…), pack(…))
        | summarize children = make_list(pack('id', id, 'name', name, 'type', type, 'properties', properties))
            by clusterId
    ) on clusterId
    | project id, name, type, subscriptionId, resourceGroup, identity, properties, children
    | order by id asc

What it relies on (Microsoft's Resource Graph documentation and samples, and public reports where they are silent):
- `kubernetesconfigurationresources` holds `microsoft.kubernetesconfiguration/extensions` and `…/fluxconfigurations`
  and may be joined with `resources`: the official sample "List all ConnectedClusters and ManagedClusters that
  contain a Flux Configuration" does exactly this join, on `tolower(id)` and the same `parse`.
- Join flavors: innerunique (the default, which keeps one left row per key), inner, leftouter (and fullouter in
  newer pages); leftsemi fails with UnsupportedJoinFlavor (a public report). At most 3 joins a query, 1 of them
  across tables: this query has 1. `union` across tables is allowed only with `resourcecontainers`, so the two
  tables cannot be unioned instead.
- `let` is not supported (a maintainer's answer on the docs): the id list is written on both sides of the join.
  The leftouter join keeps clusters without extensions. `summarize … make_list(…) by` over a leftouter join is
  how Microsoft's sample "List all extensions installed on a virtual machine" makes one row per resource; here it
  runs inside the join, so each cluster's row keeps its own columns. `pack` (the older name of `bag_pack`, which
  Resource Graph may lag behind on) builds the lists' items.
- Paging needs `id` in the answer (without it the answer is truncated and has no `$skipToken`); a page holds at
  most 1,000 rows; one answer at most 16 MiB (ResponsePayloadTooLarge, as public reports quote it). Rows carry only
  the properties fluxfleet reads (CLUSTER_PROPERTIES, EXTENSION_PROPERTIES, FLUX_PROPERTIES: about 6 KB for a
  cluster with the extension and two Flux configurations, statuses included), so a page of 1,000 clusters stays
  well below that.
- `summarize` is documented with "Simplified first page only": each query names at most TARGETS_PER_QUERY
  (a page of) clusters, so neither the summarize nor the query ever has more than a page to answer.
- No limit on a query's length is documented; fluxfleet keeps each query under QUERY_CHARS_MAX characters (1,000
  clusters with typical names fit in one) and splits longer target lists into more queries, which share one
  subscription check (`ResourceGraphReader.query_many`). So N clusters over any number of subscriptions cost
  ceil(N / 1,000) queries (with typical names) plus one check per 1,000 subscriptions.
- Resource Graph stores the properties of `kubernetesconfigurationresources` extensions in PascalCase
  (`properties.ExtensionType` in Microsoft's samples), unlike ARM: each child property is picked under both
  spellings, and its row is read with the SDK model's case-insensitive `from_dict`. Cluster properties in
  `resources` are camelCase, as ARM's.
- The query asks for no `systemData` (no Resource Graph table documents such a column, and a column that is not
  there fails the whole query): `ExtensionStatus.last_modified_at` is None from a batch read; preflight's "stuck
  Creating since" needs the ARM read.

Rows have ARM's resource shape, so each is turned into an SDK model and mapped by arm.py's own functions: both
readers give the same typed results for the same body. A cluster Resource Graph does not know (yet: it lags ARM by
seconds to minutes after a create) is read through ARM (`source == "arm"`), and is `found=False` only when ARM does
not know it either. Targets in a subscription the identity cannot read are reported in `denied`, nothing else.

Freshness: the rule callers follow. Resource Graph lags ARM, so a batch read decides only what is still to wait for.
Where a decision needs the current state (the rollout gate's final "passed" for a stack, drift's "Non-Compliant"
before it fails a job), the caller confirms it with one ARM read of that cluster's Flux configurations
(`confirm_flux`) and decides on that answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from azure.core.exceptions import DeserializationError
from azure.mgmt.containerservice.models import ManagedCluster
from azure.mgmt.hybridkubernetes.models import ConnectedCluster
from azure.mgmt.kubernetesconfiguration import SourceControlConfigurationClient

from fluxfleet.azure.arm import (
    connected_cluster_status,
    extension_status,
    first_line,
    flux_configuration_status,
    managed_cluster_status,
)
from fluxfleet.azure.resource_graph import PAGE_SIZE, DeniedSubscription, ResourceGraphReader, kql_string
from fluxfleet.azure.status import (
    AzureError,
    AzureReader,
    ConnectedClusterStatus,
    ExtensionStatus,
    FluxConfigurationStatus,
    ManagedClusterStatus,
)
from fluxfleet.clock import Clock, SystemClock
from modules.cluster_ref import ClusterRef
from modules.flux_extension import EXTENSION_TYPE as FLUX_EXTENSION_TYPE
from modules.spec.errors import printable

CLUSTER_TYPES = {
    "aks": "microsoft.containerservice/managedclusters",
    "arc": "microsoft.kubernetes/connectedclusters",
}
EXTENSION_TYPE = "microsoft.kubernetesconfiguration/extensions"
FLUX_CONFIGURATION_TYPE = "microsoft.kubernetesconfiguration/fluxconfigurations"
# What the mapping functions of arm.py read, and so all a row needs: the rest of a cluster's properties (agent pools,
# network profile, kustomizations, settings) would only make the pages heavier.
CLUSTER_PROPERTIES = (
    "provisioningState",
    "kubernetesVersion",
    "currentKubernetesVersion",
    "oidcIssuerProfile",
    "securityProfile",
    "connectivityStatus",
    "lastConnectivityTime",
    "agentVersion",
    "arcAgentProfile",
)
EXTENSION_PROPERTIES = (
    "extensionType",
    "provisioningState",
    "version",
    "currentVersion",
    "releaseTrain",
    "autoUpgradeMinorVersion",
    "statuses",
    "errorInfo",
)
FLUX_PROPERTIES = (
    "namespace",
    "scope",
    "sourceKind",
    "suspend",
    "provisioningState",
    "complianceState",
    "errorMessage",
    "sourceSyncedCommitId",
    "sourceUpdatedAt",
    "statusUpdatedAt",
    "statuses",
)
TARGETS_PER_QUERY = PAGE_SIZE  # one row a cluster: a query's answer fits one page
QUERY_CHARS_MAX = 400_000  # fluxfleet's own bound: no limit is documented (see the module's docstring)
ARM_FALLBACK_WORKERS = 8  # ARM reads of clusters Resource Graph does not know yet, at once (ArmReader is thread-safe)

_CONFIGURATION_MODELS = SourceControlConfigurationClient.models()  # the api-version ArmReader's client speaks


@dataclass(frozen=True)
class ClusterTarget:
    subscription_id: str  # a GUID, lower case
    resource_group: str
    name: str
    kind: str  # "aks" | "arc"

    @property
    def cluster_ref(self) -> ClusterRef:
        if self.kind not in CLUSTER_TYPES:
            raise ValueError(f"cluster kind {self.kind!r} is neither 'aks' nor 'arc'")
        make = ClusterRef.aks if self.kind == "aks" else ClusterRef.arc
        return make(self.name, self.resource_group)

    @property
    def resource_id(self) -> str:
        return self.cluster_ref.resource_id(self.subscription_id)

    def order(self) -> tuple[str, ...]:
        """The order reads list targets in (Azure compares groups and names without case): every run the same."""
        return self.subscription_id, self.resource_group.lower(), self.name.lower(), self.kind


@dataclass(frozen=True)
class ClusterSnapshot:
    target: ClusterTarget
    found: bool  # False: the cluster exists neither in Resource Graph nor (asked) in ARM
    source: str  # "graph" | "arm" (Resource Graph did not know the cluster yet: read through ARM instead)
    managed: ManagedClusterStatus | None = None  # kind aks
    connected: ConnectedClusterStatus | None = None  # kind arc
    extensions: tuple[ExtensionStatus, ...] = ()
    flux_configurations: tuple[FluxConfigurationStatus, ...] = ()

    @property
    def flux_extension(self) -> ExtensionStatus | None:
        """The extension whose type is microsoft.flux (any case), if installed."""
        return next((e for e in self.extensions if e.extension_type.lower() == FLUX_EXTENSION_TYPE), None)


@dataclass(frozen=True)
class FleetSnapshot:
    clusters: dict[ClusterTarget, ClusterSnapshot]  # every target that could be read
    denied: tuple[DeniedSubscription, ...]  # subscriptions the identity cannot read
    failed: dict[ClusterTarget, str]  # targets whose read failed (an ARM fallback's AzureError): one line each
    requests: int  # Resource Graph requests this read made
    read_at: datetime  # the clock's now when the read began


class _Malformed(ValueError):
    pass


class FleetReads(Protocol):
    """A read of many clusters at once: FleetGraphReader, or a test's stand-in."""

    def read(self, targets: Sequence[ClusterTarget]) -> FleetSnapshot: ...


class FleetGraphReader:
    """Reads many clusters through one `ResourceGraphReader`, and through `arm` those it does not know yet. Without
    `arm`, those are left out of the snapshot, for the caller to read when and how it reads them (preflight reads a
    cluster only once its resource provider is known to be registered)."""

    def __init__(self, graph: ResourceGraphReader, arm: AzureReader | None, clock: Clock | None = None):
        self._graph = graph
        self._arm = arm
        self._clock = clock or SystemClock()

    def read(self, targets: Sequence[ClusterTarget]) -> FleetSnapshot:
        """AzureError (one line) when Resource Graph cannot be read at all."""
        read_at = self._clock.now()
        by_id, failed = _keyed(targets)
        if not by_id:
            return FleetSnapshot({}, (), failed, 0, read_at)
        subscriptions = sorted({same[0].subscription_id.lower() for same in by_id.values()})
        result = self._graph.query_many([fleet_query(ids) for ids in _chunks(sorted(by_id))], subscriptions)
        rows = {str(row.get("id", "")).lower(): row for row in result.rows}
        denied = {d.subscription_id for d in result.denied}

        read: dict[str, ClusterSnapshot | str] = {}  # cluster id → what was read, or one line on why not
        unknown: list[tuple[str, ClusterTarget]] = []
        for key, same in by_id.items():
            if same[0].subscription_id.lower() in denied:
                continue  # the caller reports the subscription, from `denied`
            if key in rows:
                read[key] = _from_row(same[0], rows[key])
            else:
                unknown.append((key, same[0]))
        for (key, _), answer in zip(unknown, self._fallbacks([t for _, t in unknown]), strict=True):
            if answer is not None:
                read[key] = answer

        clusters: dict[ClusterTarget, ClusterSnapshot] = {}
        for key, same in by_id.items():
            answer = read.get(key)
            for target in same:  # each target the caller gave, under itself, though one cluster was read once
                if isinstance(answer, ClusterSnapshot):
                    clusters[target] = replace(answer, target=target)
                elif answer is not None:
                    failed[target] = answer
        return FleetSnapshot(clusters, result.denied, failed, result.requests, read_at)

    # ------------------------------------------------------------------ clusters Resource Graph does not know yet

    def _fallbacks(self, targets: list[ClusterTarget]) -> list[ClusterSnapshot | str | None]:
        if not targets or self._arm is None:
            return [None] * len(targets)
        with ThreadPoolExecutor(max_workers=min(ARM_FALLBACK_WORKERS, len(targets))) as pool:
            return list(pool.map(self._from_arm, targets))

    def _from_arm(self, target: ClusterTarget) -> ClusterSnapshot | str:
        """The cluster through ARM, or the one line of its AzureError."""
        sub, group, name = target.subscription_id, target.resource_group, target.name
        try:
            if target.kind == "aks":
                managed, connected = self._arm.managed_cluster(sub, group, name), None
            else:
                managed, connected = None, self._arm.connected_cluster(sub, group, name)
            if managed is None and connected is None:
                return ClusterSnapshot(target, found=False, source="arm")
            ref = target.cluster_ref
            extensions = _by_name(self._arm.extensions(sub, ref))
            configurations = _by_name(self._arm.flux_configurations(sub, ref))
        except AzureError as error:
            return str(error)
        return ClusterSnapshot(target, True, "arm", managed, connected, extensions, configurations)


def confirm_flux(arm: AzureReader, target: ClusterTarget) -> tuple[FluxConfigurationStatus, ...]:
    """The cluster's Flux configurations as ARM has them now: one list call, to confirm a verdict a batch read
    suggested (see the freshness rule in the module's docstring). AzureError when it cannot be read."""
    return _by_name(arm.flux_configurations(target.subscription_id, target.cluster_ref))


def _keyed(targets: Sequence[ClusterTarget]) -> tuple[dict[str, list[ClusterTarget]], dict[ClusterTarget, str]]:
    """The targets by lower-case cluster id (Azure compares ids case-insensitively: two spellings are one
    cluster), and those no query can name, each with its one line."""
    by_id: dict[str, list[ClusterTarget]] = {}
    failed: dict[ClusterTarget, str] = {}
    for target in targets:
        try:
            key = target.resource_id.lower()
            kql_string(key)  # a name no KQL literal can hold is no Azure name either
        except ValueError as error:
            where = printable(f"{target.resource_group}/{target.name}")
            failed[target] = f"cannot read cluster {where}: {error}"
            continue
        by_id.setdefault(key, []).append(target)
    return by_id, failed


# --------------------------------------------------------------------------------------------- the query


def fleet_query(cluster_ids: Sequence[str]) -> str:
    """The Resource Graph query of the module's docstring for these cluster ids (lower case, each a KQL literal)."""
    ids = ", ".join(kql_string(cluster_id.lower()) for cluster_id in cluster_ids)
    clusters = ", ".join(kql_string(t) for t in CLUSTER_TYPES.values())
    children = f"{kql_string(EXTENSION_TYPE)}, {kql_string(FLUX_CONFIGURATION_TYPE)}"
    extension, flux = _picks(EXTENSION_PROPERTIES, both_cases=True), _picks(FLUX_PROPERTIES, both_cases=True)
    child = "pack('id', id, 'name', name, 'type', type, 'properties', properties)"
    return (
        "resources\n"
        f"| where type in~ ({clusters})\n"
        "| extend clusterId = tolower(id)\n"
        f"| where clusterId in ({ids})\n"
        "| project id, clusterId, name, type, subscriptionId, resourceGroup, identity, "
        f"properties = {_picks(CLUSTER_PROPERTIES, both_cases=False)}\n"
        "| join kind=leftouter (\n"
        "    kubernetesconfigurationresources\n"
        f"    | where type in~ ({children})\n"
        "    | parse tolower(id) with clusterId '/providers/microsoft.kubernetesconfiguration/' *\n"
        f"    | where clusterId in ({ids})\n"
        f"    | extend properties = iff(type =~ {kql_string(EXTENSION_TYPE)}, {extension}, {flux})\n"
        f"    | summarize children = make_list({child}) by clusterId\n"
        ") on clusterId\n"
        "| project id, name, type, subscriptionId, resourceGroup, identity, properties, children\n"
        "| order by id asc"
    )


def _picks(names: Sequence[str], *, both_cases: bool) -> str:
    """`pack(...)` of these properties; with `both_cases`, each also under its PascalCase name."""
    spellings = [s for name in names for s in ((name, name[:1].upper() + name[1:]) if both_cases else (name,))]
    # properties['x'], not properties.x: a property may be named like a KQL keyword (`namespace`)
    return "pack(" + ", ".join(f"{kql_string(s)}, properties[{kql_string(s)}]" for s in spellings) + ")"


def _chunks(cluster_ids: list[str]) -> list[list[str]]:
    """The ids in queries of at most TARGETS_PER_QUERY ids and QUERY_CHARS_MAX characters."""
    fixed = len(fleet_query([]))
    chunks: list[list[str]] = [[]]
    size = fixed
    for cluster_id in cluster_ids:
        cost = 2 * (len(kql_string(cluster_id)) + len(", "))  # the list is written twice
        if chunks[-1] and (len(chunks[-1]) >= TARGETS_PER_QUERY or size + cost > QUERY_CHARS_MAX):
            chunks.append([])
            size = fixed
        chunks[-1].append(cluster_id)
        size += cost
    return chunks


# --------------------------------------------------------------------------------------------- row → status


def _from_row(target: ClusterTarget, row: Mapping[str, Any]) -> ClusterSnapshot | str:
    """The cluster from its row, or one line on why the row does not fit the API."""
    try:
        return _mapped(target, row)
    except (_Malformed, DeserializationError, TypeError, ValueError, AttributeError, KeyError) as error:
        return (
            f"cannot read {target.resource_id} from Azure Resource Graph: its row does not fit the API "
            f"({type(error).__name__}: {first_line(error)}); run again, and if it persists, "
            "`az graph query` shows what Azure sends"
        )


def _mapped(target: ClusterTarget, row: Mapping[str, Any]) -> ClusterSnapshot:
    body = {key: row.get(key) for key in ("id", "name", "type", "identity", "properties")}
    if not isinstance(body["properties"], Mapping):
        raise _Malformed("`properties` is not an object")
    managed = managed_cluster_status(ManagedCluster(body), target.name) if target.kind == "aks" else None
    connected = connected_cluster_status(ConnectedCluster(body), target.name) if target.kind == "arc" else None
    children = row.get("children") or []  # null: leftouter found nothing to join
    if not isinstance(children, list) or not all(isinstance(child, Mapping) for child in children):
        raise _Malformed("`children` is not a list of objects")
    extensions = [
        _child(c, _CONFIGURATION_MODELS.Extension, extension_status) for c in _typed(children, EXTENSION_TYPE)
    ]
    configurations = [
        _child(c, _CONFIGURATION_MODELS.FluxConfiguration, flux_configuration_status)
        for c in _typed(children, FLUX_CONFIGURATION_TYPE)
    ]
    return ClusterSnapshot(target, True, "graph", managed, connected, _by_name(extensions), _by_name(configurations))


def _typed(children: list[Mapping[str, Any]], resource_type: str) -> list[Mapping[str, Any]]:
    return [child for child in children if str(child.get("type", "")).lower() == resource_type]


def _child(child: Mapping[str, Any], model: Any, status: Callable[[Any], Any]) -> Any:
    """One extension or Flux configuration: the spelling Resource Graph left empty is dropped, the other read
    case-insensitively by the SDK model (`from_dict`), then mapped as ArmReader maps it."""
    properties = child.get("properties")
    if not isinstance(properties, Mapping):
        raise _Malformed(f"the `properties` of {child.get('name')!r} is not an object")
    present = {key: value for key, value in properties.items() if value is not None}
    return status(model.from_dict({**child, "properties": present}))


def _by_name(items: Sequence[Any]) -> tuple[Any, ...]:
    """In name order: Resource Graph's `make_list` and ARM's lists have no order of their own."""
    return tuple(sorted(items, key=lambda item: (item.name.lower(), item.name)))
